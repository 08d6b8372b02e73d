// UI performance: frames per second of the web UI's twin list and 3D scene with 1,000 twins
// updating at 1 Hz, against an empty page measured in the same run (the baseline: what this
// machine's headless chromium does with nothing to draw).
//
//   node bench/ui_bench.mjs [--doppel build/release/doppel] [--twins 1000] [--seconds 10]
//
// It starts its own mosquitto + `doppel serve --insecure` (web/tests/stack.mjs, no plant),
// creates N twins of the factory's Machine model, and sends every twin a new status and cycle
// time once a second (one POST /ingest of 2N readings per second, so the change feed carries N
// patches a second). Frames are counted with requestAnimationFrame in the page; the number of
// change-feed updates the page applied is printed beside it (so a page that stopped updating
// cannot look fast). Needs `npm ci` in web/ and chromium (scripts/bootstrap).
import { createRequire } from 'node:module';
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
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
const MODEL = 'dtmi:doppel:example:factory:Machine;1';
const STATUSES = ['running', 'idle', 'down', 'maintenance'];

const stack = await startStack({ doppel, outDir: path.join(path.dirname(doppel), 'ui-bench-output'), plant: false });
let browser;
let updater;
try {
  // N twins (20 requests in flight).
  const ids = Array.from({ length: N }, (_, i) => `bench-${String(i).padStart(4, '0')}`);
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(ids.slice(i, i + 20).map(async (id, k) => {
      const r = await fetch(`${stack.url}/digitaltwins/${id}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ $metadata: { $model: MODEL }, status: 'running', cycleTime: 40 + ((i + k) % 10) }) });
      if (!r.ok) throw new Error(`PUT ${id}: ${r.status} ${await r.text()}`);
    }));
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
  const fps = (seconds) => page.evaluate((ms) => new Promise((resolve) => {
    let frames = 0, worst = 0, last = performance.now();
    const t0 = last;
    const f = (t) => {
      frames++;
      worst = Math.max(worst, t - last);
      last = t;
      if (t - t0 < ms) requestAnimationFrame(f);
      else resolve({ fps: frames / ((t - t0) / 1000), worstFrameMs: worst });
    };
    requestAnimationFrame(f);
  }), seconds * 1000);

  const rows = [];
  await page.goto('about:blank');
  await page.setContent('<!doctype html><title>empty</title><body></body>');
  rows.push({ page: 'empty page (baseline)', ...(await fps(SECONDS)), updates: '-' });

  await page.goto(`${stack.url}/#/explorer`);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid=twin-list] tbody tr').length >= n, N, { timeout: 60000 }).catch(async (e) => { console.log('rows:', await page.evaluate(() => [document.querySelectorAll('[data-testid=twin-list] tbody tr').length, document.querySelector('.card .muted, .card .error')?.textContent])); throw e; });
  const before = await page.evaluate(() => document.querySelector('[data-testid=twin-list] tbody').textContent);
  rows.push({ page: `twin list (${N} rows)`, ...(await fps(SECONDS)) });
  const after = await page.evaluate(() => document.querySelector('[data-testid=twin-list] tbody').textContent);
  rows[rows.length - 1].updates = before !== after ? 'rows changed' : 'NO CHANGE';

  await page.goto(`${stack.url}/#/scene`);
  await page.waitForFunction(() => window.__doppelScene && window.__doppelScene.frames() > 0, null, { timeout: 60000 });
  const u0 = await page.evaluate(() => window.__doppelScene.updates());
  const f0 = await page.evaluate(() => window.__doppelScene.frames());
  const r = await fps(SECONDS);
  const u1 = await page.evaluate(() => window.__doppelScene.updates());
  const f1 = await page.evaluate(() => window.__doppelScene.frames());
  rows.push({ page: `3D scene (${N} machines)`, ...r, updates: `${u1 - u0} twin updates, ${f1 - f0} WebGL renders` });

  const base = rows[0].fps;
  console.log(`UI frame rate, ${N} twins updated at 1 Hz (${SECONDS} s each; headless chromium, SwiftShader WebGL)`);
  console.log('page                        fps    vs empty  worst frame  updates applied in the page');
  for (const x of rows) {
    console.log(`${x.page.padEnd(26)} ${x.fps.toFixed(1).padStart(5)}  ${(x.fps / base).toFixed(2).padStart(8)}  ${x.worstFrameMs.toFixed(0).padStart(8)} ms  ${x.updates}`);
  }
  console.log(`updates sent: ${sent} twin updates in ${tick} batches${failed ? `, ${failed} failed batches` : ''}`);
} finally {
  clearInterval(updater);
  if (browser) await browser.close().catch(() => {});
  await stack.stop();
}
