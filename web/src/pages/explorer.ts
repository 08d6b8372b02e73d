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

export function explorerPage(root: HTMLElement): () => void {
  const editor = h('textarea.query', { rows: 3, spellcheck: false, 'data-testid': 'query' });
  editor.value = sessionStorage.getItem('doppel.query') ?? DEFAULT_QUERY;
  const suggest = h('ul.suggest', { 'data-testid': 'suggestions' });
  const filter = h('input', { type: 'search', placeholder: 'filter by id…', 'data-testid': 'filter' });
  const status = h('span.muted');
  const tbody = h('tbody');
  const table = h('table.twins', { 'data-testid': 'twin-list' },
    h('thead', {}, h('tr', {}, h('th', {}, 'twin'), h('th', {}, 'model'), h('th', {}, 'status'), h('th', {}, ''))), tbody);
  const graphBox = h('div.graph', { 'data-testid': 'graph' });
  const graph = new GraphView(graphBox);
  let rows: any[] = [];
  let items: string[] = [];
  let active = 0;
  let from = 0;

  // Live: patched twins update their row's status in place (the change feed, batched per frame).
  const statusCells = new Map<string, { doc: any; cell: HTMLElement }>();
  const dirty = new Set<string>();
  let frame = 0;
  const feed = new Feed({}, (e) => {
    const entry = e.twinId ? statusCells.get(e.twinId) : undefined;
    if (!entry || e.type !== 'twin.patched' || !e.patch) return;
    applyPatch(entry.doc, e.patch);
    dirty.add(e.twinId!);
    if (!frame) frame = requestAnimationFrame(() => {
      frame = 0;
      for (const id of dirty) {
        const x = statusCells.get(id);
        if (!x) continue;
        const st = x.doc?.status;
        x.cell.replaceChildren(st !== undefined ? h('span', { class: `st st-${st}` }, String(st)) : '');
        x.cell.title = `updated ${new Date().toLocaleTimeString()}`;
      }
      dirty.clear();
    });
  });

  const renderRows = () => {
    const f = filter.value.trim().toLowerCase();
    statusCells.clear();
    tbody.replaceChildren();
    let shown = 0;
    for (const r of rows) {
      const doc = r.$dtId !== undefined ? r : (Object.values(r)[0] as any);
      const id = doc?.$dtId ?? JSON.stringify(r);
      if (f && !String(id).toLowerCase().includes(f)) continue;
      if (++shown > 2000) break;
      const model = doc?.$metadata?.$model;
      const statusCell = h('td', {}, doc?.status !== undefined ? h('span', { class: `st st-${doc.status}` }, String(doc.status)) : '');
      if (doc?.$dtId) statusCells.set(id, { doc, cell: statusCell });
      tbody.append(h('tr', { 'data-twin': id },
        h('td', {}, doc?.$dtId ? twinLink(id) : h('code', {}, JSON.stringify(r))),
        h('td', { title: model ?? '' }, shortModel(model)),
        statusCell,
        h('td', {}, doc?.$dtId ? h('button.small', { onclick: () => void graph.focus(id) }, 'graph') : '')));
    }
    status.textContent = `${rows.length} result(s)${shown < rows.length ? `, ${shown} shown` : ''}`;
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
      h('div.scroll', {}, table)),
    h('section.card', {},
      h('h2', {}, 'Graph'),
      h('p.muted', {}, 'Click a twin to expand its relationships one hop; double-click to open it.'),
      graphBox));
  void run();
  return () => { feed.close(); cancelAnimationFrame(frame); graph.destroy(); };
}

export async function relationshipsOf(id: string): Promise<{ out: any[]; inc: any[] }> {
  const [out, inc] = await Promise.all([
    get<any>(`/digitaltwins/${enc(id)}/relationships`),
    get<any>(`/digitaltwins/${enc(id)}/incomingrelationships`),
  ]);
  return { out: out.value, inc: inc.value };
}
