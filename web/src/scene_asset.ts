// The glTF scene attached to a twin or a model (PUT/DELETE /digitaltwins/{id}/scene,
// /models/{id}/scene): what is attached, an upload control (a .glb, or a .gltf with embedded
// data) and a remove button; a refusal shows the server's RFC 7807 problem.
import { api, errorText } from './api';
import { h } from './dom';

export interface SceneState { text: string; removable: boolean }

// `url` is the asset's path; `state` says what is attached now (asked again after each change).
// Test ids: <prefix>-info, <prefix>-file, <prefix>-remove, <prefix>-result (class ok or error).
export function sceneAssetControls(url: string, prefix: string, what: string, state: () => Promise<SceneState>): HTMLElement {
  const info = h('span.muted', { 'data-testid': `${prefix}-info` });
  const msg = h('span.msg', { 'data-testid': `${prefix}-result` });
  const file = h('input', { type: 'file', accept: '.glb,.gltf,model/gltf-binary,model/gltf+json', 'data-testid': `${prefix}-file` });
  const show = (text: string, cls: 'ok' | 'error' | '') => { msg.textContent = text; msg.className = cls ? `msg ${cls}` : 'msg'; };
  const refresh = async () => {
    try {
      const s = await state();
      info.textContent = s.text;
      remove.hidden = !s.removable;
    } catch (e) { info.textContent = `3D: ${errorText(e)}`; }
  };
  const remove = h('button.small', { hidden: true, 'data-testid': `${prefix}-remove`, onclick: async () => {
    try { await api('DELETE', url); show('removed', 'ok'); } catch (e) { show(errorText(e), 'error'); }
    void refresh();
  } }, 'remove');
  file.addEventListener('change', async () => {
    const f = file.files?.[0];
    if (!f) return;
    const type = /\.gltf$/i.test(f.name) ? 'model/gltf+json' : 'model/gltf-binary';
    show('uploading…', '');
    try {
      const r: any = await api('PUT', url, await f.arrayBuffer(), type);
      show(`uploaded ${f.name}: ${r.bytes} bytes`, 'ok');
    } catch (e) { show(errorText(e), 'error'); }
    file.value = '';
    void refresh();
  });
  void refresh();
  return h('div.row', {}, info, ' ', h('label.small', { title: `attach a glTF 2.0 model (.glb or .gltf with embedded data) to ${what}` }, 'upload glTF ', file), remove, ' ', msg);
}
