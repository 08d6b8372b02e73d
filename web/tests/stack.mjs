// The stack the browser tests and the UI benchmark run against: a mosquitto of their own on a
// free port, `doppel serve --insecure --mqtt` on a free port with a fresh data dir, the example
// factory imported, the plant's mappings put and (optionally) `doppel plant` publishing, as
// scripts/demo does. stop() ends every process it started; it is also called on exit and on
// SIGINT/SIGTERM so that nothing outlives the test.
import { spawn, execFile } from 'node:child_process';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, existsSync, rmSync, openSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const execFileP = promisify(execFile);

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what, fn, timeoutMs = 15000, everyMs = 100) {
  const end = Date.now() + timeoutMs;
  let last;
  while (Date.now() < end) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await sleep(everyMs);
  }
  throw new Error(`timed out waiting for ${what}${last ? ': ' + last.message : ''}`);
}

function portOpen(port) {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('connect', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  });
}

export const TELEMETRY_MAPPING = {
  description: 'doppel plant telemetry',
  topic: 'plant/{line}/{machine}/telemetry',
  twin: '{machine}',
  model: 'dtmi:doppel:example:factory:Machine;1',
  fields: [
    { pointer: '/temperature', element: 'motorTemperature/temperature', optional: true },
    { pointer: '/vibration', element: 'vibration', optional: true },
    { pointer: '/spindleSpeed', element: 'spindleSpeed', optional: true },
    { pointer: '/power', element: 'power', optional: true },
    { pointer: '/partsProduced', element: 'partsProduced', optional: true },
    { pointer: '/status', element: 'status', optional: true },
  ],
  timestamp: { pointer: '/ts', format: 'rfc3339' },
};

export const REPORTED_MAPPING = {
  description: 'doppel plant reported values; desired values and commands back to the plant',
  topic: 'plant/{line}/{machine}/reported',
  twin: '{machine}',
  model: 'dtmi:doppel:example:factory:Machine;1',
  fields: [
    { pointer: '/cycleTime', element: 'cycleTime', optional: true },
    { pointer: '/motorTemperature/alarmThreshold', element: 'motorTemperature/alarmThreshold', optional: true },
  ],
  timestamp: { pointer: '/ts', format: 'rfc3339' },
  desired: { topic: 'plant/{line}/{machine}/desired', ackTopic: 'plant/{line}/{machine}/ack', timeoutMs: 30000 },
  commands: { topic: 'plant/{line}/{machine}/commands/{command}', timeoutMs: 10000 },
};

// Options: doppel (binary), outDir (logs and data), plant (start `doppel plant`, default true),
// webDir (--web-dir; default: the binary's own), machines (default 6), rate (default 2).
export async function startStack(opts) {
  const doppel = path.resolve(opts.doppel);
  if (!existsSync(doppel)) throw new Error(`no doppel binary at ${doppel}`);
  const outDir = path.resolve(opts.outDir);
  mkdirSync(outDir, { recursive: true });
  const work = mkdtempSync(path.join(os.tmpdir(), 'doppel-web-'));
  const procs = [];
  let stopped = false;

  const spawnLogged = (name, cmd, args, env) => {
    const log = path.join(outDir, `${name}.log`);
    writeFileSync(log, '');
    const fd = openSync(log, 'a');
    const p = spawn(cmd, args, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env } });
    p.logFile = log;
    p.procName = name;
    p.exited = new Promise((r) => p.on('exit', (code, sig) => r({ code, sig })));
    procs.push(p);
    return p;
  };

  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const p of [...procs].reverse()) {
      if (p.exitCode === null && p.signalCode === null) p.kill('SIGTERM');
    }
    for (const p of procs) {
      const t = setTimeout(() => { try { p.kill('SIGKILL'); } catch {} }, 5000);
      await p.exited;
      clearTimeout(t);
    }
    rmSync(work, { recursive: true, force: true });
  };
  const onSignal = () => { stop().finally(() => process.exit(130)); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  process.once('exit', () => {
    for (const p of procs) if (p.exitCode === null && p.signalCode === null) try { p.kill('SIGKILL'); } catch {}
  });

  try {
    // mosquitto
    const mqttPort = await freePort();
    const mqttDir = path.join(work, 'mqtt');
    mkdirSync(mqttDir);
    const conf = [
      `listener ${mqttPort} 127.0.0.1`, 'allow_anonymous true', 'persistence false',
      'max_queued_messages 100000', `log_dest file ${mqttDir}/mosquitto.log`,
    ];
    if (process.getuid && process.getuid() === 0) conf.push('user root');
    writeFileSync(path.join(mqttDir, 'mosquitto.conf'), conf.join('\n') + '\n');
    const mosquitto = spawnLogged('mosquitto', opts.mosquitto || '/usr/sbin/mosquitto', ['-c', path.join(mqttDir, 'mosquitto.conf')]);
    await waitFor('mosquitto', () => portOpen(mqttPort));

    // doppel serve
    const portFile = path.join(work, 'port');
    const args = ['serve', '--data-dir', path.join(work, 'data'), '--listen', '127.0.0.1:0', '--insecure',
                  '--port-file', portFile, '--mqtt', `127.0.0.1:${mqttPort}`, '--fsync', 'never'];
    if (opts.webDir) args.push('--web-dir', opts.webDir);
    const server = spawnLogged('doppel-serve', doppel, args);
    const port = await waitFor('doppel serve (port file)', async () => {
      if (server.exitCode !== null) throw new Error(`doppel serve exited: ${readFileSync(server.logFile, 'utf8')}`);
      return existsSync(portFile) && parseInt(readFileSync(portFile, 'utf8'), 10);
    });
    const url = `http://127.0.0.1:${port}`;
    const env = { DOPPEL_SERVER: url };

    // the example factory
    await execFileP(doppel, ['import', path.join(repoRoot, 'examples/factory.ndjson')], { env: { ...process.env, ...env } });
    for (const [id, doc] of [['plant-telemetry', TELEMETRY_MAPPING], ['plant-reported', REPORTED_MAPPING], ...(opts.extraMappings || [])]) {
      const r = await fetch(`${url}/mappings/${id}`, { method: 'PUT', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(doc) });
      if (!r.ok) throw new Error(`PUT /mappings/${id}: ${r.status} ${await r.text()}`);
    }
    if (opts.plant !== false) {
      spawnLogged('doppel-plant', doppel, ['plant', '--broker', `127.0.0.1:${mqttPort}`, '--line', 'line-1',
        '--machines', String(opts.machines || 6), '--id-prefix', 'machine-', '--rate', String(opts.rate || 2), '--quiet']);
      await waitFor('plant telemetry in history', async () => {
        const r = await fetch(`${url}/digitaltwins/machine-1/history/spindleSpeed?latest=5`);
        return r.ok && (await r.json()).points.length >= 3;
      }, 30000, 200);
    }
    return { url, port, mqttPort, work, outDir, doppel, env, stop, procs, mosquitto, server };
  } catch (e) {
    await stop();
    throw e;
  }
}

// Minimal MQTT 3.1.1 publisher (QoS 0), enough to publish a test reading without a client
// library.
export async function mqttPublish(port, topic, payload) {
  const str = (s) => { const b = Buffer.from(s, 'utf8'); const l = Buffer.alloc(2); l.writeUInt16BE(b.length); return Buffer.concat([l, b]); };
  const remaining = (n) => { const out = []; do { let d = n % 128; n = Math.floor(n / 128); if (n > 0) d |= 128; out.push(d); } while (n > 0); return Buffer.from(out); };
  const packet = (type, body) => Buffer.concat([Buffer.from([type]), remaining(body.length), body]);
  const connect = packet(0x10, Buffer.concat([str('MQTT'), Buffer.from([4, 0x02, 0, 30]), str(`doppel-ui-test-${process.pid}-${Date.now()}`)]));
  const publish = packet(0x30, Buffer.concat([str(topic), Buffer.from(payload, 'utf8')]));
  const disconnect = Buffer.from([0xe0, 0]);
  await new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', reject);
    s.once('data', (d) => {
      if (d[0] !== 0x20 || d[3] !== 0) return reject(new Error('MQTT CONNACK refused'));
      s.write(Buffer.concat([publish, disconnect]), () => { s.end(); resolve(); });
    });
    s.write(connect);
  });
}
