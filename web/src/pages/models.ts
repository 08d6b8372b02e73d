// Model browser: every model, and the resolved view of one (inherited contents with where each
// comes from, components resolved), and the glTF scene its twins are drawn with in the 3D scene
// (upload, remove).
import { enc, errorText, get } from '../api';
import { h } from '../dom';
import { models, resolvedModel, schemaText, type Content } from '../models';
import { sceneAssetControls } from '../scene_asset';

export function modelsPage(root: HTMLElement, arg: string): void {
  const list = h('ul.models');
  const detail = h('div.model-detail', { 'data-testid': 'model-detail' });
  root.append(h('div.split', {}, h('section.card', {}, h('h2', {}, 'Models'), list), h('section.card.grow', {}, detail)));
  const show = async (id: string) => {
    detail.replaceChildren(h('p.muted', {}, 'loading…'));
    try {
      const r = await resolvedModel(id);
      const row = (c: Content, prefix = '') => h('tr', {},
        h('td', {}, prefix + c.name), h('td', {}, c['@type']),
        h('td', {}, c['@type'] === 'Command'
          ? `(${c.request ? `${c.request.name}: ${schemaText(c.request.schema)}` : ''}) → ${c.response ? schemaText(c.response.schema) : '∅'}`
          : c['@type'] === 'Relationship' ? `→ ${c.target ?? 'any'}` : schemaText(c.schema)),
        h('td', {}, [c.semanticType, c.unit].filter(Boolean).join(' · ')),
        h('td', {}, c.writable ? 'writable' : ''),
        h('td.muted', { title: c.definedIn ?? '' }, c.definedIn === id ? 'own' : c.definedIn ?? ''));
      const rows: HTMLElement[] = [];
      for (const c of r.contents) {
        rows.push(row(c));
        if (c['@type'] === 'Component' && typeof c.schema === 'string') {
          try { for (const s of (await resolvedModel(c.schema)).contents) rows.push(row(s, `${c.name}/`)); } catch { /* skip */ }
        }
      }
      detail.replaceChildren(
        h('h2', {}, r.displayName ?? id), h('p', {}, h('code', {}, id)),
        h('p', {}, 'extends: ', (r.extends ?? []).length ? (r.extends ?? []).map((e) => h('a', { href: `#/models/${encodeURIComponent(e)}`, style: { marginRight: '1em' } }, e)) : 'nothing'),
        h('table', {}, h('thead', {}, h('tr', {}, ...['name', 'kind', 'schema', 'semantic type · unit', '', 'defined in'].map((t) => h('th', {}, t)))), h('tbody', {}, rows)),
        h('p', {}, h('a', { href: '#/explorer', onclick: () => sessionStorage.setItem('doppel.query', `SELECT T FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, '${id}')`) }, 'twins of this model →')),
        h('h3', {}, '3D scene'),
        h('div', { 'data-testid': 'model-scene' }, sceneAssetControls(`/models/${enc(id)}/scene`, 'model-scene', 'this model', async () => {
          // GET /scenes: what is attached without downloading it.
          const a = ((await get<any>('/scenes')).value as any[]).find((x) => x.kind === 'model' && x.id === id);
          return a
            ? { text: `glTF attached (${a.contentType}, ${a.bytes} bytes): the 3D scene draws this model's twins with it, except twins with a glTF of their own`, removable: true }
            : { text: 'none: the 3D scene draws this model\'s twins as generated boxes (or with a glTF of their own)', removable: false };
        })));
    } catch (e) {
      detail.replaceChildren(h('p.error', {}, errorText(e)));
    }
  };
  void models().then((ms) => {
    list.replaceChildren(...ms.map((m) => h('li', {}, h('a', { href: `#/models/${encodeURIComponent(m.id)}` }, m.displayName?.en ?? m.id), h('br'), h('small.muted', {}, m.id))));
    const id = arg || ms[0]?.id;
    if (id) void show(id);
  }).catch((e) => list.replaceChildren(h('li.error', {}, errorText(e))));
}
