// UI performance: the web UI's twin list and 3D scene with 1,000 twins updating at 1 Hz, against an
// empty page measured in the same run (the baseline: what this machine's headless chromium does
// with nothing to draw), and a history chart over 1,000,000 points.
//
//   node bench/ui_bench.mjs [--doppel build/release/doppel] [--twins 1000] [--seconds 10]
//                           [--points 1000000] [--phases list,scene,chart] [--web-dir <ui build>]
//                           [--orbit rotate|drag]
//
// It starts its own mosquitto + `doppel serve --insecure` (web/tests/stack.mjs, no plant),
// creates N twins of the factory's Machine model, and sends every twin a new status and cycle
// time once a second (one POST /ingest of 2N readings per second, so the change feed carries N
// patches a second). --web-dir serves another build of the UI (an older one, to compare).
//
// Frames are counted with requestAnimationFrame in the page. Beside the frame rate it prints what
// the page did meanwhile, so that a page that stopped updating or drawing cannot look fast:
// * twin list: change-feed patches applied and status cells rewritten (window.__doppelTwinList),
//   measured idle and while the bench scrolls the list by 40 px a frame;
// * 3D scene: renderer.render calls per second, the page thread's time per call (the
//   rasterisation itself runs in the GPU process: SwiftShader here), and the updates applied
//   (window.__doppelScene). The scene renders on demand, so it is measured twice: idle with
//   updates (it renders when colours change) and while the camera orbits: the page's "rotate"
//   toggle (every frame renders), or with --orbit drag (and for older builds without the toggle)
//   a mouse drag to and fro, which renders as often as the drag's moves arrive. An older build
//   without stats() shows "-".
// * chart: 1,000,000 points (--points) of one Telemetry written through POST /write (line
//   protocol, 500 ms apart, ending now: ingest refuses readings older than 7 days), then the time
//   from opening the twin page to the chart drawn, and per zoom and pan step (each asks the server
//   for mean, min and max at a step that fits the chart's width) with the points the view covers;
//   the same aggregates fetched directly give the server's share. The 1 Hz updates are stopped for
//   this phase.
// Needs `npm ci` in web/ and chromium (scripts/bootstrap).
import { createRequire } from 'node:module';
import { loadavg } from 'node:os';
import path from 'node:path';
import { pathToFileURL, fileURLToPath } from 'node:url';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const requireWeb = createRequire(path.join(repo, 'web/package.json'));
const { chromium } = requireWeb('playwright-core');
const { startStack } = await import(pathToFileURL(path.join(repo, 'web/tests/stack.mjs')).href);

const args = Object.fromEntries(process.argv.slice(2).reduce((a, v, i, all) => (v.startsWith('--') ? [...a, [v.slice(2), all[i + 1]]] : a), []));
const doppel = args.doppel ?? path.join(repo, 'build/release/doppel');
const N = Number(args.twins ?? 1000);
const SECONDS = Number(args.seconds ?? 10);
const POINTS = Number(args.points ?? 1000000);
const PHASES = new Set((args.phases ?? 'list,scene,chart').split(','));
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const MODEL = 'dtmi:doppel:example:factory:Machine;1';
const STATUSES = ['running', 'idle', 'down', 'maintenance'];
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

const outDir = path.join(path.dirname(doppel), 'ui-bench-output');  // logs and screenshots
const stack = await startStack({ doppel, outDir, plant: false, webDir: args['web-dir'] });
let browser;
let updater;
try {
  const put = async (id, doc) => {
    const r = await fetch(`${stack.url}/digitaltwins/${id}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(doc) });
    if (!r.ok) throw new Error(`PUT ${id}: ${r.status} ${await r.text()}`);
  };
  // N twins (20 requests in flight).
  const ids = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(ids.slice(i, i + 20).map((id, k) => put(id, { $metadata: { $model: MODEL }, status: 'running', cycleTime: 40 + ((i + k) % 10) })));
  }
  // Every twin updated once a second.
  let tick = 0, sent = 0, failed = 0;
  const update = async () => {
    tick++;
    const readings = ids.flatMap((id, i) => [
      { twin: id, element: 'status', value: STATUSES[(i + tick) % STATUSES.length] },
      { twin: id, element: 'cycleTime', value: 40 + ((i * 7 + tick) % 20) },
    ]);
    const r = await fetch(`${stack.url}/ingest`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ readings }) });
    if (r.ok) sent += ids.length; else failed++;
  };
  updater = setInterval(() => void update().catch(() => failed++), 1000);

  browser = await chromium.launch({ executablePath: args.chromium ?? '/usr/bin/chromium', args: CHROMIUM_ARGS, headless: true });
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  // Frames per second over `seconds`, the longest frame and the frames longer than 50 ms (three
  // vsyncs: a visible stutter); `during` runs in the page on every frame (scrolling).
  const fps = (seconds, during = null) => page.evaluate(([ms, during]) => new Promise((resolve) => {
    const step = during ? new Function(during) : null;
    let frames = 0, worst = 0, long = 0, last = performance.now();
    const t0 = last;
    const f = (t) => {
      frames++;
      worst = Math.max(worst, t - last);
      if (t - last > 50) long++;
      last = t;
      if (step) step();
      if (t - t0 < ms) requestAnimationFrame(f);
      else resolve({ fps: frames / ((t - t0) / 1000), worstFrameMs: worst, long, seconds: (t - t0) / 1000 });
    };
    requestAnimationFrame(f);
  }), [seconds * 1000, during]);

  const rows = [];
  if (PHASES.has('list') || PHASES.has('scene')) {
    await page.goto('about:blank');
    await page.setContent('<!doctype html><title>empty</title><body></body>');
    rows.push({ page: 'empty page (baseline)', ...(await fps(SECONDS)), did: '-' });
  }

  if (PHASES.has('list')) {
    await page.goto(`${stack.url}/#/explorer`);
    // "<n> result(s)" once the query answered (older builds put every row in the DOM).
    await page.waitForFunction((n) => Number(/(\d+) result/.exec(document.querySelector('.card .muted')?.textContent ?? '')?.[1] ?? 0) >= n, N, { timeout: 60000 });
    const listStats = () => page.evaluate(() => ({
      dom: document.querySelectorAll('[data-testid=twin-list] tbody tr[data-twin]').length,
      text: document.querySelector('[data-testid=twin-list] tbody').textContent,
      ...(window.__doppelTwinList?.stats() ?? {}),
    }));
    const measure = async (name, during) => {
      const a = await listStats();
      const r = await fps(SECONDS, during);
      const b = await listStats();
      const did = b.applied !== undefined
        ? `${b.applied - a.applied} patches applied, ${b.cellWrites - a.cellWrites} cells rewritten, ${b.dom} of ${b.rows} rows in the DOM`
        : `${b.dom} rows in the DOM${a.text !== b.text ? ', rows changed' : ', NO CHANGE'}`;
      rows.push({ page: name, ...r, did });
    };
    await measure(`twin list (${N} twins)`);
    // Down 40 px a frame, back to the top at the end.
    await measure('twin list, scrolling', "const s = document.querySelector('.scroll'); s.scrollTop = s.scrollTop + 40 >= s.scrollHeight - s.clientHeight ? 0 : s.scrollTop + 40;");
  }

  if (PHASES.has('scene')) {
    await page.goto(`${stack.url}/#/scene`);
    await page.waitForFunction(() => window.__doppelScene && window.__doppelScene.frames() > 0, null, { timeout: 60000 });
    const sceneStats = () => page.evaluate(() => ({ renders: window.__doppelScene.frames(), updates: window.__doppelScene.updates(), ...(window.__doppelScene.stats?.() ?? {}) }));
    const measure = async (name, orbit) => {
      const a = await sceneStats();
      let r;
      const toggle = page.locator('[data-testid=auto-rotate]');
      if (orbit && args.orbit !== 'drag' && await toggle.count()) {
        await toggle.check();
        r = await fps(SECONDS);
        await toggle.uncheck();
      } else if (orbit) {
        // A horizontal drag to and fro across the canvas until the measurement ends.
        const box = await page.locator('[data-testid=scene] canvas').boundingBox();
        const cx = box.x + box.width / 2, cy = box.y + box.height / 2;
        await page.mouse.move(cx, cy);
        await page.mouse.down();
        let done = false;
        const fpsP = fps(SECONDS).finally(() => { done = true; });
        let k = 0;
        while (!done) {
          await page.mouse.move(cx + 200 * Math.sin(k++ / 30), cy);
        }
        r = await fpsP;
        await page.mouse.up();
      } else {
        r = await fps(SECONDS);
      }
      const b = await sceneStats();
      const n = b.renders - a.renders;
      rows.push({
        page: name, ...r,
        did: `${(n / r.seconds).toFixed(1)} renders/s` +
          (b.renderMs !== undefined ? `, ${((b.renderMs - a.renderMs) / Math.max(1, n)).toFixed(2)} ms JS/render, ${b.recoloured - a.recoloured} machines recoloured` : ', ms/render -') +
          `, ${b.updates - a.updates} twin updates applied`,
      });
    };
    await page.waitForFunction(() => !window.__doppelScene.settled || window.__doppelScene.settled(), null, { timeout: 60000 });
    await page.screenshot({ path: path.join(outDir, 'scene.png') });
    await measure(`3D scene (${N} machines)`, false);
    await measure(`3D scene, orbiting (${args.orbit === 'drag' || !(await page.locator('[data-testid=auto-rotate]').count()) ? 'drag' : 'rotate'})`, true);
  }

  if (rows.length) {
    const base = rows[0].fps;
    console.log(`UI frame rate, ${N} twins updated at 1 Hz (${SECONDS} s each; headless chromium, SwiftShader WebGL); load average ${load()}`);
    console.log('page                             fps  vs empty  worst frame  frames >50 ms  what the page did');
    for (const x of rows) {
      console.log(`${x.page.padEnd(30)} ${x.fps.toFixed(1).padStart(5)}  ${(x.fps / base).toFixed(2).padStart(8)}  ${x.worstFrameMs.toFixed(0).padStart(8)} ms  ${String(x.long).padStart(13)}  ${x.did}`);
    }
    console.log(`updates sent: ${sent} twin updates in ${tick} batches${failed ? `, ${failed} failed batches` : ''}`);
  }
  clearInterval(updater);

  if (PHASES.has('chart')) {
    // 1,000,000 readings of one twin's power, 500 ms apart and ending a second ago.
    await put('bench-chart', { $metadata: { $model: MODEL }, status: 'running', cycleTime: 42 });
    const end = Date.now() - 1000, spacing = 500, BATCH = 100000;
    const t0 = Date.now();
    for (let i = 0; i < POINTS; i += BATCH) {
      const lines = [];
      for (let j = i; j < Math.min(POINTS, i + BATCH); j++) {
        const t = end - (POINTS - 1 - j) * spacing;
        lines.push(`bench,twin=bench-chart power=${(50 + 20 * Math.sin(j / 5000) + 5 * Math.sin(j / 37) + ((j * 7919) % 100) / 50).toFixed(3)} ${t}`);
      }
      const r = await fetch(`${stack.url}/write?precision=ms`, { method: 'POST', headers: { 'Content-Type': 'text/plain' }, body: lines.join('\n') });
      if (r.status !== 204) throw new Error(`POST /write: ${r.status} ${(await r.text()).slice(0, 500)}`);
    }
    const writeS = (Date.now() - t0) / 1000;
    const stored = (await (await fetch(`${stack.url}/digitaltwins/bench-chart/history`)).json()).series.find((s) => s.path === 'power');
    console.log(`\nchart: ${POINTS} points of bench-chart/power written in ${writeS.toFixed(1)} s (${Math.round(POINTS / writeS)} points/s); history has ${stored?.points} points`);

    const sel = '[data-testid="chart-power"]';
    await page.goto(`${stack.url}/#/explorer`);
    await page.waitForFunction(() => document.querySelector('[data-testid=twin-list]'));
    // Opening the twin page: from the hash change to the first draw with data.
    const openMs = await page.evaluate((s) => new Promise((resolve, reject) => {
      const t0 = performance.now();
      location.hash = '#/twin/bench-chart';
      const poll = () => {
        const el = document.querySelector(s);
        if (el && Number(el.dataset.loads ?? 0) >= 1 && el.dataset.drawn === el.dataset.loads) resolve(performance.now() - t0);
        else if (performance.now() - t0 > 60000) reject(new Error('chart not drawn in 60 s'));
        else setTimeout(poll, 1);
      };
      poll();
    }), sel);
    const view = () => page.evaluate((s) => ({ ...document.querySelector(s).dataset }), sel);
    const first = await view();
    const steps = [{ action: 'open twin page', ms: openMs, ...first }];
    // One step: click a chart button, wait for the draw of the load it caused.
    const click = (title) => page.evaluate(([s, title]) => new Promise((resolve, reject) => {
      const el = document.querySelector(s);
      const want = Number(el.dataset.loads) + 1;
      const t0 = performance.now();
      el.querySelector(`button[title="${title}"]`).click();
      const poll = () => {
        if (Number(el.dataset.loads) >= want && el.dataset.drawn === el.dataset.loads) resolve(performance.now() - t0);
        else if (performance.now() - t0 > 60000) reject(new Error(`${title}: not drawn in 60 s`));
        else setTimeout(poll, 1);
      };
      poll();
    }), [sel, title]);
    const act = async (title, label) => steps.push({ action: label, ms: await click(title), ...(await view()) });
    for (let i = 0; i < 10; i++) await act('zoom out', 'zoom out');   // 10 min → 7 days
    await page.locator(sel).screenshot({ path: path.join(outDir, 'chart-1m.png') });
    for (let i = 0; i < 2; i++) await act('zoom in', 'zoom in');
    for (let i = 0; i < 3; i++) await act('pan back', 'pan ◀');
    for (let i = 0; i < 2; i++) await act('pan forward', 'pan ▶');
    for (let i = 0; i < 8; i++) await act('zoom in', 'zoom in');

    // The server's share: the widest view's three aggregates fetched directly.
    const wide = steps.reduce((a, b) => (Number(b.covered) > Number(a.covered) ? b : a));
    const q = `from=${new Date(end - POINTS * spacing - 3600e3).toISOString()}&to=${new Date(end + 1000).toISOString()}&step=${wide.step}s&epoch=ms`;
    const ts = Date.now();
    await Promise.all(['mean', 'min', 'max'].map((agg) => fetch(`${stack.url}/digitaltwins/bench-chart/history/power?${q}&agg=${agg}`).then((r) => r.json())));
    const serverMs = Date.now() - ts;

    console.log(`history chart over ${POINTS} points (bench-chart/power, 500 ms apart); load average ${load()}`);
    console.log('step              ms  bucket  buckets drawn  points in view');
    for (const s of steps) {
      console.log(`${s.action.padEnd(15)} ${s.ms.toFixed(0).padStart(5)}  ${(s.step + 's').padStart(6)}  ${String(s.points).padStart(13)}  ${String(s.covered).padStart(14)}`);
    }
    const zooms = steps.slice(1);
    console.log(`median step ${median(zooms.map((s) => s.ms)).toFixed(0)} ms, slowest ${Math.max(...zooms.map((s) => s.ms)).toFixed(0)} ms; ` +
      `all ${POINTS} points as mean/min/max at ${wide.step}s straight from the server (3 requests in parallel): ${serverMs} ms`);
  }
} finally {
  clearInterval(updater);
  if (browser) await browser.close().catch(() => {});
  await stack.stop();
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}
