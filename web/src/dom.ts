// Tiny DOM helpers: h('div.cls', {attrs}, children...).
type Child = Node | string | number | null | undefined | false;
export function h<K extends keyof HTMLElementTagNameMap>(
    spec: K | `${K}.${string}` | `${K}#${string}`, attrs: Record<string, any> = {},
    ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const m = /^([a-z0-9]+)(?:#([\w-]+))?((?:\.[\w-]+)*)$/.exec(spec)!;
  const el = document.createElement(m[1] as K);
  if (m[2]) el.id = m[2];
  if (m[3]) el.className = m[3].slice(1).split('.').join(' ');
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k in el && k !== 'list' && typeof v !== 'string') (el as any)[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'number' ? String(c) : c);
  }
  return el;
}
export function fmtValue(v: unknown): string {
  if (v === undefined) return '—';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : v.toPrecision(6).replace(/\.?0+$/, '');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}
export function twinLink(id: string): HTMLAnchorElement {
  return h('a', { href: `#/twin/${encodeURIComponent(id)}` }, id);
}
export function shortModel(id: string | undefined): string {
  if (!id) return '';
  const m = /([^:;]+);\d+$/.exec(id);
  return m ? m[1] : id;
}
