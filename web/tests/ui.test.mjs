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

// A reading over MQTT through a mapping of its own: operatingHours is a Property the plant never
// publishes, so nothing else changes it during the test.
const UI_MAPPING = ['ui-test', {
  description: 'browser test readings', topic: 'uitest/{machine}', twin: '{machine}',
  model: 'dtmi:doppel:example:factory:Machine;1', fields: [{ pointer: '/operatingHours', element: 'operatingHours' }],
}];

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

  await check('the 3D scene renders and clicking a machine opens its twin', async () => {
    await page.goto(`${stack.url}/#/scene`);
    await page.waitForFunction(() => window.__doppelScene && window.__doppelScene.frames() > 0, null, { timeout: 15000 });
    const stats = await page.evaluate(() => {
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
    console.log(`     ${stats.count} machines, ${stats.colours} colours, ${(100 * stats.nonBg / stats.total).toFixed(1)}% non-background pixels`);
    assert(stats.count === 6, `scene has ${stats.count} machines`);
    assert(stats.colours > 50 && stats.nonBg > stats.total * 0.05, `blank scene: ${JSON.stringify(stats)}`);
    await shot('scene.png');
    const p = await page.evaluate(() => window.__doppelScene.screenPosition('machine-2'));
    await page.mouse.click(p.x, p.y);
    await page.waitForURL(/#\/twin\/machine-2$/, { timeout: 5000 });
    await page.locator('[data-testid="prop-status"]').waitFor();
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
