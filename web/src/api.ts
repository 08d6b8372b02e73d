// The doppel API from the browser: fetch with the API key (localStorage), RFC 7807 problems
// as ApiError, and the /events change feed over WebSocket.

const KEY = 'doppel.apiKey';

export function apiKey(): string {
  return localStorage.getItem(KEY) ?? '';
}
export function setApiKey(k: string): void {
  if (k) localStorage.setItem(KEY, k);
  else localStorage.removeItem(KEY);
}

export interface Problem {
  code?: string;
  title?: string;
  status?: number;
  detail?: string;
  pointer?: string;
  errors?: { code: string; message: string; pointer?: string }[];
}

export class ApiError extends Error {
  constructor(public status: number, public problem: Problem) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
  }
  // The server's message with its code and each listed error.
  describe(): string {
    const p = this.problem;
    let s = `${p.code ?? this.status}: ${p.detail ?? p.title ?? ''}`;
    for (const e of p.errors ?? []) s += `\n• ${e.pointer ? e.pointer + ': ' : ''}${e.message} (${e.code})`;
    return s;
  }
}

export async function api<T = any>(method: string, path: string, body?: unknown,
                                   contentType = 'application/json'): Promise<T> {
  const headers: Record<string, string> = {};
  const k = apiKey();
  if (k) headers['Authorization'] = `Bearer ${k}`;
  let payload: BodyInit | undefined;
  if (body !== undefined) {
    headers['Content-Type'] = contentType;
    payload = typeof body === 'string' || body instanceof Blob || body instanceof ArrayBuffer ? body : JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body: payload });
  const text = await r.text();
  if (!r.ok) {
    let p: Problem = {};
    try { p = JSON.parse(text); } catch { p = { detail: text || r.statusText }; }
    if (r.status === 401) window.dispatchEvent(new CustomEvent('doppel-unauthorized'));
    throw new ApiError(r.status, p);
  }
  if (!text) return undefined as T;
  const ct = r.headers.get('content-type') ?? '';
  return (ct.includes('json') ? JSON.parse(text) : text) as T;
}

export const get = <T = any>(p: string) => api<T>('GET', p);

// The Authorization header for requests made outside api() (loaders, raw fetches).
export function authHeaders(): Record<string, string> {
  const k = apiKey();
  return k ? { Authorization: `Bearer ${k}` } : {};
}
export const enc = encodeURIComponent;

export function errorText(e: unknown): string {
  if (e instanceof ApiError) return e.describe();
  return e instanceof Error ? e.message : String(e);
}

// Every page of a query.
export async function queryAll(query: string, max = 100000): Promise<any[]> {
  const out: any[] = [];
  let token: string | null = null;
  do {
    const r: any = await api('POST', '/query', token ? { query, continuationToken: token } : { query });
    out.push(...r.value);
    token = r.continuationToken ?? null;
  } while (token && out.length < max);
  return out;
}

export interface FeedEvent {
  type: string;
  seq?: number;
  twinId?: string;
  model?: string;
  time?: string;
  data?: any;
  patch?: { op: string; path: string; value?: unknown; from?: string }[];
  etag?: string;
  [k: string]: unknown;
}

// The change feed, reconnecting (with backoff) until close() is called. `onState` reports
// whether the socket is open.
// The change feed over a WebSocket, reconnecting with backoff. Events sent while it was away
// (a dropped connection, or the server closing a subscriber that fell behind after its
// `overflow` message) are not replayed: `onResync` runs when a connection opens after an earlier
// one was lost, for the page to read again what it shows.
const openFeeds = new Set<Feed>();
// For the browser tests: drop every feed's connection and hold the reconnect for `holdMs`.
(window as any).__doppelFeeds = {
  drop: (holdMs: number) => { for (const f of openFeeds) f.drop(holdMs); return openFeeds.size; },
};

export class Feed {
  private ws: WebSocket | null = null;
  private closed = false;
  private retry = 500;
  private lost = false;
  constructor(private params: Record<string, string>, private onEvent: (e: FeedEvent) => void,
              private onState?: (open: boolean) => void, private onResync?: () => void) {
    openFeeds.add(this);
    this.open();
  }
  drop(holdMs: number): void {
    this.retry = holdMs;
    this.ws?.close();
  }
  private open(): void {
    const q = new URLSearchParams(this.params);
    const k = apiKey();
    if (k) q.set('access_token', k);
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/events?${q}`);
    this.ws = ws;
    ws.onopen = () => {
      this.retry = 500;
      this.onState?.(true);
      if (this.lost) { this.lost = false; this.onResync?.(); }
    };
    ws.onmessage = (m) => {
      let e: FeedEvent;
      try { e = JSON.parse(m.data); } catch { return; }
      this.onEvent(e);
    };
    ws.onclose = () => {
      this.onState?.(false);
      this.lost = true;
      if (this.closed) return;
      setTimeout(() => { if (!this.closed) this.open(); }, this.retry);
      this.retry = Math.min(this.retry * 2, 10000);
    };
  }
  close(): void {
    this.closed = true;
    openFeeds.delete(this);
    this.ws?.close();
  }
}

// JSON Pointer helpers (RFC 6901) and the subset of RFC 6902 the feed's patches use.
export function pointerParts(p: string): string[] {
  if (p === '') return [];
  return p.slice(1).split('/').map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}
export function applyPatch(doc: any, patch: { op: string; path: string; value?: unknown }[]): void {
  for (const op of patch) {
    const parts = pointerParts(op.path);
    if (parts.length === 0) continue;
    let o = doc;
    for (let i = 0; i < parts.length - 1; i++) {
      if (o[parts[i]] === undefined || typeof o[parts[i]] !== 'object') o[parts[i]] = {};
      o = o[parts[i]];
    }
    const last = parts[parts.length - 1];
    if (op.op === 'remove') delete o[last];
    else if (op.op === 'add' || op.op === 'replace') o[last] = op.value;
  }
}
export function getPath(doc: any, path: string): unknown {
  let o = doc;
  for (const p of path.split('/')) {
    if (o == null || typeof o !== 'object') return undefined;
    o = o[p];
  }
  return o;
}
