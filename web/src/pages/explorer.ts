// Explorer: twins by query (the ADT query language, autocompletion of models and properties from
// GET /models), a text filter, and a graph of twins and relationships expanded hop by hop.
import { api, applyPatch, enc, errorText, Feed, get } from '../api';
import { h, shortModel, twinLink } from '../dom';
import { models, propertyPaths, telemetryPaths } from '../models';
import { GraphView } from './graph';

const KEYWORDS = ['SELECT', 'FROM', 'DIGITALTWINS', 'RELATIONSHIPS', 'WHERE', 'AND', 'OR', 'NOT', 'IN', 'NIN',
  'TOP', 'COUNT()', 'JOIN', 'RELATED', 'MATCH', 'IS_OF_MODEL(', 'IS_DEFINED(', 'IS_NUMBER(', 'IS_STRING(',
  'STARTSWITH(', 'ENDSWITH(', 'CONTAINS(', 'MEAN(', 'MIN(', 'MAX(', 'LAST(', 'P95(', '$dtId', '$metadata.$model'];

const DEFAULT_QUERY = 'SELECT T FROM DIGITALTWINS T';

// Suggestions for the word before the cursor: model ids inside quotes (after IS_OF_MODEL), property
// names after "<alias>.", keywords elsewhere.
async function suggestionsFor(text: string, cursor: number): Promise<{ from: number; items: string[] }> {
  const before = text.slice(0, cursor);
  const quoted = /'([^']*)$/.exec(before);
  if (quoted && (before.match(/'/g)?.length ?? 0) % 2 === 1) {
    const prefix = quoted[1];
    const ms = await models();
    return { from: cursor - prefix.length, items: ms.map((m) => m.id).filter((id) => id.toLowerCase().includes(prefix.toLowerCase())) };
  }
  const dotted = /\b([A-Za-z_]\w*)\.([\w$/]*)$/.exec(before);
  if (dotted) {
    const prefix = dotted[2];
    const names = new Set<string>(['$dtId', '$etag', '$metadata']);
    for (const m of await models()) {
      try {
        for (const p of await propertyPaths(m.id)) names.add(p.path.replace('/', '.'));
        for (const p of await telemetryPaths(m.id)) names.add(p.path.replace('/', '.'));
      } catch { /* skip */ }
    }
    return { from: cursor - prefix.length, items: [...names].filter((n) => n.toLowerCase().startsWith(prefix.toLowerCase())).sort() };
  }
  const word = /([\w$(]*)$/.exec(before)![1];
  if (!word) return { from: cursor, items: [] };
  return { from: cursor - word.length, items: KEYWORDS.filter((k) => k.toLowerCase().startsWith(word.toLowerCase()) && k.toLowerCase() !== word.toLowerCase()) };
}

// The twin list is virtualised: every row of the answer is kept in memory (and patched live from
// the change feed), but only the rows in view plus OVERSCAN either side are in the DOM, all of one
// height (ROW_PX; cells do not wrap), with spacer rows standing in for the others. A list of 1,000
// twins updating at 1 Hz then costs the browser a few dozen rows, not a 1,000-row table laid out
// again after every status change (bench/ui_bench.mjs).
const OVERSCAN = 15;
const ROW_PX = 27;

interface ListRow { id: string; doc: any; raw: any }

export function explorerPage(root: HTMLElement): () => void {
  const editor = h('textarea.query', { rows: 3, spellcheck: false, 'data-testid': 'query' });
  editor.value = sessionStorage.getItem('doppel.query') ?? DEFAULT_QUERY;
  const suggest = h('ul.suggest', { 'data-testid': 'suggestions' });
  const filter = h('input', { type: 'search', placeholder: 'filter by id…', 'data-testid': 'filter' });
  const status = h('span.muted', { 'data-testid': 'result-count' });
  const tbody = h('tbody');
  const table = h('table.twins', { 'data-testid': 'twin-list' },
    h('colgroup', {}, h('col', { style: { width: '32%' } }), h('col', { style: { width: '38%' } }), h('col', { style: { width: '18%' } }), h('col', { style: { width: '12%' } })),
    h('thead', {}, h('tr', {}, h('th', {}, 'twin'), h('th', {}, 'model'), h('th', {}, 'status'), h('th', {}, ''))), tbody);
  const scroller = h('div.scroll', {}, table);
  const graphBox = h('div.graph', { 'data-testid': 'graph' });
  const graph = new GraphView(graphBox);
  let rows: any[] = [];
  let items: string[] = [];
  let active = 0;
  let from = 0;

  // The answer's rows (after the filter) and the window of them in the DOM.
  let list: ListRow[] = [];
  const docs = new Map<string, any>();  // twin id → its document, patched live
  const statusCells = new Map<string, HTMLElement[]>();  // twin id → its status cells in the DOM
  let first = -1, last = -1;
  const topPad = h('tr.pad', {}, h('td', { colSpan: 4 }));
  const bottomPad = h('tr.pad', {}, h('td', { colSpan: 4 }));
  const statusChip = (st: unknown) => (st !== undefined ? h('span', { class: `st st-${st}` }, String(st)) : '');
  const rowOf = (r: ListRow): HTMLTableRowElement => {
    if (!r.doc?.$dtId) return h('tr', { 'data-twin': r.id }, h('td', { colSpan: 4, title: JSON.stringify(r.raw) }, h('code', {}, JSON.stringify(r.raw))));
    const model = r.doc.$metadata?.$model;
    const cell = h('td', {}, statusChip(r.doc.status));
    return h('tr', { 'data-twin': r.id },
      h('td', { title: r.id }, twinLink(r.id)),
      h('td', { title: model ?? '' }, shortModel(model)),
      cell,
      h('td', {}, h('button.small', { onclick: () => void graph.focus(r.id) }, 'graph')));
  };
  // Puts the rows in view and OVERSCAN either side in the DOM. The window moves only when the rows
  // in view leave it, and rows still in the new window are kept. The viewport is the scroller's
  // max-height (before the rows are in, the scroller is only as high as the header).
  let viewPx = 0;
  const rowEls = new Map<number, HTMLTableRowElement>();  // by position in `list`
  const renderWindow = (force = false) => {
    viewPx ||= parseFloat(getComputedStyle(scroller).maxHeight) || 0;
    const top = Math.max(0, scroller.scrollTop - (table.tHead?.offsetHeight ?? 0));
    const vf = Math.floor(top / ROW_PX);
    const vl = Math.min(list.length, Math.ceil((top + Math.max(scroller.clientHeight, viewPx || 420)) / ROW_PX));
    if (!force && first <= vf && vl <= last) return;
    if (force) rowEls.clear();
    first = Math.max(0, vf - OVERSCAN);
    last = Math.min(list.length, vl + OVERSCAN);
    const old = new Map(rowEls);
    rowEls.clear();
    statusCells.clear();
    const trs = list.slice(first, last).map((r, k) => {
      const tr = old.get(first + k) ?? rowOf(r);
      rowEls.set(first + k, tr);
      if (r.doc?.$dtId) statusCells.set(r.id, [...(statusCells.get(r.id) ?? []), tr.cells[2]]);
      return tr;
    });
    (topPad.firstChild as HTMLElement).style.height = `${first * ROW_PX}px`;
    (bottomPad.firstChild as HTMLElement).style.height = `${(list.length - last) * ROW_PX}px`;
    tbody.replaceChildren(...(first > 0 ? [topPad] : []), ...trs, ...(last < list.length ? [bottomPad] : []));
    table.dataset.rows = String(list.length);
    table.dataset.rendered = String(last - first);
  };
  let scrollFrame = 0;
  scroller.addEventListener('scroll', () => {
    if (!scrollFrame) scrollFrame = requestAnimationFrame(() => { scrollFrame = 0; renderWindow(); });
  });

  // Live: patches of /status (the feed's path filter: the list shows nothing else that changes)
  // update the documents at once and the status cells in view once per frame, only where the
  // status changed.
  const dirty = new Set<string>();
  let frame = 0;
  let applied = 0, cellWrites = 0;
  const feed = new Feed({ path: '/status' }, (e) => {
    const doc = e.twinId ? docs.get(e.twinId) : undefined;
    if (!doc || e.type !== 'twin.patched' || !e.patch) return;
    applyPatch(doc, e.patch);
    applied++;
    if (!statusCells.has(e.twinId!)) return;
    dirty.add(e.twinId!);
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      for (const id of dirty) {
        const st = docs.get(id)?.status;
        for (const cell of statusCells.get(id) ?? []) {
          if ((cell.textContent ?? '') === (st === undefined ? '' : String(st))) continue;
          cell.replaceChildren(statusChip(st));
          cellWrites++;
        }
      }
      dirty.clear();
    });
  }, undefined, () => void run());  // back after a gap: the statuses missed, by running the query again
  // For the benchmark: change-feed patches applied, status cells rewritten.
  (window as any).__doppelTwinList = { stats: () => ({ applied, cellWrites, rows: list.length, rendered: last - first }) };

  const renderRows = () => {
    const f = filter.value.trim().toLowerCase();
    list = [];
    for (const r of rows) {
      const doc = r.$dtId !== undefined ? r : (Object.values(r)[0] as any);
      const id = String(doc?.$dtId ?? JSON.stringify(r));
      if (f && !id.toLowerCase().includes(f)) continue;
      list.push({ id, doc, raw: r });
    }
    scroller.scrollTop = 0;
    renderWindow(true);
    status.textContent = `${rows.length} result(s)${list.length < rows.length ? `, ${list.length} shown` : ''}`;
  };

  const run = async () => {
    hideSuggest();
    sessionStorage.setItem('doppel.query', editor.value);
    status.textContent = 'querying…';
    status.className = 'muted';
    try {
      rows = [];
      let token: string | null = null;
      do {
        const r: any = await api('POST', '/query', token ? { query: editor.value, continuationToken: token } : { query: editor.value });
        rows.push(...r.value);
        token = r.continuationToken ?? null;
      } while (token && rows.length < 10000);
      docs.clear();
      for (const r of rows) {
        const doc = r.$dtId !== undefined ? r : (Object.values(r)[0] as any);
        if (doc?.$dtId) docs.set(doc.$dtId, doc);
      }
      renderRows();
      const first = rows.map((r) => (r.$dtId !== undefined ? r : (Object.values(r)[0] as any))?.$dtId).find((x) => x);
      if (first && graph.empty()) void graph.focus(first);
    } catch (e) {
      status.textContent = errorText(e);
      status.className = 'error';
    }
  };

  const hideSuggest = () => { suggest.replaceChildren(); items = []; };
  const accept = (i: number) => {
    const item = items[i];
    if (item === undefined) return;
    const cur = editor.selectionStart;
    editor.value = editor.value.slice(0, from) + item + editor.value.slice(cur);
    editor.selectionStart = editor.selectionEnd = from + item.length;
    hideSuggest();
    editor.focus();
  };
  const showSuggest = async () => {
    const cur = editor.selectionStart;
    const s = await suggestionsFor(editor.value, cur);
    items = s.items.slice(0, 12);
    from = s.from;
    active = 0;
    suggest.replaceChildren(...items.map((it, i) => h('li', { class: i === active ? 'active' : '', onmousedown: (e: Event) => { e.preventDefault(); accept(i); } }, it)));
  };
  editor.addEventListener('input', () => void showSuggest());
  editor.addEventListener('blur', () => setTimeout(hideSuggest, 150));
  editor.addEventListener('keydown', (e) => {
    if (items.length && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      [...suggest.children].forEach((li, i) => li.classList.toggle('active', i === active));
    } else if (items.length && (e.key === 'Tab' || e.key === 'Enter') && !e.ctrlKey) {
      e.preventDefault();
      accept(active);
    } else if (e.key === 'Escape') {
      hideSuggest();
    } else if (e.key === 'Enter' && e.ctrlKey) {
      e.preventDefault();
      void run();
    }
  });
  filter.addEventListener('input', renderRows);

  const modelSelect = h('select', { onchange: () => {
    if (!modelSelect.value) return;
    editor.value = `SELECT T FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, '${modelSelect.value}')`;
    void run();
  } }, h('option', { value: '' }, 'twins of model…'));
  void models().then((ms) => modelSelect.append(...ms.map((m) => h('option', { value: m.id }, m.id)))).catch(() => {});

  root.append(
    h('section.card', {},
      h('h2', {}, 'Twins'),
      h('div.editor', {}, editor, suggest),
      h('div.row', {}, h('button', { onclick: () => void run(), 'data-testid': 'run-query' }, 'Run query (Ctrl+Enter)'), ' ', modelSelect, ' ', filter, ' ', status),
      scroller),
    h('section.card', {},
      h('h2', {}, 'Graph'),
      h('p.muted', {}, 'Click a twin to expand its relationships one hop; double-click to open it.'),
      graphBox));
  void run();
  return () => {
    feed.close();
    cancelAnimationFrame(frame);
    cancelAnimationFrame(scrollFrame);
    graph.destroy();
    delete (window as any).__doppelTwinList;
  };
}

export async function relationshipsOf(id: string): Promise<{ out: any[]; inc: any[] }> {
  const [out, inc] = await Promise.all([
    get<any>(`/digitaltwins/${enc(id)}/relationships`),
    get<any>(`/digitaltwins/${enc(id)}/incomingrelationships`),
  ]);
  return { out: out.value, inc: inc.value };
}
