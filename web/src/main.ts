// doppel's web UI: a hash router over a few hand-written pages (no framework: each page is a
// function that renders into a container and returns a cleanup).
import 'uplot/dist/uPlot.min.css';
import './style.css';
import { apiKey, api } from './api';
import { explorerPage } from './pages/explorer';
import { modelsPage } from './pages/models';
import { twinPage } from './pages/twin';
import { scenePage } from './pages/scene';
import { scenariosPage } from './pages/scenarios';
import { eventsPage } from './pages/events';
import { loginPage } from './pages/login';

export type Cleanup = () => void;
type Page = (root: HTMLElement, arg: string) => Cleanup | void | Promise<Cleanup | void>;

const pages: Record<string, Page> = {
  login: loginPage, explorer: explorerPage, models: modelsPage, twin: twinPage, scene: scenePage,
  scenarios: scenariosPage, events: eventsPage,
};

const app = document.getElementById('app')!;
let cleanup: Cleanup | void;
let generation = 0;

async function route(): Promise<void> {
  const gen = ++generation;
  const hash = location.hash.replace(/^#\/?/, '');
  const slash = hash.indexOf('/');
  const name = slash < 0 ? hash : hash.slice(0, slash);
  const arg = slash < 0 ? '' : decodeURIComponent(hash.slice(slash + 1));
  const page = pages[name];
  if (!page) {
    location.replace('#/explorer');
    return;
  }
  if (cleanup) { try { cleanup(); } catch { /* ignore */ } cleanup = undefined; }
  app.replaceChildren();
  app.className = `page-${name}`;
  for (const a of document.querySelectorAll<HTMLAnchorElement>('#nav a')) {
    a.classList.toggle('active', a.getAttribute('href') === `#/${name}`);
  }
  const c = await page(app, arg);
  if (gen !== generation) { if (c) c(); return; }
  cleanup = c;
}

window.addEventListener('hashchange', () => void route());
window.addEventListener('doppel-unauthorized', () => {
  if (!location.hash.startsWith('#/login')) location.hash = '#/login';
});

// Without a key, ask the server whether it needs one (serve --insecure does not).
async function start(): Promise<void> {
  const conn = document.getElementById('conn')!;
  try {
    const h: any = await api('GET', '/healthz');
    conn.textContent = `${h.twins} twins · ${h.models} models`;
  } catch { conn.textContent = 'server unreachable'; }
  if (!apiKey()) {
    try { await api('GET', '/models'); } catch { /* the 401 handler goes to the login page */ }
  }
  await route();
}
void start();
