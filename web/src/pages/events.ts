// Alerts and events: the live change feed (every twin), newest first, with the twins that are
// stale now (GET /sync?state=stale) and the open anomaly episodes (GET /anomalies) on top.
import { errorText, Feed, get, type FeedEvent } from '../api';
import { fmtValue, h, twinLink } from '../dom';

// An anomaly's evidence in one line.
function evidence(d: any): string {
  if (!d) return '';
  let s = `${d.path} ${d.detector ?? ''} score ${fmtValue(d.score)}`;
  if (d.threshold != null) s += ` (threshold ${fmtValue(d.threshold)})`;
  s += `: value ${fmtValue(d.value)} vs baseline ${fmtValue(d.baseline)} ± ${fmtValue(d.scale)}`;
  if (d.end) s += `; ended ${new Date(d.end).toLocaleTimeString()}, peak ${fmtValue(d.peakScore)}, ${d.anomalousReadings} anomalous reading(s)`;
  else if (d.start) s += `; since ${new Date(d.start).toLocaleTimeString()}`;
  return s;
}

export function eventsPage(root: HTMLElement): () => void {
  const stale = h('div', { 'data-testid': 'stale-twins' });
  const anomalies = h('div', { 'data-testid': 'open-anomalies' });
  const anomalyCount = h('span.badge', { 'data-testid': 'anomaly-count' }, '…');
  const list = h('tbody');
  const typeFilter = h('select', {}, ...['all', 'alerts (stale/fresh)', 'anomalies', 'twin.patched', 'twin.created', 'twin.replaced', 'twin.deleted', 'relationship.*'].map((t) => h('option', { value: t }, t)));
  const pause = h('input', { type: 'checkbox' });
  const count = h('span.muted');
  root.append(h('section.card', {}, h('h2', {}, 'Stale twins'), stale),
    h('section.card', {}, h('h2', {}, 'Open anomalies ', anomalyCount), anomalies),
    h('section.card', {}, h('h2', {}, 'Events'), h('div.row', {}, 'show ', typeFilter, ' ', h('label', {}, pause, ' pause'), ' ', count),
      h('table.events', { 'data-testid': 'event-list' }, h('thead', {}, h('tr', {}, ...['time', 'type', 'twin', 'detail'].map((t) => h('th', {}, t)))), list)));
  const loadStale = async () => {
    try {
      const r = await get<any>('/sync?state=stale&orderBy=age');
      stale.replaceChildren(r.value.length ? h('ul', {}, r.value.map((s: any) => h('li', {}, twinLink(s.twinId), ` — no reading for ${Math.round(s.ageMs / 1000)} s (stale after ${Math.round(s.staleAfterMs / 1000)} s)`))) : h('p.muted', {}, 'none'));
    } catch (e) { stale.replaceChildren(h('p.error', {}, errorText(e))); }
  };
  void loadStale();
  let anomalyTimer = 0;
  const loadAnomalies = async () => {
    try {
      const r = await get<any>('/anomalies');
      anomalyCount.textContent = String(r.active.length);
      anomalyCount.className = r.active.length ? 'badge warn' : 'badge';
      anomalies.replaceChildren(r.active.length ? h('table', {}, h('tbody', {}, r.active.map((a: any) =>
        h('tr.alert', { 'data-twin': a.twin }, h('td', {}, twinLink(a.twin)), h('td.detail', {}, evidence(a))))))
        : h('p.muted', {}, `none (${r.episodes ?? 0} episode(s) so far over ${r.readings ?? 0} readings)`));
    } catch (e) { anomalies.replaceChildren(h('p.error', {}, errorText(e))); }
  };
  void loadAnomalies();
  let n = 0;
  const matches = (e: FeedEvent) => {
    const f = typeFilter.value;
    if (f === 'all') return true;
    if (f.startsWith('alerts')) return e.type === 'twin.stale' || e.type === 'twin.fresh';
    if (f === 'anomalies') return e.type === 'twin.anomaly' || e.type === 'twin.anomalyCleared';
    if (f === 'relationship.*') return e.type.startsWith('relationship.');
    return e.type === f;
  };
  const feed = new Feed({}, (e) => {
    if (e.type === 'subscribed') return;
    if (e.type === 'twin.stale' || e.type === 'twin.fresh') void loadStale();
    if ((e.type === 'twin.anomaly' || e.type === 'twin.anomalyCleared') && !anomalyTimer) {
      anomalyTimer = window.setTimeout(() => { anomalyTimer = 0; void loadAnomalies(); }, 300);
    }
    if (pause.checked || !matches(e)) return;
    n++;
    count.textContent = `${n} event(s)`;
    const detail = e.patch ? e.patch.map((p) => `${p.op} ${p.path}${'value' in p ? ' = ' + JSON.stringify(p.value) : ''}`).join('; ')
      : e.type === 'twin.stale' ? `no reading for ${Math.round((e.data?.ageMs ?? 0) / 1000)} s`
      : e.type === 'twin.anomaly' || e.type === 'twin.anomalyCleared' ? evidence(e.data)
      : e.data ? JSON.stringify(e.data).slice(0, 160) : '';
    const alert = e.type === 'twin.stale' || e.type === 'twin.anomaly';
    const ok = e.type === 'twin.fresh' || e.type === 'twin.anomalyCleared';
    list.prepend(h('tr', { class: alert ? 'alert' : ok ? 'ok' : '', 'data-type': e.type },
      h('td', {}, e.time ? new Date(e.time).toLocaleTimeString() : new Date().toLocaleTimeString()), h('td', {}, e.type),
      h('td', {}, e.twinId ? twinLink(e.twinId) : ''), h('td.detail', {}, detail)));
    while (list.children.length > 300) list.lastElementChild!.remove();
  }, undefined, () => {
    // Back after a gap: events in between are not replayed; say so, and read the alerts again.
    list.prepend(h('tr', { class: 'alert', 'data-type': 'feed.resync' },
      h('td', {}, new Date().toLocaleTimeString()), h('td', {}, 'feed reconnected'), h('td', {}, ''),
      h('td.detail', {}, 'the connection was lost; events sent meanwhile are not shown')));
    void loadStale();
    void loadAnomalies();
  });
  return () => { feed.close(); clearTimeout(anomalyTimer); };
}
