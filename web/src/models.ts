// Models from GET /models and their resolved views (GET /models/{id}?resolved=true), cached.
import { enc, get } from './api';

export interface ModelInfo {
  id: string;
  displayName?: Record<string, string>;
  description?: Record<string, string>;
  decommissioned?: boolean;
}
export interface Content {
  name: string;
  '@type': string;
  schema?: any;
  writable?: boolean;
  unit?: string;
  semanticType?: string;
  target?: string;
  request?: { name: string; schema: any };
  response?: { name: string; schema: any };
  definedIn?: string;
  description?: string;
}
export interface Resolved {
  '@id': string;
  displayName?: string;
  extends?: string[];
  contents: Content[];
}

let list: Promise<ModelInfo[]> | null = null;
const resolved = new Map<string, Promise<Resolved>>();

export function models(): Promise<ModelInfo[]> {
  if (!list) list = get<{ value: ModelInfo[] }>('/models').then((r) => r.value);
  list.catch(() => { list = null; });
  return list;
}
export function resolvedModel(id: string): Promise<Resolved> {
  let p = resolved.get(id);
  if (!p) {
    p = get<any>(`/models/${enc(id)}?resolved=true`).then((r) => r.resolved as Resolved);
    p.catch(() => resolved.delete(id));
    resolved.set(id, p);
  }
  return p;
}
export function resetModels(): void {
  list = null;
  resolved.clear();
}

const NUMERIC = new Set(['double', 'float', 'integer', 'long', 'byte', 'short', 'unsignedInteger',
  'unsignedLong', 'unsignedByte', 'unsignedShort', 'decimal']);
export function isNumericSchema(s: unknown): boolean {
  return typeof s === 'string' && NUMERIC.has(s);
}

// Property paths of a model (components expanded one level: "comp/name"), with their content.
export async function propertyPaths(id: string): Promise<{ path: string; c: Content }[]> {
  const r = await resolvedModel(id);
  const out: { path: string; c: Content }[] = [];
  for (const c of r.contents) {
    if (c['@type'] === 'Property') out.push({ path: c.name, c });
    if (c['@type'] === 'Component' && typeof c.schema === 'string') {
      try {
        const sub = await resolvedModel(c.schema);
        for (const s of sub.contents) if (s['@type'] === 'Property') out.push({ path: `${c.name}/${s.name}`, c: s });
      } catch { /* an unknown component schema: skip */ }
    }
  }
  return out;
}
export async function telemetryPaths(id: string): Promise<{ path: string; c: Content }[]> {
  const r = await resolvedModel(id);
  const out: { path: string; c: Content }[] = [];
  for (const c of r.contents) {
    if (c['@type'] === 'Telemetry') out.push({ path: c.name, c });
    if (c['@type'] === 'Component' && typeof c.schema === 'string') {
      try {
        const sub = await resolvedModel(c.schema);
        for (const s of sub.contents) if (s['@type'] === 'Telemetry') out.push({ path: `${c.name}/${s.name}`, c: s });
      } catch { /* skip */ }
    }
  }
  return out;
}
export function schemaText(s: unknown): string {
  if (typeof s === 'string') return s;
  if (s && typeof s === 'object') {
    const o = s as any;
    if (o['@type'] === 'Enum') return `enum(${(o.enumValues ?? []).map((v: any) => v.enumValue).join('|')})`;
    if (o['@type'] === 'Array') return `array<${schemaText(o.elementSchema)}>`;
    if (o['@type'] === 'Map') return `map<${schemaText(o.mapKey?.schema)}, ${schemaText(o.mapValue?.schema)}>`;
    if (o['@type'] === 'Object') return `{${(o.fields ?? []).map((f: any) => `${f.name}: ${schemaText(f.schema)}`).join(', ')}}`;
  }
  return JSON.stringify(s);
}
