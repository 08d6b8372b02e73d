// Scenarios: the definitions (GET /scenarios), runs as jobs with progress, the base run's series,
// each recorded variable's Monte Carlo bands over time (p5–p95 and p25–p75 around the median,
// with the base run), KPIs with their Monte Carlo spread (p5–p95 band per run), and
// /scenario-comparison's table and recommendation for the runs picked.
import type uPlot from 'uplot';
import { api, enc, errorText, get } from '../api';
import { lineChart } from '../charts';
import { fmtValue, h } from '../dom';

const COLOURS = ['#2f6fd6', '#d6612f', '#3a9d5d', '#9b4fd1', '#c9a227', '#d13f7a'];

export function scenariosPage(root: HTMLElement): () => void {
  const list = h('tbody');
  const runsBox = h('div', { 'data-testid': 'runs' });
  const resultBox = h('div', { 'data-testid': 'scenario-result' });
  const compareBox = h('div', { 'data-testid': 'comparison' });
  root.append(
    h('section.card', {}, h('h2', {}, 'Scenarios'),
      h('table', { 'data-testid': 'scenario-list' }, h('thead', {}, h('tr', {}, ...['id', 'name', 'units', 'horizon', 'Monte Carlo', 'KPIs', ''].map((t) => h('th', {}, t)))), list)),
    h('section.card', {}, h('h3', {}, 'Runs'), h('p.muted', {}, 'Tick runs to compare them (the first ticked is the baseline).'), runsBox, compareBox),
    h('section.card', {}, resultBox));
  const plots: uPlot[] = [];
  const timers = new Set<number>();
  const picked: string[] = [];
  let alive = true;

  const loadScenarios = async () => {
    try {
      const r = await get<any>('/scenarios');
      list.replaceChildren(...r.value.map((s: any) => h('tr', { 'data-scenario': s.id },
        h('td', {}, s.id), h('td', {}, s.name ?? ''), h('td', {}, Object.entries(s.units ?? {}).map(([k, u]: any) => `${k}: ${u.kind}`).join(', ')),
        h('td', {}, String(s.horizon ?? '')), h('td', {}, s.uncertainty ? `${s.uncertainty.runs} runs` : '—'),
        h('td', {}, Object.keys(s.kpis ?? {}).join(', ')),
        h('td', {}, h('button.small', { 'data-testid': `run-${s.id}`, onclick: () => void startRun(s.id) }, 'run')))));
      if (!r.value.length) list.append(h('tr', {}, h('td', { colspan: 7 }, 'No scenarios yet: PUT one (doppel scenario put <id> @file.json).')));
      await loadRuns(r.value.map((s: any) => s.id));
    } catch (e) { list.replaceChildren(h('tr', {}, h('td.error', { colspan: 7 }, errorText(e)))); }
  };

  let scenarioIds: string[] = [];
  const loadRuns = async (ids = scenarioIds) => {
    scenarioIds = ids;
    const all: any[] = [];
    for (const id of ids) {
      try { all.push(...(await get<any>(`/scenarios/${enc(id)}/runs`)).value.map((r: any) => ({ ...r, scenario: r.scenario ?? id }))); } catch { /* skip */ }
    }
    all.sort((a, b) => String(b.created).localeCompare(String(a.created)));
    runsBox.replaceChildren(h('table', {}, h('tbody', {}, all.slice(0, 30).map((r) => {
      const key = `${r.scenario}/${r.id}`;
      const cb = h('input', { type: 'checkbox', checked: picked.includes(key), disabled: r.status !== 'succeeded', onchange: () => {
        const i = picked.indexOf(key);
        if (cb.checked && i < 0) picked.push(key);
        if (!cb.checked && i >= 0) picked.splice(i, 1);
        void compare();
      } });
      return h('tr', {}, h('td', {}, cb), h('td', {}, h('a', { href: 'javascript:void 0', onclick: () => void showRun(r.scenario, r.id) }, key)),
        h('td', {}, r.status), h('td', {}, h('progress', { max: 1, value: r.progress ?? 0 })), h('td.muted', {}, r.created ?? ''));
    }))));
  };

  const startRun = async (id: string) => {
    resultBox.replaceChildren(h('p', {}, `starting ${id}…`));
    try {
      const run = await api<any>('POST', `/scenarios/${enc(id)}/runs`);
      await follow(id, run.id);
    } catch (e) { resultBox.replaceChildren(h('p.error', {}, errorText(e))); }
  };

  // Runs are jobs: follow one until it ends (GET every 300 ms), then show it.
  const follow = async (id: string, runId: string) => {
    const bar = h('progress', { max: 1, value: 0, 'data-testid': 'run-progress' });
    const stage = h('span');
    resultBox.replaceChildren(h('h3', {}, `${id}/${runId}`), bar, ' ', stage);
    while (alive) {
      const r = await get<any>(`/scenarios/${enc(id)}/runs/${enc(runId)}?maxPoints=2`);
      bar.value = r.progress ?? 0;
      stage.textContent = `${r.status} · ${r.stage ?? ''} · ${Math.round((r.progress ?? 0) * 100)}%`;
      if (r.status !== 'running' && r.status !== 'queued') break;
      await new Promise((res) => { const t = window.setTimeout(res, 300); timers.add(t); });
    }
    if (!alive) return;
    await loadRuns();
    const key = `${id}/${runId}`;
    if (!picked.includes(key)) picked.push(key);
    await showRun(id, runId);
    await compare();
    await loadRuns();
  };

  const showRun = async (id: string, runId: string) => {
    for (const p of plots.splice(0)) p.destroy();
    try {
      const r = await get<any>(`/scenarios/${enc(id)}/runs/${enc(runId)}?maxPoints=500`);
      const kpiRows = Object.entries(r.result?.kpis ?? {}).map(([k, v]: any) => h('tr', {}, h('td', {}, k), h('td', {}, fmtValue(v.value)),
        h('td', {}, v.spread ? `${fmtValue(v.spread.mean)} (p5 ${fmtValue(v.spread.p5)} · p50 ${fmtValue(v.spread.p50)} · p95 ${fmtValue(v.spread.p95)}, ${v.spread.runs} runs)` : '—')));
      const seriesBox = h('div.plotbox', { 'data-testid': 'run-chart' });
      const mcBox = h('div.plotbox', { 'data-testid': 'mc-bands' });
      resultBox.replaceChildren(h('h3', {}, `${id}/${runId}: ${r.status}`), r.error ? h('p.error', {}, JSON.stringify(r.error)) : '',
        h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'KPI'), h('th', {}, 'base run'), h('th', {}, 'Monte Carlo mean (spread)'))), h('tbody', {}, kpiRows)),
        seriesBox, mcBox, h('div.plotbox', { 'data-testid': 'kpi-bands' }));
      const s = r.result?.series;
      if (s?.time?.length) {
        const names = Object.keys(s).filter((k) => k !== 'time');
        plots.push(lineChart(seriesBox, 'base run (seconds)', s.time, names.map((n, i) => ({ label: n, values: s[n], color: COLOURS[i % COLOURS.length] })), { xLabel: 's' }));
        seriesBox.dataset.points = String(s.time.length);
      }
      // Monte Carlo bands over time: one chart per recorded variable; the base run is drawn at
      // the band's times where its (decimated) series has that time.
      const bands: any[] = r.result?.monteCarlo?.bands ?? [];
      const runs = r.result?.monteCarlo?.completed ?? 0;
      for (const b of bands) {
        if (!b.time?.length) continue;
        const base: (number | null)[] = b.time.map((t: number) => {
          const i = s?.time ? s.time.indexOf(t) : -1;
          return i >= 0 ? s[b.variable]?.[i] ?? null : null;
        });
        const div = h('div.plotbox', { 'data-variable': b.variable, 'data-points': String(b.time.length) });
        mcBox.append(div);
        plots.push(lineChart(div, `${b.variable}: Monte Carlo over time (${runs} runs; p5–p95, p25–p75, median)`, b.time, [
          { label: 'p5', values: b.p5, color: 'rgba(47,111,214,0.35)' },
          { label: 'p95', values: b.p95, color: 'rgba(47,111,214,0.35)' },
          { label: 'p25', values: b.p25, color: 'rgba(47,111,214,0.6)' },
          { label: 'p75', values: b.p75, color: 'rgba(47,111,214,0.6)' },
          { label: 'median', values: b.p50, color: '#2f6fd6' },
          { label: 'base run', values: base, color: '#d6612f', dash: [4, 4] },
        ], { bands: [[2, 1], [4, 3]], xLabel: 's', height: 200 }));
      }
    } catch (e) { resultBox.replaceChildren(h('p.error', {}, errorText(e))); }
  };

  const compare = async () => {
    const bandsBox = resultBox.querySelector<HTMLElement>('[data-testid=kpi-bands]');
    if (!picked.length) { compareBox.replaceChildren(); return; }
    // KPI bands: one chart per KPI, x = the picked runs, the Monte Carlo p5–p95 band around p50.
    try {
      const runs = await Promise.all(picked.map((k) => { const [sid, rid] = k.split('/'); return get<any>(`/scenarios/${enc(sid)}/runs/${enc(rid)}?maxPoints=2`); }));
      const kpis = [...new Set(runs.flatMap((r) => Object.keys(r.result?.kpis ?? {})))];
      const objective = h('select', { 'data-testid': 'objective' }, ...kpis.map((k) => h('option', { value: k }, k)));
      const direction = h('select', {}, h('option', { value: 'maximize' }, 'maximize'), h('option', { value: 'minimize' }, 'minimize'));
      const out = h('div');
      const doCompare = async () => {
        if (picked.length < 2) { out.replaceChildren(h('p.muted', {}, 'Tick a second run to compare.')); return; }
        try {
          const c = await get<any>(`/scenario-comparison?runs=${picked.map(enc).join(',')}&objective=${enc(objective.value)}&direction=${direction.value}`);
          out.replaceChildren(h('p.recommendation', { 'data-testid': 'recommendation' }, c.recommendation),
            h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'KPI'), ...picked.map((p) => h('th', {}, p)))),
              h('tbody', {}, c.kpis.map((k: any) => h('tr', {}, h('td', {}, k.kpi), ...picked.map((p) => {
                const v = k.runs[p];
                return h('td', {}, v ? `${fmtValue(v.value)} (${v.changePct >= 0 ? '+' : ''}${fmtValue(v.changePct)}%) [${fmtValue(v.p5)}, ${fmtValue(v.p95)}]` : '—');
              }))))));
        } catch (e) { out.replaceChildren(h('p.error', {}, errorText(e))); }
      };
      objective.addEventListener('change', () => void doCompare());
      direction.addEventListener('change', () => void doCompare());
      compareBox.replaceChildren(h('div.row', {}, 'Compare by ', objective, ' ', direction), out);
      await doCompare();
      if (bandsBox) {
        bandsBox.replaceChildren();
        const x = runs.map((_, i) => i + 1);
        for (const k of kpis) {
          const get5 = (r: any, f: string) => r.result?.kpis?.[k]?.spread?.[f] ?? null;
          const div = h('div.plotbox');
          bandsBox.append(div);
          plots.push(lineChart(div, `${k}: p5–p95 of the Monte Carlo per run (1…${runs.length}: ${picked.join(', ')})`, x, [
            { label: 'p5', values: runs.map((r) => get5(r, 'p5')), color: 'rgba(47,111,214,0.4)' },
            { label: 'p95', values: runs.map((r) => get5(r, 'p95')), color: 'rgba(47,111,214,0.4)' },
            { label: 'p50', values: runs.map((r) => get5(r, 'p50')), color: '#2f6fd6' },
            { label: 'base run', values: runs.map((r) => r.result?.kpis?.[k]?.value ?? null), color: '#d6612f', dash: [4, 4] },
          ], { bands: [[2, 1]], xLabel: 'run', height: 180 }));
        }
      }
    } catch (e) { compareBox.replaceChildren(h('p.error', {}, errorText(e))); }
  };

  void loadScenarios();
  return () => {
    alive = false;
    for (const t of timers) clearTimeout(t);
    for (const p of plots) p.destroy();
  };
}
