// The 3D scene (three.js): a generated plant from the twins and their relationships (each twin
// that `contains` others is a line, its machines laid out along it in `position` order; other
// twins on a grid beside it), machines coloured by a chosen numeric property with a legend, live
// from /events, click a machine to open its twin. A twin with a glTF scene of its own or of its
// model (GET /scenes, then …/scene) is drawn with it instead of the generated box: scaled into the
// box's slot, its materials cloned so that colouring applies.
//
// Built for 1,000 twins updating at 1 Hz where WebGL runs on the CPU (SwiftShader: headless and
// GPU-less browsers; bench/ui_bench.mjs measures it). There a render's cost grows with the
// machines drawn and with lighting per pixel, hardly with the canvas size (measured on a 2-core VM
// with the camera turning, so every frame renders), so:
// * every machine is in one merged BufferGeometry (MachineMesh: a body and a spindle, 40 vertices,
//   no bottom faces): one draw call. An InstancedMesh of the same boxes rendered at about half the
//   rate: SwiftShader draws an instanced mesh instance by instance;
// * MeshBasicMaterial with the light baked into vertex colours (a face's colour × its shade
//   towards a fixed sun): MeshLambertMaterial's lighting per pixel rendered at about 2/3 the rate.
//   glTF models keep their own materials and the scene's lights;
// * a frame is rendered only when the camera moved, a colour changed or a glTF arrived. Change-feed
//   events are applied once per animation frame, only machines whose colour changed are
//   rewritten, and renders caused by data are at most one per DATA_RENDER_MS.
import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';
import { applyPatch, authHeaders, enc, errorText, Feed, get, getPath, queryAll } from '../api';
import { fmtValue, h } from '../dom';
import { isNumericSchema, propertyPaths } from '../models';

interface Item {
  id: string; doc: any; index: number; pos: THREE.Vector3;
  colour: number;  // the body's colour as 0xRRGGBB, -1 before the first paint
  model?: THREE.Object3D; materials?: THREE.Material[];
}

const DATA_RENDER_MS = 200;
const RAMP = [[0.18, 0.35, 0.85], [0.1, 0.7, 0.6], [0.55, 0.8, 0.2], [0.98, 0.8, 0.15], [0.9, 0.25, 0.15]];
function ramp(t: number, out: THREE.Color): THREE.Color {
  const x = Math.min(1, Math.max(0, t)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  return out.setRGB(RAMP[i][0] + (RAMP[i + 1][0] - RAMP[i][0]) * f, RAMP[i][1] + (RAMP[i + 1][1] - RAMP[i][1]) * f,
    RAMP[i][2] + (RAMP[i + 1][2] - RAMP[i][2]) * f);
}
const STATUS_COLOURS: Record<string, number> = { running: 0x3cb371, idle: 0xf0c040, down: 0xe04030, maintenance: 0x4080e0 };
const NO_VALUE = 0xaaaaaa;

// Baked light: how bright a face with this normal is under a fixed sun (0.45 facing away, 1
// facing it).
const SUN = new THREE.Vector3(20, 40, 30).normalize();
const shadeOf = (nx: number, ny: number, nz: number) => 0.45 + 0.55 * Math.max(0, nx * SUN.x + ny * SUN.y + nz * SUN.z);

// A w × h × d box standing on y = 0 without its bottom face (it stands on the floor or on another
// box): 5 faces of 4 vertices, their shades, 30 indices.
interface OpenBox { pos: number[]; shade: number[]; index: number[] }
function openBox(w: number, h: number, d: number): OpenBox {
  const g = new THREE.BoxGeometry(w, h, d).translate(0, h / 2, 0);
  const p = g.getAttribute('position'), n = g.getAttribute('normal'), idx = g.index!.array;
  const out: OpenBox = { pos: [], shade: [], index: [] };
  // BoxGeometry's faces in order: +x, −x, +y, −y, +z, −z (4 vertices and 6 indices each).
  [0, 1, 2, 4, 5].forEach((f, k) => {
    for (let v = f * 4; v < f * 4 + 4; v++) {
      out.pos.push(p.getX(v), p.getY(v), p.getZ(v));
      out.shade.push(shadeOf(n.getX(v), n.getY(v), n.getZ(v)));
    }
    for (let i = f * 6; i < f * 6 + 6; i++) out.index.push(idx[i] - f * 4 + k * 4);
  });
  g.dispose();
  return out;
}

// A single box with its colour and shading baked in (belts).
function shadedBox(w: number, h: number, d: number, colour: number): THREE.Mesh {
  const b = openBox(w, h, d);
  const c = new THREE.Color(colour);
  const g = new THREE.BufferGeometry();
  g.setAttribute('position', new THREE.Float32BufferAttribute(b.pos, 3));
  g.setAttribute('color', new THREE.Float32BufferAttribute(b.shade.flatMap((s) => [c.r * s, c.g * s, c.b * s]), 3));
  g.setIndex(b.index);
  return new THREE.Mesh(g, new THREE.MeshBasicMaterial({ vertexColors: true }));
}

// Every machine's body (coloured) and spindle (grey) in one BufferGeometry, so that the whole plant
// is one draw call. Machine k owns vertices [k·V, (k+1)·V) and triangles [k·T, (k+1)·T).
class MachineMesh {
  static readonly BODY = openBox(2, 1.6, 2);
  static readonly SPINDLE = openBox(0.45, 0.8, 0.45);
  static readonly V = (MachineMesh.BODY.pos.length + MachineMesh.SPINDLE.pos.length) / 3;
  static readonly T = (MachineMesh.BODY.index.length + MachineMesh.SPINDLE.index.length) / 3;
  readonly mesh: THREE.Mesh;
  private readonly positions: THREE.BufferAttribute;
  private readonly colours: THREE.BufferAttribute;

  constructor(slots: THREE.Vector3[]) {
    const { BODY, SPINDLE, V } = MachineMesh;
    const pos = new Float32Array(slots.length * V * 3);
    const col = new Uint8Array(slots.length * V * 3);
    const index = slots.length * V > 65535 ? new Uint32Array(slots.length * MachineMesh.T * 3) : new Uint16Array(slots.length * MachineMesh.T * 3);
    const grey = new THREE.Color(0x8a929e);
    let vi = 0, ii = 0;
    slots.forEach((at, k) => {
      const base = k * V;
      for (const [part, y] of [[BODY, 0], [SPINDLE, 1.6]] as const) {
        const first = vi;
        for (let v = 0; v < part.pos.length / 3; v++, vi++) {
          pos[vi * 3] = at.x + part.pos[v * 3];
          pos[vi * 3 + 1] = y + part.pos[v * 3 + 1];
          pos[vi * 3 + 2] = at.z + part.pos[v * 3 + 2];
          const s = part === SPINDLE ? part.shade[v] * 255 : 0;
          col[vi * 3] = grey.r * s; col[vi * 3 + 1] = grey.g * s; col[vi * 3 + 2] = grey.b * s;
        }
        for (const i of part.index) index[ii++] = first + i;
      }
      if (vi !== base + V) throw new Error('MachineMesh: vertex layout');
    });
    const g = new THREE.BufferGeometry();
    this.positions = new THREE.BufferAttribute(pos, 3);
    this.colours = new THREE.BufferAttribute(col, 3, true);
    g.setAttribute('position', this.positions);
    g.setAttribute('color', this.colours);
    g.setIndex(new THREE.BufferAttribute(index, 1));
    g.computeBoundingSphere();
    this.mesh = new THREE.Mesh(g, new THREE.MeshBasicMaterial({ vertexColors: true }));
  }
  // The body of machine k in colour c (linear, as THREE.Color keeps it); commit() uploads.
  paint(k: number, c: THREE.Color): void {
    const shade = MachineMesh.BODY.shade;
    for (let v = 0; v < shade.length; v++) this.colours.setXYZ(k * MachineMesh.V + v, c.r * shade[v], c.g * shade[v], c.b * shade[v]);
  }
  commit(): void { this.colours.needsUpdate = true; }
  // Machine k is drawn by a glTF model instead: its triangles collapse to a point (not drawn, not hit).
  hide(k: number): void {
    const x = this.positions.getX(k * MachineMesh.V), z = this.positions.getZ(k * MachineMesh.V);
    for (let v = 0; v < MachineMesh.V; v++) this.positions.setXYZ(k * MachineMesh.V + v, x, 0, z);
    this.positions.needsUpdate = true;
  }
  machineOf(faceIndex: number): number { return Math.floor(faceIndex / MachineMesh.T); }
  dispose(): void { this.mesh.geometry.dispose(); (this.mesh.material as THREE.Material).dispose(); }
}

export async function scenePage(root: HTMLElement): Promise<() => void> {
  const select = h('select', { 'data-testid': 'colour-by' });
  const legend = h('div.legend', { 'data-testid': 'legend' });
  const info = h('span.muted');
  const rotate = h('input', { type: 'checkbox', 'data-testid': 'auto-rotate' });
  const box = h('div.scene', { 'data-testid': 'scene' });
  root.append(h('section.card', {}, h('div.row', {}, h('strong', {}, 'Colour by '), select, ' ', legend, ' ', h('label', { title: 'turn the camera around the plant (every frame is rendered)' }, rotate, 'rotate'), ' ', info), box));

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
  const looseAt = new Map(loose.map((d, k) => [d.$dtId, k]));
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
      const k = looseAt.get(d.$dtId)!;
      pos = new THREE.Vector3((k % cols) * 3, 0, lineZ(lines.length) + Math.floor(k / cols) * 3);
    }
    items.set(d.$dtId, { id: d.$dtId, doc: d, index, pos, colour: -1 });
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
  // Antialiasing and high-DPI canvases cost most where WebGL runs on the CPU; large plants go without.
  const small = byIndex.length <= 100;
  const renderer = new THREE.WebGLRenderer({ antialias: small, preserveDrawingBuffer: true });
  renderer.setPixelRatio(Math.min(window.devicePixelRatio || 1, small ? 2 : 1));
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
  // Lights for glTF models only (everything generated has its light baked in).
  scene.add(new THREE.HemisphereLight(0xffffff, 0x667788, 2.2));
  const sun = new THREE.DirectionalLight(0xffffff, 1.6);
  sun.position.copy(SUN).multiplyScalar(50);
  scene.add(sun);
  const floor = new THREE.Mesh(new THREE.PlaneGeometry(extentX + 20, extentZ + 20), new THREE.MeshBasicMaterial({ color: 0xd5dae2 }));
  floor.rotation.x = -Math.PI / 2;
  floor.position.set(center.x, -0.01, center.z);
  scene.add(floor);
  lines.forEach((l, i) => {
    const n = Math.max(1, perLine.get(l) ?? 0);
    const belt = shadedBox(n * 4.5, 0.3, 1.2, 0x59606b);
    belt.position.set((n - 1) * 2.25, 0, lineZ(i) + 1.8);
    scene.add(belt);
    scene.add(label(l, new THREE.Vector3(-3.2, 0.8, lineZ(i) + 1.8), 1.6));
  });
  const machineMesh = new MachineMesh(byIndex.map((it) => it.pos));
  scene.add(machineMesh.mesh);
  if (byIndex.length <= 80) for (const it of byIndex) scene.add(label(it.id, new THREE.Vector3(it.pos.x, 3, it.pos.z), 1));

  // Colour by the chosen property: status (fixed colours) or a numeric property (the ramp over the
  // current values' range). Only machines whose colour changed are written.
  const colour = new THREE.Color();
  let range: [number, number] | null = null;  // what the numeric colours were computed with
  let recoloured = 0;
  const colourOf = (it: Item, prop: string): THREE.Color => {
    const v = getPath(it.doc, prop);
    if (prop === 'status') return colour.set(STATUS_COLOURS[String(v)] ?? NO_VALUE);
    if (typeof v !== 'number' || !range) return colour.set(NO_VALUE);
    return ramp(range[1] > range[0] ? (v - range[0]) / (range[1] - range[0]) : 0.5, colour);
  };
  const paintModel = (it: Item) => {
    if (it.colour < 0) return;
    colour.setHex(it.colour);
    for (const m of it.materials ?? []) (m as THREE.Material & { color?: THREE.Color }).color?.copy(colour);
  };
  const legendOf = (prop: string) => {
    if (prop === 'status') {
      legend.replaceChildren(...Object.entries(STATUS_COLOURS).map(([k, c]) => h('span.swatch', {}, h('i', { style: { background: `#${c.toString(16).padStart(6, '0')}` } }), k)));
      return;
    }
    const stops = RAMP.map((c) => `rgb(${c.map((x) => Math.round(x * 255)).join(',')})`).join(',');
    legend.replaceChildren(h('span', {}, fmtValue(range?.[0])), h('span.ramp', { style: { background: `linear-gradient(to right, ${stops})` } }),
      h('span', {}, fmtValue(range?.[1])), h('span.swatch', {}, h('i', { style: { background: '#aaa' } }), 'no value'));
  };
  // Repaints `changed` (every machine when it is null or the numeric range moved); whether a
  // colour changed.
  const recolour = (changed: Iterable<Item> | null): boolean => {
    const prop = select.value;
    let all = changed === null;
    if (prop !== 'status') {
      let lo = Infinity, hi = -Infinity;
      for (const it of byIndex) {
        const v = getPath(it.doc, prop);
        if (typeof v === 'number') { if (v < lo) lo = v; if (v > hi) hi = v; }
      }
      const r: [number, number] | null = lo <= hi ? [lo, hi] : null;
      if (all || r?.[0] !== range?.[0] || r?.[1] !== range?.[1]) { range = r; all = true; legendOf(prop); }
    } else if (all) legendOf(prop);
    let n = 0;
    for (const it of all ? byIndex : changed!) {
      const c = colourOf(it, prop), key = c.getHex();
      if (key === it.colour) continue;
      it.colour = key;
      machineMesh.paint(it.index, c);
      paintModel(it);
      n++;
    }
    if (n) machineMesh.commit();
    recoloured += n;
    return n > 0;
  };

  // Rendering on demand: the next animation frame renders when the camera moved (or a glTF
  // arrived); colour changes alone wait until DATA_RENDER_MS after the last render.
  let raf = 0, timer = 0;
  let viewChanged = true, coloursChanged = false, lastRender = -Infinity;
  let renders = 0, renderMs = 0, updates = 0;
  const pending = new Set<Item>();
  let lastFrame = 0;
  const frame = (now: number) => {
    raf = 0;
    // Auto-rotation moves the camera every frame (a turn in 30 s); its change event asks for the next.
    if (controls.autoRotate) controls.update(lastFrame ? Math.min(0.1, (now - lastFrame) / 1000) : 0);
    lastFrame = controls.autoRotate ? now : 0;
    if (controls.autoRotate) schedule();
    if (pending.size) {
      if (recolour(pending)) coloursChanged = true;
      pending.clear();
    }
    if (viewChanged || (coloursChanged && now - lastRender >= DATA_RENDER_MS)) {
      viewChanged = coloursChanged = false;
      lastRender = now;
      const t0 = performance.now();
      renderer.render(scene, camera);
      renderMs += performance.now() - t0;
      renders++;
    } else if (coloursChanged && !timer) {
      timer = window.setTimeout(() => { timer = 0; schedule(); }, DATA_RENDER_MS - (now - lastRender));
    }
  };
  const schedule = () => { if (!raf) raf = requestAnimationFrame(frame); };
  const redraw = () => { viewChanged = true; schedule(); };

  select.addEventListener('change', () => {
    sessionStorage.setItem('doppel.sceneColour', select.value);
    recolour(null);
    redraw();
  });
  recolour(null);
  controls.addEventListener('change', redraw);
  rotate.addEventListener('change', () => { controls.autoRotate = rotate.checked; redraw(); });
  redraw();

  // glTF scenes: the twin's own, else its model's, else the nearest one up its model's `extends`
  // chain, as GET /digitaltwins/{id}/scene answers (one load per asset, cloned per twin). The
  // boxes are drawn meanwhile; each model replaces its box when it arrives.
  const gltfTwins: string[] = [];
  const gltfGroup = new THREE.Group();
  scene.add(gltfGroup);
  let gltfPending = 0, scenesListed = false;
  const describe = () => {
    info.textContent = `${byIndex.length} twins, ${lines.length} line(s)${gltfTwins.length ? `, ${gltfTwins.length} with a glTF model` : ''}` +
      `${gltfPending ? ` (${gltfPending} loading)` : ''} · drag to orbit, wheel to zoom, click a machine to open it`;
  };
  describe();
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
  let closed = false;
  const attach = (it: Item, src: THREE.Object3D) => {
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
    paintModel(it);
    gltfGroup.add(holder);
    gltfTwins.push(it.id);
    machineMesh.hide(it.index);
  };
  void get<any>('/scenes').then(async (r) => {
    const list = r.value as { kind: string; id: string; etag: string }[];
    const own = new Map(list.filter((a) => a.kind === 'twin').map((a) => [a.id, a]));
    const ofModel = new Map(list.filter((a) => a.kind === 'model').map((a) => [a.id, a]));
    // The ancestors (nearest first) of the models whose twins may inherit a base model's scene.
    const ancestors = new Map<string, string[]>();
    if (ofModel.size) {
      const models = new Set<string>();
      for (const it of byIndex) {
        const m = it.doc.$metadata?.$model as string | undefined;
        if (m && !own.has(it.id) && !ofModel.has(m)) models.add(m);
      }
      await Promise.all([...models].map(async (m) => {
        const r = await get<any>(`/models/${enc(m)}?includeModelDefinition=false&resolved=true`).catch(() => null);
        ancestors.set(m, (r?.resolved?.extends as string[] | undefined) ?? []);
      }));
    }
    const wanted = byIndex.flatMap((it) => {
      const model = it.doc.$metadata?.$model as string | undefined;
      const chain = model ? [model, ...(ancestors.get(model) ?? [])] : [];
      const asset = own.get(it.id) ?? chain.map((m) => ofModel.get(m)).find((a) => a !== undefined);
      if (!asset) return [];
      const url = asset.kind === 'twin' ? `/digitaltwins/${enc(it.id)}/scene` : `/models/${enc(asset.id)}/scene`;
      return [{ it, url: `${url}?v=${enc(asset.etag)}` }];
    });
    gltfPending = wanted.length;
    scenesListed = true;
    describe();
    await Promise.all(wanted.map(async ({ it, url }) => {
      const src = await load(url);
      gltfPending--;
      if (closed) return;
      if (src) attach(it, src);
      describe();
      redraw();
    }));
  }).catch((e) => { gltfPending = 0; scenesListed = true; info.after(h('span.error', {}, ` glTF scenes: ${errorText(e)}`)); });

  // Click → the twin page (a click, not the end of a drag).
  const ray = new THREE.Raycaster();
  let lastPick = '';
  let down: { x: number; y: number } | null = null;
  renderer.domElement.addEventListener('pointerdown', (e) => { down = { x: e.clientX, y: e.clientY }; });
  renderer.domElement.addEventListener('pointerup', (e) => {
    if (!down || Math.hypot(e.clientX - down.x, e.clientY - down.y) > 4) return;
    const r = renderer.domElement.getBoundingClientRect();
    ray.setFromCamera(new THREE.Vector2(((e.clientX - r.left) / r.width) * 2 - 1, -((e.clientY - r.top) / r.height) * 2 + 1), camera);
    const hit = ray.intersectObjects([machineMesh.mesh, gltfGroup], true)[0];
    if (!hit) return;
    let twin: string | undefined;
    if (hit.object === machineMesh.mesh && hit.faceIndex != null) twin = byIndex[machineMesh.machineOf(hit.faceIndex)]?.id;
    for (let o: THREE.Object3D | null = hit.object; o && !twin; o = o.parent) twin = o.userData.twinId;
    lastPick = hit.object === machineMesh.mesh ? 'box' : 'gltf';
    (window as any).__doppelScenePick = { twin, hit: lastPick };  // kept after the page changes (tests)
    if (twin) location.hash = `#/twin/${encodeURIComponent(twin)}`;
  });

  // Live updates: applied to the documents at once, recoloured in the next animation frame.
  const feed = new Feed({}, (e) => {
    const it = e.twinId ? items.get(e.twinId) : undefined;
    if (!it) return;
    if (e.type === 'twin.patched' && e.patch) applyPatch(it.doc, e.patch);
    else if ((e.type === 'twin.replaced' || e.type === 'twin.created') && e.data) it.doc = e.data;
    else return;
    updates++;
    pending.add(it);
    schedule();
  }, undefined, () => {
    // Back after a gap: read every twin again and recolour the ones that changed meanwhile.
    void queryAll('SELECT T FROM DIGITALTWINS T').then((r) => {
      for (const x of r) {
        const d = x.T ?? x;
        const it = d?.$dtId ? items.get(d.$dtId) : undefined;
        if (!it) continue;
        it.doc = d;
        pending.add(it);
      }
      schedule();
    }).catch(() => { /* the next update will do */ });
  });

  // For the browser tests and the benchmark: where a twin's machine is on screen, what was drawn.
  (window as any).__doppelScene = {
    count: byIndex.length,
    frames: () => renders,
    // renders: renderer.render calls; renderMs: the time spent in them on the page's thread (the
    // rasterisation itself happens in the GPU process); updates: change-feed events applied;
    // recoloured: machines whose colour was rewritten.
    stats: () => ({ renders, renderMs, updates, recoloured }),
    updates: () => updates,
    gltf: () => [...gltfTwins],
    // Every glTF loaded (or failed) and the last change drawn.
    settled: () => scenesListed && gltfPending === 0 && !raf && !viewChanged && !coloursChanged && renders > 0,
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
    closed = true;
    cancelAnimationFrame(raf);
    clearTimeout(timer);
    feed.close();
    controls.dispose();
    machineMesh.dispose();
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
