// The 3D scene (three.js): a generated plant from the twins and their relationships (each twin
// that `contains` others is a line, its machines laid out along it in `position` order; other
// twins on a grid beside it), machines coloured by a chosen numeric property with a legend, live
// from /events, click a machine to open its twin. One InstancedMesh for all machines, so 1,000
// twins are one draw call; frames are rendered only when something changed. A twin with a glTF
// scene of its own or of its model (GET /scenes, then …/scene) is drawn with it instead of the
// generated box: scaled into the box's slot, its materials cloned so that colouring applies.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { applyPatch, authHeaders, enc, errorText, Feed, get, getPath, queryAll } from '../api';
import { fmtValue, h } from '../dom';
import { isNumericSchema, propertyPaths } from '../models';

interface Item { id: string; doc: any; index: number; pos: THREE.Vector3; model?: THREE.Object3D; materials?: THREE.Material[] }

const RAMP = [[0.18, 0.35, 0.85], [0.1, 0.7, 0.6], [0.55, 0.8, 0.2], [0.98, 0.8, 0.15], [0.9, 0.25, 0.15]];
function ramp(t: number, out: THREE.Color): THREE.Color {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  return out.setRGB(RAMP[i][0] + (RAMP[i + 1][0] - RAMP[i][0]) * f, RAMP[i][1] + (RAMP[i + 1][1] - RAMP[i][1]) * f,
    RAMP[i][2] + (RAMP[i + 1][2] - RAMP[i][2]) * f);
}
const STATUS_COLOURS: Record<string, number> = { running: 0x3cb371, idle: 0xf0c040, down: 0xe04030, maintenance: 0x4080e0 };

export async function scenePage(root: HTMLElement): Promise<() => void> {
  const select = h('select', { 'data-testid': 'colour-by' });
  const legend = h('div.legend', { 'data-testid': 'legend' });
  const info = h('span.muted');
  const box = h('div.scene', { 'data-testid': 'scene' });
  root.append(h('section.card', {}, h('div.row', {}, h('strong', {}, 'Colour by '), select, ' ', legend, ' ', info), box));

  let docs: any[] = [], rels: any[] = [];
  try {
    [docs, rels] = await Promise.all([
      queryAll('SELECT T FROM DIGITALTWINS T').then((r) => r.map((x) => x.T ?? x)),
      queryAll("SELECT R FROM RELATIONSHIPS R WHERE R.$relationshipName = 'contains'").then((r) => r.map((x) => x.R ?? x)).catch(() => []),
    ]);
  } catch (e) {
    box.append(h('p.error', {}, errorText(e)));
    return () => {};
  }

  // Layout: lines along z, their machines along x; the rest on a grid after the last line.
  const lineOf = new Map<string, { line: string; pos: number }>();
  const lines: string[] = [];
  for (const r of rels.sort((a, b) => (a.position ?? 0) - (b.position ?? 0))) {
    if (!lines.includes(r.$sourceId)) lines.push(r.$sourceId);
    if (!lineOf.has(r.$targetId)) lineOf.set(r.$targetId, { line: r.$sourceId, pos: r.position ?? 0 });
  }
  lines.sort();
  const machines = docs.filter((d) => !lines.includes(d.$dtId));
  const perLine = new Map<string, number>();
  const items = new Map<string, Item>();
  const loose = machines.filter((d) => !lineOf.has(d.$dtId)).sort((a, b) => a.$dtId.localeCompare(b.$dtId, undefined, { numeric: true }));
  const cols = Math.max(1, Math.ceil(Math.sqrt(loose.length)));
  const lineZ = (i: number) => i * 7;
  machines.sort((a, b) => (lineOf.get(a.$dtId)?.pos ?? 0) - (lineOf.get(b.$dtId)?.pos ?? 0));
  machines.forEach((d, index) => {
    const l = lineOf.get(d.$dtId);
    let pos: THREE.Vector3;
    if (l) {
      const k = perLine.get(l.line) ?? 0;
      perLine.set(l.line, k + 1);
      pos = new THREE.Vector3(k * 4.5, 0, lineZ(lines.indexOf(l.line)));
    } else {
      const k = loose.indexOf(d);
      pos = new THREE.Vector3((k % cols) * 3, 0, lineZ(lines.length) + Math.floor(k / cols) * 3);
    }
    items.set(d.$dtId, { id: d.$dtId, doc: d, index, pos });
  });
  const byIndex = [...items.values()].sort((a, b) => a.index - b.index);

  // Colour-by choices: numeric properties of the models present, and status.
  const modelIds = [...new Set(machines.map((d) => d.$metadata?.$model).filter(Boolean))];
  const numeric = new Set<string>();
  for (const m of modelIds) {
    for (const p of await propertyPaths(m).catch(() => [])) if (isNumericSchema(p.c.schema)) numeric.add(p.path);
  }
  const hasStatus = machines.some((d) => d.status !== undefined);
  const choices = [...(hasStatus ? ['status'] : []), ...[...numeric].sort()];
  select.append(...choices.map((c) => h('option', { value: c }, c)));
  const preferred = sessionStorage.getItem('doppel.sceneColour');
  select.value = preferred && choices.includes(preferred) ? preferred : (choices.includes('cycleTime') ? 'cycleTime' : choices[0] ?? '');

  // three.js
  const width = Math.max(400, box.clientWidth || 900), height = 520;
  // Antialiasing costs most where WebGL runs on the CPU (SwiftShader); large plants go without.
  const renderer = new THREE.WebGLRenderer({ antialias: byIndex.length <= 100, preserveDrawingBuffer: true });
  renderer.setPixelRatio(1);
  renderer.setSize(width, height);
  box.append(renderer.domElement);
  const scene = new THREE.Scene();
  scene.background = new THREE.Color(0xeef1f5);
  const camera = new THREE.PerspectiveCamera(45, width / height, 0.1, 2000);
  const extentX = Math.max(10, ...byIndex.map((i) => i.pos.x)), extentZ = Math.max(6, ...byIndex.map((i) => i.pos.z));
  const center = new THREE.Vector3(extentX / 2, 0, extentZ / 2);
  const dist = Math.max(extentX, extentZ) * 1.1 + 8;
  camera.position.set(center.x - dist * 0.35, dist * 0.75, center.z + dist * 0.9);
  const controls = new OrbitControls(camera, renderer.domElement);
  controls.target.copy(center);
  controls.update();
  scene.add(new THREE.HemisphereLight(0xffffff, 0x667788, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.set(20, 40, 30);
  scene.add(sun);
  const floor = new THREE.Mesh(new THREE.PlaneGeometry(extentX + 20, extentZ + 20), new THREE.MeshLambertMaterial({ color: 0xd5dae2 }));
  floor.rotation.x = -Math.PI / 2;
  floor.position.set(center.x, -0.01, center.z);
  scene.add(floor);
  lines.forEach((l, i) => {
    const n = perLine.get(l) ?? 0;
    const belt = new THREE.Mesh(new THREE.BoxGeometry(Math.max(1, n) * 4.5, 0.3, 1.2), new THREE.MeshLambertMaterial({ color: 0x59606b }));
    belt.position.set((Math.max(1, n) - 1) * 2.25, 0.15, lineZ(i) + 1.8);
    scene.add(belt);
    scene.add(label(l, new THREE.Vector3(-3.2, 0.8, lineZ(i) + 1.8), 1.6));
  });
  const geometry = new THREE.BoxGeometry(2, 1.6, 2);
  geometry.translate(0, 0.8, 0);
  const mesh = new THREE.InstancedMesh(geometry, new THREE.MeshLambertMaterial({ color: 0xffffff }), Math.max(1, byIndex.length));
  mesh.count = byIndex.length;
  const m4 = new THREE.Matrix4();
  for (const it of byIndex) mesh.setMatrixAt(it.index, m4.makeTranslation(it.pos.x, 0, it.pos.z));
  scene.add(mesh);
  // A spindle on each machine (one more instanced mesh).
  const spindleGeo = new THREE.CylinderGeometry(0.25, 0.25, 0.8, 12);
  spindleGeo.translate(0, 2, 0);
  const spindles = new THREE.InstancedMesh(spindleGeo, new THREE.MeshLambertMaterial({ color: 0x8a929e }), Math.max(1, byIndex.length));
  spindles.count = byIndex.length;
  for (const it of byIndex) spindles.setMatrixAt(it.index, m4.makeTranslation(it.pos.x, 0, it.pos.z));
  scene.add(spindles);
  if (byIndex.length <= 80) for (const it of byIndex) scene.add(label(it.id, new THREE.Vector3(it.pos.x, 3, it.pos.z), 1));

  let dirty = true;

  // glTF scenes: the twin's own, else its model's (one load per asset, cloned per twin).
  const gltfTwins: string[] = [];
  const gltfGroup = new THREE.Group();
  scene.add(gltfGroup);
  try {
    const list = (await get<any>('/scenes')).value as { kind: string; id: string; etag: string }[];
    const own = new Map(list.filter((a) => a.kind === 'twin').map((a) => [a.id, a]));
    const ofModel = new Map(list.filter((a) => a.kind === 'model').map((a) => [a.id, a]));
    const loader = new GLTFLoader();
    loader.setRequestHeader(authHeaders());
    const loads = new Map<string, Promise<THREE.Object3D | null>>();
    const load = (url: string) => {
      if (!loads.has(url)) {
        loads.set(url, loader.loadAsync(url).then((g) => g.scene, (e) => {
          info.after(h('span.error', { 'data-testid': 'scene-error' }, ` ${url}: ${e instanceof Error ? e.message : String(e)}`));
          return null;
        }));
      }
      return loads.get(url)!;
    };
    const slot = new THREE.Vector3(2, 1.6, 2);
    const hide = new THREE.Matrix4().makeScale(0, 0, 0);
    await Promise.all(byIndex.map(async (it) => {
      const model = it.doc.$metadata?.$model as string | undefined;
      const asset = own.get(it.id) ?? (model ? ofModel.get(model) : undefined);
      if (!asset) return;
      const url = asset.kind === 'twin' ? `/digitaltwins/${enc(it.id)}/scene` : `/models/${enc(asset.id)}/scene`;
      const src = await load(`${url}?v=${enc(asset.etag)}`);
      if (!src) return;
      const obj = src.clone(true);
      // Fit into the generated box's slot, standing on the floor, centred on the slot.
      const box3 = new THREE.Box3().setFromObject(obj);
      const size = box3.getSize(new THREE.Vector3());
      const k = Math.min(slot.x / (size.x || 1), slot.y / (size.y || 1), slot.z / (size.z || 1));
      const centre = box3.getCenter(new THREE.Vector3());
      const holder = new THREE.Group();
      obj.scale.multiplyScalar(k);
      obj.position.set(-centre.x * k, -box3.min.y * k, -centre.z * k);
      holder.add(obj);
      holder.position.set(it.pos.x, 0, it.pos.z);
      holder.userData.twinId = it.id;
      const materials: THREE.Material[] = [];
      obj.traverse((o) => {
        const m = o as THREE.Mesh;
        if (!m.isMesh) return;
        m.material = Array.isArray(m.material) ? m.material.map((x) => x.clone()) : m.material.clone();
        materials.push(...(Array.isArray(m.material) ? m.material : [m.material]));
      });
      it.model = holder;
      it.materials = materials;
      gltfGroup.add(holder);
      gltfTwins.push(it.id);
      mesh.setMatrixAt(it.index, hide);
      spindles.setMatrixAt(it.index, hide);
    }));
    if (gltfTwins.length) { mesh.instanceMatrix.needsUpdate = true; spindles.instanceMatrix.needsUpdate = true; mesh.computeBoundingSphere(); }
  } catch (e) {
    info.after(h('span.error', {}, ` glTF scenes: ${errorText(e)}`));
  }

  const colour = new THREE.Color();
  const paint = (it: Item, c: THREE.Color) => {
    mesh.setColorAt(it.index, c);
    for (const m of it.materials ?? []) {
      const cm = m as THREE.Material & { color?: THREE.Color };
      if (cm.color) cm.color.copy(c);
    }
  };
  const recolour = () => {
    const prop = select.value;
    sessionStorage.setItem('doppel.sceneColour', prop);
    if (prop === 'status') {
      for (const it of byIndex) paint(it, colour.set(STATUS_COLOURS[String(it.doc.status)] ?? 0xaaaaaa));
      legend.replaceChildren(...Object.entries(STATUS_COLOURS).map(([k, c]) => h('span.swatch', {}, h('i', { style: { background: `#${c.toString(16).padStart(6, '0')}` } }), k)));
    } else {
      const vals = byIndex.map((it) => getPath(it.doc, prop)).filter((v): v is number => typeof v === 'number');
      const lo = vals.length ? Math.min(...vals) : 0, hi = vals.length ? Math.max(...vals) : 1;
      for (const it of byIndex) {
        const v = getPath(it.doc, prop);
        if (typeof v === 'number') ramp(hi > lo ? (v - lo) / (hi - lo) : 0.5, colour);
        else colour.set(0xaaaaaa);
        paint(it, colour);
      }
      const stops = RAMP.map((c) => `rgb(${c.map((x) => Math.round(x * 255)).join(',')})`).join(',');
      legend.replaceChildren(h('span', {}, fmtValue(lo)), h('span.ramp', { style: { background: `linear-gradient(to right, ${stops})` } }), h('span', {}, fmtValue(hi)), h('span.swatch', {}, h('i', { style: { background: '#aaa' } }), 'no value'));
    }
    if (mesh.instanceColor) mesh.instanceColor.needsUpdate = true;
    dirty = true;
  };
  select.addEventListener('change', recolour);
  recolour();
  info.textContent = `${byIndex.length} twins, ${lines.length} line(s)${gltfTwins.length ? `, ${gltfTwins.length} with a glTF model` : ''} · drag to orbit, wheel to zoom, click a machine to open it`;
  controls.addEventListener('change', () => { dirty = true; });

  // Click → the twin page (a click, not the end of a drag).
  const ray = new THREE.Raycaster();
  let lastPick = '';
  let down: { x: number; y: number } | null = null;
  renderer.domElement.addEventListener('pointerdown', (e) => { down = { x: e.clientX, y: e.clientY }; });
  renderer.domElement.addEventListener('pointerup', (e) => {
    if (!down || Math.hypot(e.clientX - down.x, e.clientY - down.y) > 4) return;
    const r = renderer.domElement.getBoundingClientRect();
    ray.setFromCamera(new THREE.Vector2(((e.clientX - r.left) / r.width) * 2 - 1, -((e.clientY - r.top) / r.height) * 2 + 1), camera);
    const hit = ray.intersectObjects([mesh, gltfGroup], true)[0];
    if (!hit) return;
    let twin: string | undefined;
    if (hit.object === mesh && hit.instanceId !== undefined) twin = byIndex[hit.instanceId].id;
    for (let o: THREE.Object3D | null = hit.object; o && !twin; o = o.parent) twin = o.userData.twinId;
    lastPick = hit.object === mesh ? 'box' : 'gltf';
    (window as any).__doppelScenePick = { twin, hit: lastPick };  // kept after the page changes (tests)
    if (twin) location.hash = `#/twin/${encodeURIComponent(twin)}`;
  });

  // Live updates: recolour at most once per frame.
  let pendingColour = false;
  let updates = 0;
  const feed = new Feed({}, (e) => {
    const it = e.twinId ? items.get(e.twinId) : undefined;
    if (!it) return;
    if (e.type === 'twin.patched' && e.patch) applyPatch(it.doc, e.patch);
    else if ((e.type === 'twin.replaced' || e.type === 'twin.created') && e.data) it.doc = e.data;
    else return;
    updates++;
    pendingColour = true;
  });

  let frames = 0;
  let raf = 0;
  const loop = () => {
    raf = requestAnimationFrame(loop);
    if (pendingColour) { pendingColour = false; recolour(); }
    if (!dirty) return;
    dirty = false;
    frames++;
    renderer.render(scene, camera);
  };
  loop();

  // For the browser tests and the benchmark: where a twin's machine is on screen, frames drawn.
  (window as any).__doppelScene = {
    count: byIndex.length,
    frames: () => frames,
    updates: () => updates,
    gltf: () => [...gltfTwins],
    lastPick: () => lastPick,  // 'box' or 'gltf': what the last click hit
    screenPosition: (id: string) => {
      const it = items.get(id);
      if (!it) return null;
      const v = new THREE.Vector3(it.pos.x, 0.8, it.pos.z).project(camera);
      const r = renderer.domElement.getBoundingClientRect();
      return { x: r.left + ((v.x + 1) / 2) * r.width, y: r.top + ((1 - v.y) / 2) * r.height };
    },
  };

  return () => {
    cancelAnimationFrame(raf);
    feed.close();
    controls.dispose();
    renderer.dispose();
    delete (window as any).__doppelScene;
  };
}

function label(text: string, at: THREE.Vector3, scale: number): THREE.Sprite {
  const c = document.createElement('canvas');
  c.width = 256;
  c.height = 64;
  const g = c.getContext('2d')!;
  g.font = 'bold 34px sans-serif';
  g.fillStyle = 'rgba(255,255,255,0.85)';
  const w = Math.min(256, g.measureText(text).width + 16);
  g.fillRect((256 - w) / 2, 8, w, 48);
  g.fillStyle = '#222';
  g.textAlign = 'center';
  g.textBaseline = 'middle';
  g.fillText(text, 128, 33);
  const s = new THREE.Sprite(new THREE.SpriteMaterial({ map: new THREE.CanvasTexture(c), depthTest: false }));
  s.position.copy(at);
  s.scale.set(4 * scale, 1 * scale, 1);
  return s;
}
