// One twin: live property values (the /events change feed, no polling), desired vs reported with
// the sync state, sync-quality badges, history charts, relationships, commands (forms from the
// DTDL request schema) and property editing by JSON Patch (the server's RFC 7807 message shown).
import { api, applyPatch, authHeaders, enc, errorText, Feed, get, getPath } from '../api';
import { HistoryChart, type Episode } from '../charts';
import { fmtValue, h, shortModel, twinLink } from '../dom';
import { propertyPaths, resolvedModel, schemaText, telemetryPaths, type Content } from '../models';
import { sceneAssetControls } from '../scene_asset';

export async function twinPage(root: HTMLElement, id: string): Promise<() => void> {
  const title = h('h2', {}, id);
  const badges = h('div.badges', { 'data-testid': 'sync-badges' });
  const anomalyBadges = h('div.badges', { 'data-testid': 'anomaly-badges' });
  const sceneBox = h('div.scene-upload', { 'data-testid': 'scene-upload' });
  const props = h('tbody');
  const rels = h('div');
  const cmds = h('div');
  const charts = h('div.charts');
  const live = h('span.live', { 'data-testid': 'live' }, 'connecting…');
  const patchMsg = h('pre.msg', { 'data-testid': 'patch-result' });
  root.append(
    h('section.card', {}, title, h('div.row', {}, live, ' ', badges, ' ', anomalyBadges), sceneBox),
    h('div.split', {},
      h('section.card.grow', {}, h('h3', {}, 'Properties'),
        h('table.props', { 'data-testid': 'properties' }, h('thead', {}, h('tr', {}, ...['property', 'reported', 'desired', 'sync', 'updated', 'edit'].map((t) => h('th', {}, t)))), props),
        patchMsg),
      h('section.card', {}, h('h3', {}, 'Relationships'), rels, h('h3', {}, 'Commands'), cmds)),
    h('section.card', {}, h('h3', {}, 'History'), charts));

  let doc: any;
  try {
    doc = await get<any>(`/digitaltwins/${enc(id)}?includeSync=true`);
  } catch (e) {
    title.after(h('p.error', {}, errorText(e)));
    return () => {};
  }
  const model: string = doc.$metadata?.$model;
  title.replaceChildren(id, ' ', h('small.muted', {}, h('a', { href: `#/models/${encodeURIComponent(model)}` }, shortModel(model))));
  const paths = await propertyPaths(model).catch(() => []);
  const cells = new Map<string, { value: HTMLElement; desired: HTMLElement; sync: HTMLElement; time: HTMLElement; last: string }>();

  const metaOf = (path: string): any => {
    const parts = path.split('/');
    if (parts.length === 1) return doc.$metadata?.[path] ?? {};
    return doc[parts[0]]?.$metadata?.[parts[1]] ?? {};
  };

  const setProp = async (p: { path: string; c: Content }, raw: string, desired: boolean) => {
    let value: unknown = raw;
    try { value = JSON.parse(raw); } catch { /* a bare string */ }
    patchMsg.className = 'msg';
    patchMsg.textContent = '…';
    try {
      if (desired) {
        const r: any = await api('PUT', `/digitaltwins/${enc(id)}/desired/${p.path.split('/').map(enc).join('/')}`, value);
        patchMsg.textContent = `desired ${p.path} = ${fmtValue(value)}: ${r?.state ?? 'sent'}`;
      } else {
        const exists = getPath(doc, p.path) !== undefined;
        await api('PATCH', `/digitaltwins/${enc(id)}`, [{ op: exists ? 'replace' : 'add', path: `/${p.path}`, value }], 'application/json-patch+json');
        patchMsg.textContent = `patched /${p.path} = ${fmtValue(value)}`;
      }
      patchMsg.className = 'msg ok';
    } catch (e) {
      patchMsg.textContent = errorText(e);
      patchMsg.className = 'msg error';
    }
  };

  for (const p of paths) {
    const value = h('td.value', { 'data-testid': `prop-${p.path}` });
    const desired = h('td'), sync = h('td'), time = h('td.muted');
    cells.set(p.path, { value, desired, sync, time, last: '' });
    const input = h('input', { type: 'text', size: 10, 'data-testid': `edit-${p.path}`, placeholder: schemaText(p.c.schema) });
    const enumValues: string[] = p.c.schema?.['@type'] === 'Enum' ? p.c.schema.enumValues.map((v: any) => String(v.enumValue)) : [];
    if (enumValues.length) {
      const dl = h('datalist', { id: `dl-${p.path}` }, ...enumValues.map((v) => h('option', { value: v })));
      input.setAttribute('list', dl.id);
      root.append(dl);
    }
    const edit = h('td', {}, input,
      h('button.small', { title: 'JSON Patch the reported value', 'data-testid': `patch-${p.path}`, onclick: () => void setProp(p, input.value, false) }, 'patch'),
      p.c.writable ? h('button.small', { title: 'send as the desired value to the device', onclick: () => void setProp(p, input.value, true) }, 'desired') : '');
    props.append(h('tr', {}, h('td', { title: `${schemaText(p.c.schema)} ${p.c.unit ?? ''}` }, p.path, p.c.unit ? h('small.muted', {}, ` ${p.c.unit}`) : ''), value, desired, sync, time, edit));
  }

  const renderProps = (changed?: Set<string>) => {
    for (const [path, c] of cells) {
      const v = fmtValue(getPath(doc, path));
      if (v !== c.last) {
        c.value.textContent = v;
        if (c.last !== '' || changed) { c.value.classList.remove('flash'); void c.value.offsetWidth; c.value.classList.add('flash'); }
        c.last = v;
      }
      const m = metaOf(path);
      c.desired.textContent = m.desiredValue !== undefined ? fmtValue(m.desiredValue) : '';
      c.sync.replaceChildren(m.syncState ? h('span', { class: `badge sync-${m.syncState}`, title: m.ackDescription ?? '' }, m.syncState) : '');
      const t = m.sourceTime ?? m.lastUpdateTime;
      c.time.textContent = t ? new Date(t).toLocaleTimeString() : '';
    }
  };

  const renderSync = (s: any) => {
    if (!s) return;
    const pct = (x: number | null | undefined) => (x == null ? '—' : `${(x * 100).toFixed(1)}%`);
    const ms = (x: number | null | undefined) => (x == null ? '—' : `${x.toFixed(1)} ms`);
    badges.replaceChildren(
      h('span', { class: `badge state-${s.state}`, 'data-testid': 'sync-state', title: `stale after ${s.staleAfterMs ?? '—'} ms` }, s.state),
      h('span.badge', { title: 'age of the newest reading' }, `age ${s.ageMs ?? '—'} ms`),
      h('span.badge', { title: 'source → applied, p50 / p99' }, `lag ${ms(s.lagMs?.p50)} / ${ms(s.lagMs?.p99)}`),
      h('span.badge', { title: 'samples received vs expected, 5 min' }, `complete ${pct(s.completeness?.ratio)}`),
      h('span', { class: `badge ${s.rejectionRate > 0 ? 'warn' : ''}`, title: JSON.stringify(s.readings?.rejectedByCode ?? {}) }, `rejected ${pct(s.rejectionRate)}`),
      s.divergence != null ? h('span.badge.warn', {}, `divergence ${fmtValue(s.divergence)}`) : '');
  };
  renderProps();
  renderSync(doc.$sync);

  // Relationships
  const relTable = (list: any[], outgoing: boolean) => h('table', {}, h('tbody', {}, list.map((r) =>
    h('tr', {}, h('td', {}, r.$relationshipName), h('td', {}, outgoing ? '→ ' : '← ', twinLink(outgoing ? r.$targetId : r.$sourceId))))));
  const loadRels = async () => {
    try {
      const [out, inc] = await Promise.all([get<any>(`/digitaltwins/${enc(id)}/relationships`), get<any>(`/digitaltwins/${enc(id)}/incomingrelationships`)]);
      rels.replaceChildren(out.value.length || inc.value.length ? h('div', {}, relTable(out.value, true), relTable(inc.value, false)) : h('p.muted', {}, 'none'));
    } catch (e) { rels.replaceChildren(h('p.error', {}, errorText(e))); }
  };
  void loadRels();

  // Commands: a form per DTDL Command, generated from its request schema.
  try {
    const r = await resolvedModel(model);
    const commands = r.contents.filter((c) => c['@type'] === 'Command');
    if (!commands.length) cmds.append(h('p.muted', {}, 'none'));
    for (const c of commands) {
      const out = h('pre.msg', { 'data-testid': `command-result-${c.name}` });
      const field = c.request ? schemaInput(c.request.schema, c.request.name) : null;
      cmds.append(h('form.command', { onsubmit: async (e: Event) => {
        e.preventDefault();
        out.className = 'msg';
        out.textContent = '…';
        try {
          const res = await api('POST', `/digitaltwins/${enc(id)}/commands/${enc(c.name)}`, field ? field.read() : undefined);
          out.textContent = JSON.stringify(res);
          out.className = 'msg ok';
        } catch (err) { out.textContent = errorText(err); out.className = 'msg error'; }
      } }, h('strong', {}, c.name), ' ', field?.el ?? '', ' ', h('button.small', { type: 'submit' }, 'invoke'), out));
    }
  } catch (e) { cmds.append(h('p.error', {}, errorText(e))); }

  // History: one chart per numeric series the twin has.
  const chartObjs: HistoryChart[] = [];
  try {
    const hist = await get<any>(`/digitaltwins/${enc(id)}/history`);
    const units = new Map<string, string>();
    for (const t of [...(await telemetryPaths(model).catch(() => [])), ...paths]) units.set(t.path, t.c.unit ?? '');
    const tele = new Set((await telemetryPaths(model).catch(() => [])).map((t) => t.path));
    // Telemetry first (it moves), then properties.
    const numeric = hist.series.filter((s: any) => s.type === 'float64' || s.type === 'int64')
      .sort((a: any, b: any) => Number(tele.has(b.path)) - Number(tele.has(a.path)) || a.path.localeCompare(b.path));
    if (!numeric.length) charts.append(h('p.muted', {}, 'no history yet'));
    for (const s of numeric) {
      const c = new HistoryChart(id, s.path, units.get(s.path));
      chartObjs.push(c);
      charts.append(c.el);
    }
  } catch (e) { charts.append(h('p.error', {}, errorText(e))); }

  // Anomalies: a badge per flagged series, its episodes on its chart; live from the feed.
  const chartOf = new Map(chartObjs.map((c) => [c.path, c]));
  const open = new Map<string, Episode>();
  const renderAnomalies = () => {
    anomalyBadges.replaceChildren(...[...open.values()].sort((a, b) => a.path.localeCompare(b.path)).map((e) =>
      h('span.badge.warn.anomaly', { 'data-testid': `anomaly-${e.path}`, title: `${e.detector ?? ''} score ${fmtValue(e.score)} since ${e.start}; value ${fmtValue(e.value)}, baseline ${fmtValue(e.baseline)}` },
        `⚠ ${e.path} anomaly`)));
  };
  const episodeOf = (d: any): Episode => ({ ...d, path: String(d.path ?? '').replace(/^\//, '') });
  try {
    const a = await get<any>(`/digitaltwins/${enc(id)}/anomalies`);
    const all: Episode[] = [...(a.active ?? []), ...(a.recent ?? [])].map(episodeOf);
    for (const e of a.active ?? []) open.set(episodeOf(e).path, episodeOf(e));
    for (const c of chartObjs) c.setEpisodes(all.filter((e) => e.path === c.path));
    renderAnomalies();
  } catch { /* no analytics: no badges */ }

  // The 3D scene of this twin: its own glTF, its model's, or none; upload (PUT) or remove one.
  sceneBox.append(sceneAssetControls(`/digitaltwins/${enc(id)}/scene`, 'scene', 'this twin', async () => {
    const r = await fetch(`/digitaltwins/${enc(id)}/scene`, { method: 'GET', headers: authHeaders() }).catch(() => null);
    const src = r?.ok ? r.headers.get('Doppel-Scene-Source') : null;
    if (r?.ok) await r.arrayBuffer();
    return {
      text: src === 'twin' ? `3D: own glTF (${r!.headers.get('Content-Type')})` : src === 'model' ? '3D: the model\'s glTF' : '3D: generated box',
      removable: src === 'twin',
    };
  }));

  // Live: the change feed for this twin.
  let syncTimer = 0;
  const refreshSync = () => {
    if (syncTimer) return;
    syncTimer = window.setTimeout(async () => {
      syncTimer = 0;
      try { renderSync(await get<any>(`/digitaltwins/${enc(id)}/sync`)); } catch { /* keep the last */ }
    }, 1000);
  };
  let events = 0;
  const feed = new Feed({ twin: id }, (e) => {
    if (e.type === 'subscribed') return;
    events++;
    live.dataset.events = String(events);
    if (e.type === 'twin.patched' && e.patch) {
      applyPatch(doc, e.patch);
      renderProps(new Set(e.patch.map((p) => p.path)));
    } else if ((e.type === 'twin.replaced' || e.type === 'twin.created') && e.data) {
      doc = { ...e.data, $sync: doc.$sync };
      renderProps(new Set());
    } else if (e.type === 'twin.deleted') {
      title.append(h('span.badge.warn', {}, 'deleted'));
    } else if (e.type.startsWith('relationship.')) {
      void loadRels();
    } else if ((e.type === 'twin.anomaly' || e.type === 'twin.anomalyCleared') && e.data) {
      const ep = episodeOf(e.data);
      if (e.type === 'twin.anomaly') open.set(ep.path, ep);
      else open.delete(ep.path);
      renderAnomalies();
      chartOf.get(ep.path)?.episode(ep);
    }
    refreshSync();
    for (const c of chartObjs) c.poke();
  }, (open) => { live.textContent = open ? '● live' : '○ reconnecting'; live.className = open ? 'live on' : 'live'; }, () => {
    // Back after a gap: what changed meanwhile was not on the feed, so read the twin again.
    void get<any>(`/digitaltwins/${enc(id)}?includeSync=true`).then((d) => { doc = d; renderProps(new Set()); }).catch(() => { /* keep */ });
    void loadRels();
    refreshSync();
  });

  return () => {
    feed.close();
    clearTimeout(syncTimer);
    for (const c of chartObjs) c.destroy();
  };
}

// An input for a DTDL schema: primitives, Enum (a select), Object (a fieldset); anything else as
// JSON text.
function schemaInput(schema: any, name: string): { el: HTMLElement; read: () => unknown } {
  if (typeof schema === 'string') {
    if (schema === 'boolean') {
      const i = h('input', { type: 'checkbox', title: name });
      return { el: h('label', {}, i, ` ${name}`), read: () => i.checked };
    }
    const numeric = ['double', 'float', 'integer', 'long', 'byte', 'short', 'decimal'].includes(schema) || schema.startsWith('unsigned');
    const i = h('input', { type: numeric ? 'number' : 'text', placeholder: `${name}: ${schema}`, step: 'any', size: 12, required: true, 'data-field': name });
    return { el: i, read: () => (numeric ? Number(i.value) : i.value) };
  }
  if (schema?.['@type'] === 'Enum') {
    const s = h('select', { title: name }, ...schema.enumValues.map((v: any) => h('option', { value: JSON.stringify(v.enumValue) }, v.displayName?.en ?? v.name ?? String(v.enumValue))));
    return { el: s, read: () => JSON.parse(s.value) };
  }
  if (schema?.['@type'] === 'Object') {
    const fields = (schema.fields ?? []).map((f: any) => ({ name: f.name, ...schemaInput(f.schema, f.name) }));
    return { el: h('fieldset', {}, h('legend', {}, name), ...fields.map((f: any) => h('label', {}, `${f.name} `, f.el))),
             read: () => Object.fromEntries(fields.map((f: any) => [f.name, f.read()])) };
  }
  const t = h('input', { type: 'text', placeholder: `${name} (JSON: ${schemaText(schema)})`, size: 20 });
  return { el: t, read: () => JSON.parse(t.value) };
}
