import { api, apiKey, errorText, setApiKey } from '../api';
import { h } from '../dom';
import { resetModels } from '../models';

export function loginPage(root: HTMLElement): void {
  const input = h('input', { type: 'password', placeholder: 'dpk_…', value: apiKey(), size: 90, 'data-testid': 'api-key' });
  const msg = h('p.msg');
  const save = async () => {
    setApiKey(input.value.trim());
    resetModels();
    try {
      await api('GET', '/models');
      msg.textContent = input.value.trim() ? 'Key accepted.' : 'This server needs no key (--insecure).';
      msg.className = 'msg ok';
      setTimeout(() => { location.hash = '#/explorer'; }, 300);
    } catch (e) {
      msg.textContent = errorText(e);
      msg.className = 'msg error';
    }
  };
  root.append(h('section.card', {},
    h('h2', {}, 'API key'),
    h('p', {}, 'doppel needs an API key (create one with ', h('code', {}, 'doppel key create --role admin'),
      '). It is kept in this browser (localStorage) and sent as ', h('code', {}, 'Authorization: Bearer'),
      '. A server started with ', h('code', {}, '--insecure'), ' needs none: leave the field empty.'),
    h('form', { onsubmit: (e: Event) => { e.preventDefault(); void save(); } },
      input, ' ', h('button', { type: 'submit' }, 'Save'), ' ',
      h('button', { type: 'button', onclick: () => { input.value = ''; void save(); } }, 'Forget key')),
    msg));
}
