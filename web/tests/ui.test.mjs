// Browser tests of the web UI against a real stack (stack.mjs: mosquitto, `doppel serve
// --insecure --mqtt`, the example factory, the plant's mappings, `doppel plant`), driving Debian's
// chromium headless through playwright-core (no downloaded browser).
//
//   node tests/ui.test.mjs --doppel build/release/doppel --out build/release/web-test-output
//
// Screenshots go to the output folder. Exit status 0 only if every check passed; every process
// started is stopped on every path.
import { chromium } from 'playwright-core';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { mqttPublish, repoRoot, startStack } from './stack.mjs';

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const doppel = args.doppel ?? path.join(repoRoot, 'build/release/doppel');
const out = path.resolve(args.out ?? path.join(path.dirname(doppel), 'web-test-output'));
const chromiumPath = args.chromium ?? process.env.DOPPEL_CHROMIUM ?? '/usr/bin/chromium';
mkdirSync(out, { recursive: true });

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];

const results = [];
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    results.push({ name, ok: true, ms: Date.now() - t0 });
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - t0, error: e });
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// The 3D scene's canvas as drawn: how many distinct colours, how many pixels differ from the
// background (#eef1f5), of how many, and how many machines the scene says it has.
function sceneCanvasStats(page) {
  return page.evaluate(() => {
    const c = document.querySelector('[data-testid=scene] canvas');
    const t = document.createElement('canvas');
    t.width = c.width; t.height = c.height;
    const g = t.getContext('2d');
    g.drawImage(c, 0, 0);
    const d = g.getImageData(0, 0, t.width, t.height).data;
    const colours = new Set();
    let nonBg = 0;
    for (let i = 0; i < d.length; i += 4) {
      colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      if (Math.abs(d[i] - 0xee) + Math.abs(d[i + 1] - 0xf1) + Math.abs(d[i + 2] - 0xf5) > 30) nonBg++;
    }
    return { colours: colours.size, nonBg, total: d.length / 4, count: window.__doppelScene.count };
  });
}

// A reading over MQTT through a mapping of its own: operatingHours is a Property the plant never
// publishes, so nothing else changes it during the test.
const UI_MAPPING = ['ui-test', {
  description: 'browser test readings', topic: 'uitest/{machine}', twin: '{machine}',
  model: 'dtmi:doppel:example:factory:Machine;1', fields: [{ pointer: '/operatingHours', element: 'operatingHours' }],
}];

// A GLB of a unit cube (positions, normals, indices, one grey material), built here: nothing is
// read from disk or the network.
export function cubeGlb() {
  const pos = [], nrm = [], idx = [];
  for (const [axis, sign] of [[0, 1], [0, -1], [1, 1], [1, -1], [2, 1], [2, -1]]) {
    const n = [0, 0, 0]; n[axis] = sign;
    const a = (axis + 1) % 3, b = (axis + 2) % 3;
    const base = pos.length / 3;
    for (const [u, v] of [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]]) {
      const p = [0, 0, 0]; p[axis] = 0.5 * sign; p[a] = u; p[b] = v;
      pos.push(...p); nrm.push(...n);
    }
    // Counter-clockwise seen from outside: (a × b) = axis, so flip for the negative side.
    idx.push(...(sign > 0 ? [0, 1, 2, 0, 2, 3] : [0, 2, 1, 0, 3, 2]).map((i) => base + i));
  }
  const bin = Buffer.concat([Buffer.from(new Float32Array(pos).buffer), Buffer.from(new Float32Array(nrm).buffer), Buffer.from(new Uint16Array(idx).buffer)]);
  const gltf = {
    asset: { version: '2.0', generator: 'doppel ui test' }, scene: 0, scenes: [{ nodes: [0] }], nodes: [{ mesh: 0 }],
    meshes: [{ primitives: [{ attributes: { POSITION: 0, NORMAL: 1 }, indices: 2, material: 0 }] }],
    materials: [{ pbrMetallicRoughness: { baseColorFactor: [0.8, 0.8, 0.8, 1], metallicFactor: 0, roughnessFactor: 0.9 } }],
    accessors: [
      { bufferView: 0, componentType: 5126, count: 24, type: 'VEC3', min: [-0.5, -0.5, -0.5], max: [0.5, 0.5, 0.5] },
      { bufferView: 1, componentType: 5126, count: 24, type: 'VEC3' },
      { bufferView: 2, componentType: 5123, count: 36, type: 'SCALAR' }],
    bufferViews: [{ buffer: 0, byteOffset: 0, byteLength: 288, target: 34962 }, { buffer: 0, byteOffset: 288, byteLength: 288, target: 34962 },
      { buffer: 0, byteOffset: 576, byteLength: 72, target: 34963 }],
    buffers: [{ byteLength: bin.length }],
  };
  let json = Buffer.from(JSON.stringify(gltf));
  json = Buffer.concat([json, Buffer.alloc((4 - (json.length % 4)) % 4, 0x20)]);
  const header = Buffer.alloc(12), jh = Buffer.alloc(8), bh = Buffer.alloc(8);
  header.write('glTF', 0); header.writeUInt32LE(2, 4); header.writeUInt32LE(12 + 8 + json.length + 8 + bin.length, 8);
  jh.writeUInt32LE(json.length, 0); jh.write('JSON', 4);
  bh.writeUInt32LE(bin.length, 0); bh.write('BIN\0', 4);
  return Buffer.concat([header, jh, json, bh, bin]);
}

// Readings with source times through POST /ingest.
async function ingest(url, readings) {
  const r = await fetch(`${url}/ingest`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ readings }) });
  if (r.status !== 204) throw new Error(`POST /ingest: ${r.status} ${await r.text()}`);
}
// A steady series of one twin's operatingHours (a property nothing else writes), 1 s apart and
// ending a second before `end`; then spike() publishes an outlier at `end`.
function steady(twin, end, n = 40) {
  return Array.from({ length: n }, (_, i) => ({ twin, element: 'operatingHours', value: 500 + ((i * 37) % 10) / 10,
    sourceTime: new Date(end - (n - i) * 1000).toISOString() }));
}
const spike = (twin, end) => [{ twin, element: 'operatingHours', value: 900, sourceTime: new Date(end).toISOString() }];

let stack, browser;
let exitCode = 1;
try {
  stack = await startStack({ doppel, outDir: out, webDir: args['web-dir'], extraMappings: [UI_MAPPING] });
  console.log(`stack: ${stack.url} (mqtt ${stack.mqttPort}), output in ${out}`);
  browser = await chromium.launch({ executablePath: chromiumPath, args: CHROMIUM_ARGS, headless: true });
  const page = await browser.newPage({ viewport: { width: 1400, height: 950 } });
  const consoleErrors = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  const shot = (name) => page.screenshot({ path: path.join(out, name), fullPage: false });

  await check('static files: / is the UI, assets are immutable', async () => {
    const r = await fetch(stack.url + '/');
    assert(r.status === 200 && r.headers.get('content-type').startsWith('text/html'), `GET /: ${r.status} ${r.headers.get('content-type')}`);
    assert(r.headers.get('cache-control') === 'no-cache', `index cache-control ${r.headers.get('cache-control')}`);
    const html = await r.text();
    const js = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    assert(js, 'no script in index.html');
    const a = await fetch(stack.url + js);
    assert(a.status === 200 && a.headers.get('content-type').startsWith('text/javascript'), `asset ${a.status}`);
    assert(a.headers.get('cache-control').includes('immutable'), 'asset not immutable');
  });

  await check('explorer lists the demo twins', async () => {
    await page.goto(`${stack.url}/#/explorer`);
    for (const id of ['machine-1', 'machine-2', 'machine-3', 'machine-4', 'machine-5', 'machine-6', 'line-1', 'line-2']) {
      await page.locator(`[data-testid=twin-list] tr[data-twin="${id}"]`).waitFor({ timeout: 10000 });
    }
    await page.locator('[data-testid=graph] g.node').first().waitFor({ timeout: 5000 });
    // autocompletion of model ids
    const q = page.locator('[data-testid=query]');
    await q.fill("SELECT T FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:doppel:example:factory:Cnc");
    await q.press('End');
    await q.pressSequentially('M');
    await page.locator('[data-testid=suggestions] li', { hasText: 'dtmi:doppel:example:factory:CncMill;1' }).waitFor({ timeout: 5000 });
    await shot('explorer.png');
  });

  await check('the twin list keeps only the rows in view in the DOM, scrolls, filters and updates live', async () => {
    // 300 twins of our own (status idle; nothing else writes them), deleted again at the end.
    const ids = Array.from({ length: 300 }, (_, i) => `list-${String(i).padStart(3, '0')}`);
    const twinUrl = (id) => `${stack.url}/digitaltwins/${id}`;
    try {
      for (let i = 0; i < ids.length; i += 20) {
        await Promise.all(ids.slice(i, i + 20).map(async (id) => {
          const r = await fetch(twinUrl(id), { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ $metadata: { $model: 'dtmi:doppel:example:factory:Machine;1' }, status: 'idle' }) });
          assert(r.ok, `PUT ${id}: ${r.status}`);
        }));
      }
      await page.locator('[data-testid=query]').fill('SELECT T FROM DIGITALTWINS T');
      await page.locator('[data-testid=run-query]').click();
      await page.waitForFunction(() => document.querySelector('[data-testid=result-count]')?.textContent === '308 result(s)', null, { timeout: 10000 });
      const dom = () => page.evaluate(() => {
        const t = document.querySelector('[data-testid=twin-list]');
        const trs = [...t.querySelectorAll('tbody tr[data-twin]')];
        return { ids: trs.map((r) => r.dataset.twin), lastIsRow: t.tBodies[0].lastElementChild?.hasAttribute('data-twin'),
          heights: [...new Set(trs.map((r) => Math.round(r.getBoundingClientRect().height)))], scrollHeight: t.parentElement.scrollHeight };
      });
      const top = await dom();
      assert(top.ids.length >= 15 && top.ids.length <= 60, `${top.ids.length} rows in the DOM at the top`);
      assert(top.heights.length === 1 && top.heights[0] === 27, `row heights ${top.heights} (the list assumes 27 px)`);
      assert(top.scrollHeight >= 308 * 27, `the list scrolls ${top.scrollHeight} px for 308 rows`);
      await page.evaluate(() => { const s = document.querySelector('[data-testid=twin-list]').parentElement; s.scrollTop = s.scrollHeight; });
      await page.waitForFunction((first) => { const r = document.querySelector('[data-testid=twin-list] tbody tr[data-twin]'); return r && r.dataset.twin !== first; }, top.ids[0], { timeout: 5000 });
      const bottom = await dom();
      assert(bottom.lastIsRow && bottom.ids.length <= 60 && !bottom.ids.some((id) => top.ids.includes(id)), `after scrolling to the end: ${JSON.stringify(bottom)}`);
      // Live: a twin in view turns down.
      const twin = bottom.ids.filter((id) => id.startsWith('list-')).at(-1);
      const w = await fetch(twinUrl(twin), { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/status', value: 'down' }]) });
      assert(w.ok, `PATCH ${twin}: ${w.status}`);
      await page.locator(`[data-testid=twin-list] tr[data-twin="${twin}"] .st-down`).waitFor({ timeout: 2000 });
      await page.locator('[data-testid=filter]').fill('list-29');
      await page.waitForFunction(() => document.querySelector('[data-testid=result-count]')?.textContent === '308 result(s), 10 shown', null, { timeout: 5000 });
      await page.locator('[data-testid=filter]').fill('');
    } finally {
      await Promise.all(ids.map((id) => fetch(twinUrl(id), { method: 'DELETE' })));
    }
  });

  await check('a value published over MQTT appears on the twin page within 2 s', async () => {
    await page.goto(`${stack.url}/#/twin/machine-4`);
    await page.locator('[data-testid=live].on').waitFor({ timeout: 10000 });
    const cell = page.locator('[data-testid="prop-operatingHours"]');
    await cell.waitFor();
    const value = 4000 + Math.round(Math.random() * 1000) + 0.25;
    const t0 = Date.now();
    await mqttPublish(stack.mqttPort, 'uitest/machine-4', JSON.stringify({ operatingHours: value }));
    await page.waitForFunction((v) => document.querySelector('[data-testid="prop-operatingHours"]')?.textContent === v, String(value), { timeout: 2000 });
    console.log(`     shown after ${Date.now() - t0} ms`);
  });

  await check('a history chart has data points', async () => {
    const chart = page.locator('[data-testid="chart-spindleSpeed"]');
    await chart.waitFor({ timeout: 10000 });
    await page.waitForFunction(() => Number(document.querySelector('[data-testid="chart-spindleSpeed"]')?.getAttribute('data-points') ?? 0) > 0, null, { timeout: 10000 });
    assert(await chart.locator('canvas').count() > 0, 'no canvas in the chart');
    await page.locator('[data-testid=sync-state]').waitFor();
    await shot('twin.png');
  });

  await check('a patch with an invalid value shows the server\'s error', async () => {
    await page.locator('[data-testid="edit-status"]').fill('exploded');
    await page.locator('[data-testid="patch-status"]').click();
    const msg = page.locator('[data-testid=patch-result].error');
    await msg.waitFor({ timeout: 5000 });
    const text = await msg.textContent();
    // The server's own words (problem detail and the per-error code).
    const r = await fetch(`${stack.url}/digitaltwins/machine-4`, { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'replace', path: '/status', value: 'exploded' }]) });
    const problem = await r.json();
    assert(r.status === 400, `server answered ${r.status}`);
    assert(text.includes(problem.detail) && text.includes('VALUE_NOT_IN_ENUM'), `shown: ${text}\nserver: ${problem.detail}`);
    await page.locator('[data-testid="patch-result"]').scrollIntoViewIfNeeded();
    await shot('twin-invalid-patch.png');
  });

  await check('after the change feed drops, the twin page reads the twin again', async () => {
    // The feed is closed and held off while machine-4 changes: only the page's re-read can show it.
    assert(await page.evaluate(() => window.__doppelFeeds.drop(1500)) > 0, 'no feed on the twin page');
    await page.locator('[data-testid=live]:not(.on)').waitFor({ timeout: 2000 });
    const hours = 4242 + Math.floor(Math.random() * 1000);
    const w = await fetch(`${stack.url}/digitaltwins/machine-4`, { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'add', path: '/operatingHours', value: hours }]) });
    assert(w.ok, `PATCH machine-4: ${w.status} ${await w.text()}`);
    await page.locator('[data-testid=live].on').waitFor({ timeout: 5000 });
    await page.waitForFunction((v) => (document.querySelector('[data-testid="prop-operatingHours"]')?.textContent ?? '').replace(/[^0-9]/g, '').includes(String(v)), hours, { timeout: 5000 });
  });

  await check('a forecast draws its 80% and 95% bands after the history', async () => {
    // 300 readings 2 s apart over the last 10 minutes through POST /write (line protocol): a slow
    // wave with a deterministic wiggle, on a property the plant does not publish.
    const now = Date.now();
    const lines = [];
    for (let i = 299; i >= 0; i--) {
      const t = now - 1000 - i * 2000;
      lines.push(`factory,twin=machine-5 operatingHours=${(1000 + 2 * Math.sin(t / 60000) + ((i * 7919) % 13) / 13).toFixed(4)} ${t}`);
    }
    const w = await fetch(`${stack.url}/write?precision=ms`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: lines.join('\n') });
    assert(w.status === 204, `POST /write: ${w.status} ${await w.text()}`);
    await page.goto(`${stack.url}/#/twin/machine-5`);
    const sel = '[data-testid="chart-operatingHours"]';
    await page.waitForFunction((s) => Number(document.querySelector(s)?.getAttribute('data-points') ?? 0) > 50, sel, { timeout: 10000 });
    await page.locator('[data-testid="forecast-toggle-operatingHours"]').click();
    await page.waitForFunction((s) => document.querySelector(s)?.hasAttribute('data-forecast'), sel, { timeout: 20000 });
    const caption = await page.locator('[data-testid="forecast-caption-operatingHours"]').textContent();
    const fc = await page.evaluate((s) => {
      const u = document.querySelector(s).__uplot;
      const col = (label) => u.data[u.series.findIndex((x) => x.label === label)];
      const [lo95, hi95, lo80, hi80, mean] = ['forecast 95% low', 'forecast 95% high', 'forecast 80% low', 'forecast 80% high', 'forecast mean'].map(col);
      const hist = u.data[3];
      const lastHist = Math.max(...u.data[0].filter((_, i) => hist[i] != null));
      const at = u.data[0].map((_, i) => i).filter((i) => mean[i] != null);
      const finite = (a) => at.every((i) => Number.isFinite(a[i]));
      return {
        n: at.length, bands: u.bands?.length ?? 0,
        finite: [lo95, hi95, lo80, hi80, mean].every(finite),
        ordered: at.every((i) => lo95[i] <= lo80[i] && lo80[i] <= mean[i] && mean[i] <= hi80[i] && hi80[i] <= hi95[i] && hi95[i] > lo95[i]),
        after: at.every((i) => u.data[0][i] > lastHist - 60),
        xMax: u.scales.x.max, lastX: Math.max(...at.map((i) => u.data[0][i])),
      };
    }, sel);
    console.log(`     ${fc.n} forecast steps; ${caption}`);
    assert(fc.n >= 10, `no forecast drawn (${JSON.stringify(fc)}); caption: ${caption}`);
    assert(fc.finite && fc.ordered, `bands not finite or not nested: ${JSON.stringify(fc)}`);
    assert(fc.after && fc.xMax >= fc.lastX, `the forecast is not after the history or not in view: ${JSON.stringify(fc)}`);
    assert(fc.bands === 3, `bands: ${fc.bands}`);
    assert(/backtest MAE [0-9.]+/.test(caption) && /80%: \d+%/.test(caption) && /forecast: \w+/.test(caption), `caption: ${caption}`);
    await page.locator(sel).scrollIntoViewIfNeeded();
    await page.locator(sel).screenshot({ path: path.join(out, 'twin-forecast.png') });
  });

  await check('an anomaly is marked on the chart, badged and listed on the events page', async () => {
    const t0 = Date.now();
    await ingest(stack.url, steady('machine-6', t0));
    await page.goto(`${stack.url}/#/twin/machine-6`);
    await page.locator('[data-testid=live].on').waitFor({ timeout: 10000 });
    const sel = '[data-testid="chart-operatingHours"]';
    await page.waitForFunction((s) => Number(document.querySelector(s)?.getAttribute('data-points') ?? 0) > 0, sel, { timeout: 10000 });
    assert(await page.locator('[data-testid="anomaly-operatingHours"]').count() === 0, 'an anomaly badge before the spike');
    // Too little history for a forecast: the server's problem is shown.
    await page.locator('[data-testid="forecast-toggle-operatingHours"]').click();
    const cap = page.locator('[data-testid="forecast-caption-operatingHours"].error');
    await cap.waitFor({ timeout: 10000 });
    const capText = await cap.textContent();
    assert(capText.includes('FORECAST_TOO_SHORT') || capText.includes('FORECAST_NO_DATA'), `caption: ${capText}`);
    await ingest(stack.url, spike('machine-6', t0));
    await page.locator('[data-testid="anomaly-operatingHours"]').waitFor({ timeout: 5000 });
    await page.waitForFunction((s) => Number(document.querySelector(s)?.dataset.anomaliesDrawn ?? 0) >= 1, sel, { timeout: 5000 });
    const badge = await page.locator('[data-testid="chart-anomaly-operatingHours"]').textContent();
    assert(badge.includes('anomaly'), `chart badge: ${badge}`);
    await page.locator(sel).scrollIntoViewIfNeeded();
    await page.locator(sel).screenshot({ path: path.join(out, 'twin-anomaly.png') });

    // The events page: the open anomalies from GET /anomalies, and a new one live.
    const t1 = Date.now();
    await ingest(stack.url, steady('machine-3', t1));
    await page.goto(`${stack.url}/#/events`);
    await page.locator('[data-testid=open-anomalies] tr[data-twin="machine-6"]').waitFor({ timeout: 5000 });
    await page.locator('[data-testid=event-list] tbody tr').first().waitFor({ timeout: 10000 });  // the feed is live
    await ingest(stack.url, spike('machine-3', t1));
    const row = page.locator('[data-testid=event-list] tr[data-type="twin.anomaly"]', { hasText: 'machine-3' });
    await row.first().waitFor({ timeout: 5000 });
    const rowText = await row.first().textContent();
    assert(/\/operatingHours .*score .*value 900/.test(rowText), `event row: ${rowText}`);
    await page.locator('[data-testid=open-anomalies] tr[data-twin="machine-3"]').waitFor({ timeout: 5000 });
    // The count is GET /anomalies' (the plant may open episodes of its own meanwhile).
    const count = Number(await page.locator('[data-testid=anomaly-count]').textContent());
    const rows = await page.locator('[data-testid=open-anomalies] tr').count();
    const server = (await (await fetch(`${stack.url}/anomalies`)).json()).active;
    assert(count >= 2 && count === rows && server.some((a) => a.twin === 'machine-3' && a.path === 'operatingHours'),
      `open anomalies shown ${count} in ${rows} rows; server: ${JSON.stringify(server)}`);
    await shot('events-anomalies.png');
  });

  await check('the 3D scene renders and clicking a machine opens its twin', async () => {
    await page.goto(`${stack.url}/#/scene`);
    await page.waitForFunction(() => window.__doppelScene?.settled(), null, { timeout: 15000 });
    const stats = await sceneCanvasStats(page);
    console.log(`     ${stats.count} machines, ${stats.colours} colours, ${(100 * stats.nonBg / stats.total).toFixed(1)}% non-background pixels`);
    assert(stats.count === 6, `scene has ${stats.count} machines`);
    assert(stats.colours > 50 && stats.nonBg > stats.total * 0.05, `blank scene: ${JSON.stringify(stats)}`);
    await shot('scene.png');
    // Live colours: machine-1 coloured by operatingHours (the demo's 1200 is between machine-3's
    // and machine-4's) turns to the ramp's low end (blue), then to its high end (red) as patches
    // arrive. Each patch starts from a drawn scene, and the wait ends only when machine-1's pixel
    // has changed to the colour sought and a machine was recoloured since the patch (its colour
    // before may already pass for blue).
    await page.selectOption('[data-testid=colour-by]', 'operatingHours');
    const settled = () => page.waitForFunction(() => window.__doppelScene.settled(), null, { timeout: 5000 });
    const pixel = () => page.evaluate(() => {
      const c = document.querySelector('[data-testid=scene] canvas');
      const p = window.__doppelScene.screenPosition('machine-1');
      const r = c.getBoundingClientRect();
      const t = document.createElement('canvas');
      t.width = c.width; t.height = c.height;
      const g = t.getContext('2d');
      g.drawImage(c, 0, 0);
      return [...g.getImageData(Math.round((p.x - r.left) * c.width / r.width), Math.round((p.y - r.top) * c.height / r.height), 1, 1).data.slice(0, 3)];
    });
    for (const [value, name, test] of [[-1e6, 'blue', ([r, g, b]) => b > r + 60 && b > g + 40], [1e6, 'red', ([r, g, b]) => r > g + 60 && r > b + 60]]) {
      await settled();
      const before = String(await pixel());
      const recoloured = await page.evaluate(() => window.__doppelScene.stats().recoloured);
      const w = await fetch(`${stack.url}/digitaltwins/machine-1`, { method: 'PATCH', headers: { 'Content-Type': 'application/json-patch+json' }, body: JSON.stringify([{ op: 'add', path: '/operatingHours', value }]) });
      assert(w.ok, `PATCH machine-1: ${w.status} ${await w.text()}`);
      const t0 = Date.now();
      let px;
      const recolouredSince = () => page.evaluate((n) => window.__doppelScene.stats().recoloured > n, recoloured);
      while (!test(px = await pixel()) || String(px) === before || !await recolouredSince()) {
        assert(Date.now() - t0 < 5000, `machine-1 not ${name} 5 s after operatingHours = ${value}: rgb ${px}`);
        await page.waitForTimeout(50);
      }
      console.log(`     operatingHours ${value}: machine-1 ${name} (rgb ${px}) after ${Date.now() - t0} ms`);
    }
    const p = await page.evaluate(() => window.__doppelScene.screenPosition('machine-2'));
    await page.mouse.click(p.x, p.y);
    await page.waitForURL(/#\/twin\/machine-2$/, { timeout: 5000 });
    await page.locator('[data-testid="prop-status"]').waitFor();
  });

  await check('a glTF model attached to a twin replaces its box in the scene', async () => {
    const glb = cubeGlb();
    const put = await fetch(`${stack.url}/digitaltwins/machine-2/scene`, { method: 'PUT', headers: { 'Content-Type': 'model/gltf-binary' }, body: glb });
    assert(put.status === 201 || put.status === 200, `PUT scene: ${put.status} ${await put.text()}`);
    // The upload control of the twin page, for another twin.
    await page.goto(`${stack.url}/#/twin/machine-3`);
    await page.locator('[data-testid=scene-file]').setInputFiles({ name: 'cube.glb', mimeType: 'model/gltf-binary', buffer: glb });
    await page.locator('[data-testid=scene-result].ok').waitFor({ timeout: 5000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=scene-info]')?.textContent.includes('own glTF'), null, { timeout: 5000 });
    const back = await fetch(`${stack.url}/digitaltwins/machine-3/scene`);
    assert(back.status === 200 && Buffer.from(await back.arrayBuffer()).equals(glb), `GET scene of machine-3: ${back.status}`);

    await page.goto(`${stack.url}/#/scene`);
    await page.waitForFunction(() => window.__doppelScene?.settled(), null, { timeout: 15000 });
    const gltf = await page.evaluate(() => window.__doppelScene.gltf());
    assert(gltf.includes('machine-2') && gltf.includes('machine-3') && gltf.length === 2, `twins drawn with glTF: ${gltf}`);
    const stats = await sceneCanvasStats(page);
    assert(stats.colours > 50 && stats.nonBg > stats.total * 0.05, `blank scene: ${JSON.stringify(stats)}`);
    await shot('scene-gltf.png');
    const p = await page.evaluate(() => window.__doppelScene.screenPosition('machine-2'));
    await page.mouse.click(p.x, p.y);
    await page.waitForURL(/#\/twin\/machine-2$/, { timeout: 5000 });
    const pick = await page.evaluate(() => window.__doppelScenePick);
    assert(pick?.hit === 'gltf' && pick.twin === 'machine-2', `the click hit ${JSON.stringify(pick)}`);
    await page.locator('[data-testid="prop-status"]').waitFor();
  });

  await check('the models page uploads a glTF scene for a model, shows it and removes it', async () => {
    const model = 'dtmi:doppel:example:factory:Machine;1';
    const url = `${stack.url}/models/${encodeURIComponent(model)}/scene`;
    const infoText = () => page.locator('[data-testid=model-scene-info]').textContent();
    await page.goto(`${stack.url}/#/models/${encodeURIComponent(model)}`);
    await page.waitForFunction(() => document.querySelector('[data-testid=model-scene-info]')?.textContent.startsWith('none'), null, { timeout: 10000 });
    assert(!(await page.locator('[data-testid=model-scene-remove]').isVisible()), 'remove offered without a scene');
    // Not a GLB: the server's problem (code and detail) is shown, nothing is attached.
    const bad = Buffer.from('glTF but not really a binary glTF file');
    await page.locator('[data-testid=model-scene-file]').setInputFiles({ name: 'broken.glb', mimeType: 'model/gltf-binary', buffer: bad });
    const err = page.locator('[data-testid=model-scene-result].error');
    await err.waitFor({ timeout: 5000 });
    const shown = await err.textContent();
    const refused = await fetch(url, { method: 'PUT', headers: { 'Content-Type': 'model/gltf-binary' }, body: bad });
    const problem = await refused.json();
    assert(refused.status === 400 && problem.code === 'SCENE_INVALID', `server answered ${refused.status} ${JSON.stringify(problem)}`);
    assert(shown.includes('SCENE_INVALID') && shown.includes(problem.detail), `shown: ${shown}\nserver: ${problem.detail}`);
    assert((await infoText()).startsWith('none'), `after a refused upload: ${await infoText()}`);
    assert((await fetch(url)).status === 404, 'a refused upload was kept');

    const glb = cubeGlb();
    await page.locator('[data-testid=model-scene-file]').setInputFiles({ name: 'cube.glb', mimeType: 'model/gltf-binary', buffer: glb });
    await page.locator('[data-testid=model-scene-result].ok').waitFor({ timeout: 5000 });
    await page.waitForFunction((n) => document.querySelector('[data-testid=model-scene-info]')?.textContent.includes(`model/gltf-binary, ${n} bytes`), glb.length, { timeout: 5000 });
    await page.locator('[data-testid=model-scene-remove]').waitFor({ state: 'visible', timeout: 5000 });
    const back = await fetch(url);
    assert(back.status === 200 && Buffer.from(await back.arrayBuffer()).equals(glb), `GET the model's scene: ${back.status}`);
    await page.locator('[data-testid=model-scene]').screenshot({ path: path.join(out, 'model-scene.png') });

    // The 3D scene: machine-2 and machine-3 keep their own glTF, machine-5 and machine-6 (of this
    // model) get the model's, and so do machine-1 and machine-4: CncMills, a model that extends
    // this one and has no scene of its own (as GET /digitaltwins/{id}/scene answers).
    await page.goto(`${stack.url}/#/scene`);
    await page.waitForFunction(() => window.__doppelScene?.settled(), null, { timeout: 15000 });
    const gltf = (await page.evaluate(() => window.__doppelScene.gltf())).sort().join(',');
    assert(gltf === 'machine-1,machine-2,machine-3,machine-4,machine-5,machine-6', `twins drawn with glTF: ${gltf}`);
    for (const twin of ['machine-5', 'machine-1']) {
      const h = (await fetch(`${stack.url}/digitaltwins/${twin}/scene`)).headers;
      assert(h.get('Doppel-Scene-Source') === 'model' && h.get('Doppel-Scene-Model') === model,
        `${twin}'s scene comes from ${h.get('Doppel-Scene-Source')} ${h.get('Doppel-Scene-Model')}`);
    }

    await page.goto(`${stack.url}/#/models/${encodeURIComponent(model)}`);
    await page.locator('[data-testid=model-scene-remove]').click({ timeout: 10000 });
    await page.locator('[data-testid=model-scene-result].ok', { hasText: 'removed' }).waitFor({ timeout: 5000 });
    await page.waitForFunction(() => document.querySelector('[data-testid=model-scene-info]')?.textContent.startsWith('none'), null, { timeout: 5000 });
    const gone = await fetch(url);
    assert(gone.status === 404 && (await gone.json()).code === 'SCENE_NOT_FOUND', `GET after remove: ${gone.status}`);
  });

  await check('a scenario runs and its chart appears', async () => {
    for (const id of ['line-today', 'line-m2-serviced']) {
      const r = await fetch(`${stack.url}/scenarios/${id}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: readFileSync(path.join(repoRoot, `examples/scenarios/${id}.json`)) });
      assert(r.ok, `PUT /scenarios/${id}: ${r.status} ${await r.text()}`);
    }
    await page.goto(`${stack.url}/#/scenarios`);
    await page.locator('[data-testid="run-line-today"]').click();
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=run-chart]')?.getAttribute('data-points') ?? 0) > 0, null, { timeout: 60000 });
    assert(await page.locator('[data-testid=run-chart] canvas').count() > 0, 'no chart canvas');
    // The Monte Carlo bands over time of the recorded WIP, nested p5 <= p25 <= p50 <= p75 <= p95.
    const wip = page.locator('[data-testid=mc-bands] [data-variable="line.wip"]');
    await wip.locator('canvas').waitFor({ timeout: 5000 });
    assert(Number(await wip.getAttribute('data-points')) > 1, 'no band points');
    const nested = await page.evaluate(async () => {
      const runs = await (await fetch('/scenarios/line-today/runs')).json();
      const id = runs.value.find((r) => r.status === 'succeeded').id;
      const r = await (await fetch(`/scenarios/line-today/runs/${id}`)).json();
      const b = r.result.monteCarlo.bands.find((x) => x.variable === 'line.wip');
      return b.time.every((_, j) => b.p5[j] <= b.p25[j] && b.p25[j] <= b.p50[j] && b.p50[j] <= b.p75[j] && b.p75[j] <= b.p95[j])
        && b.time.some((_, j) => b.p95[j] > b.p5[j]);
    });
    assert(nested, 'Monte Carlo bands are not nested or have no spread');
    await page.locator('[data-testid="run-line-m2-serviced"]').click();
    const rec = page.locator('[data-testid=recommendation]');
    await rec.waitFor({ timeout: 60000 });
    const text = await rec.textContent();
    assert(/line-m2-serviced|line-today/.test(text), `recommendation: ${text}`);
    await page.locator('[data-testid=kpi-bands] canvas').first().waitFor({ timeout: 5000 });
    await shot('scenarios.png');
  });

  await check('the events page shows live change-feed events', async () => {
    await page.goto(`${stack.url}/#/events`);
    await page.locator('[data-testid=event-list] tbody tr').first().waitFor({ timeout: 10000 });
    await shot('events.png');
  });

  await check('no JavaScript errors in the page', async () => {
    // 4xx answers are logged by the browser as failed loads; the invalid patch above is one.
    const real = consoleErrors.filter((e) => !/Failed to load resource: the server responded with a status of 4\d\d/.test(e));
    assert(real.length === 0, real.join('\n'));
  });
  exitCode = results.every((r) => r.ok) ? 0 : 1;
} catch (e) {
  console.log(`FAIL setup: ${e.stack ?? e}`);
  exitCode = 1;
} finally {
  if (browser) await browser.close().catch(() => {});
  if (stack) await stack.stop();
}
const failed = results.filter((r) => !r.ok).length;
console.log(`${results.length - failed}/${results.length} checks passed; screenshots in ${out}`);
process.exit(exitCode);
