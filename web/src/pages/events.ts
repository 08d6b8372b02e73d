// Alerts and events: the live change feed (every twin), newest first, with the twins that are
// stale now (GET /sync?state=stale) on top.
import { errorText, Feed, get, type FeedEvent } from '../api';
import { h, twinLink } from '../dom';

export function eventsPage(root: HTMLElement): () => void {
  const stale = h('div', { 'data-testid': 'stale-twins' });
  const list = h('tbody');
  const typeFilter = h('select', {}, ...['all', 'alerts (stale/fresh)', 'twin.patched', 'twin.created', 'twin.replaced', 'twin.deleted', 'relationship.*'].map((t) => h('option', { value: t }, t)));
  const pause = h('input', { type: 'checkbox' });
  const count = h('span.muted');
  root.append(h('section.card', {}, h('h2', {}, 'Stale twins'), stale),
    h('section.card', {}, h('h2', {}, 'Events'), h('div.row', {}, 'show ', typeFilter, ' ', h('label', {}, pause, ' pause'), ' ', count),
      h('table.events', { 'data-testid': 'event-list' }, h('thead', {}, h('tr', {}, ...['time', 'type', 'twin', 'detail'].map((t) => h('th', {}, t)))), list)));
  const loadStale = async () => {
    try {
      const r = await get<any>('/sync?state=stale&orderBy=age');
      stale.replaceChildren(r.value.length ? h('ul', {}, r.value.map((s: any) => h('li', {}, twinLink(s.twinId), ` — no reading for ${Math.round(s.ageMs / 1000)} s (stale after ${Math.round(s.staleAfterMs / 1000)} s)`))) : h('p.muted', {}, 'none'));
    } catch (e) { stale.replaceChildren(h('p.error', {}, errorText(e))); }
  };
  void loadStale();
  let n = 0;
  const matches = (e: FeedEvent) => {
    const f = typeFilter.value;
    if (f === 'all') return true;
    if (f.startsWith('alerts')) return e.type === 'twin.stale' || e.type === 'twin.fresh';
    if (f === 'relationship.*') return e.type.startsWith('relationship.');
    return e.type === f;
  };
  const feed = new Feed({}, (e) => {
    if (e.type === 'subscribed') return;
    if (e.type === 'twin.stale' || e.type === 'twin.fresh') void loadStale();
    if (pause.checked || !matches(e)) return;
    n++;
    count.textContent = `${n} event(s)`;
    const detail = e.patch ? e.patch.map((p) => `${p.op} ${p.path}${'value' in p ? ' = ' + JSON.stringify(p.value) : ''}`).join('; ')
      : e.type === 'twin.stale' ? `no reading for ${Math.round((e.data?.ageMs ?? 0) / 1000)} s` : e.data ? JSON.stringify(e.data).slice(0, 160) : '';
    list.prepend(h('tr', { class: e.type === 'twin.stale' ? 'alert' : e.type === 'twin.fresh' ? 'ok' : '' },
      h('td', {}, e.time ? new Date(e.time).toLocaleTimeString() : new Date().toLocaleTimeString()), h('td', {}, e.type),
      h('td', {}, e.twinId ? twinLink(e.twinId) : ''), h('td.detail', {}, detail)));
    while (list.children.length > 300) list.lastElementChild!.remove();
  });
  return () => feed.close();
}
