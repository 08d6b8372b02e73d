// The graph of twins and relationships as SVG, grown hop by hop, laid out by a small force
// simulation (run to rest after each expansion, then drawn once).
import { enc, get } from '../api';
import { shortModel } from '../dom';
import { relationshipsOf } from './explorer';

interface Node { id: string; x: number; y: number; model?: string; expanded: boolean }
interface Edge { id: string; from: string; to: string; name: string }

const NS = 'http://www.w3.org/2000/svg';
const W = 900, HGT = 420;

export class GraphView {
  private nodes = new Map<string, Node>();
  private edges = new Map<string, Edge>();
  private svg: SVGSVGElement;
  constructor(private box: HTMLElement) {
    this.svg = document.createElementNS(NS, 'svg');
    this.svg.setAttribute('viewBox', `0 0 ${W} ${HGT}`);
    this.svg.setAttribute('class', 'graph-svg');
    box.append(this.svg);
  }
  empty(): boolean { return this.nodes.size === 0; }
  destroy(): void { this.svg.remove(); }

  async focus(id: string): Promise<void> {
    this.nodes.clear();
    this.edges.clear();
    this.add(id, W / 2, HGT / 2);
    await this.expand(id);
  }

  private add(id: string, x: number, y: number): Node {
    let n = this.nodes.get(id);
    if (!n) {
      n = { id, x: x + (Math.random() - 0.5) * 60, y: y + (Math.random() - 0.5) * 60, expanded: false };
      this.nodes.set(id, n);
      get<any>(`/digitaltwins/${enc(id)}`).then((t) => { n!.model = t.$metadata?.$model; this.draw(); }).catch(() => {});
    }
    return n;
  }

  async expand(id: string): Promise<void> {
    const n = this.nodes.get(id);
    if (!n) return;
    n.expanded = true;
    const { out, inc } = await relationshipsOf(id);
    for (const r of [...out, ...inc]) {
      const other = r.$sourceId === id ? r.$targetId : r.$sourceId;
      this.add(other, n.x, n.y);
      this.edges.set(`${r.$sourceId}/${r.$relationshipId}`, { id: r.$relationshipId, from: r.$sourceId, to: r.$targetId, name: r.$relationshipName });
    }
    this.layout();
    this.draw();
  }

  private layout(): void {
    const ns = [...this.nodes.values()];
    for (let it = 0; it < 300; it++) {
      const t = 1 - it / 300;
      for (const a of ns) {
        let fx = (W / 2 - a.x) * 0.01, fy = (HGT / 2 - a.y) * 0.01;
        for (const b of ns) {
          if (a === b) continue;
          const dx = a.x - b.x, dy = a.y - b.y;
          const d2 = Math.max(dx * dx + dy * dy, 25);
          fx += (dx / d2) * 3000;
          fy += (dy / d2) * 3000;
        }
        for (const e of this.edges.values()) {
          const o = e.from === a.id ? this.nodes.get(e.to) : e.to === a.id ? this.nodes.get(e.from) : undefined;
          if (!o) continue;
          fx += (o.x - a.x) * 0.03;
          fy += (o.y - a.y) * 0.03;
        }
        a.x = Math.min(W - 40, Math.max(40, a.x + Math.max(-20, Math.min(20, fx)) * t));
        a.y = Math.min(HGT - 20, Math.max(20, a.y + Math.max(-20, Math.min(20, fy)) * t));
      }
    }
  }

  private draw(): void {
    const el = (tag: string, attrs: Record<string, string | number>, text?: string) => {
      const e = document.createElementNS(NS, tag);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const defs = el('defs', {});
    const marker = el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 22, refY: 5, markerWidth: 6, markerHeight: 6, orient: 'auto-start-reverse' });
    marker.append(el('path', { d: 'M 0 0 L 10 5 L 0 10 z', fill: '#7a8699' }));
    defs.append(marker);
    const parts: Element[] = [defs];
    for (const e of this.edges.values()) {
      const a = this.nodes.get(e.from), b = this.nodes.get(e.to);
      if (!a || !b) continue;
      parts.push(el('line', { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: 'edge', 'marker-end': 'url(#arrow)' }));
      parts.push(el('text', { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 3, class: 'edge-label' }, e.name));
    }
    for (const n of this.nodes.values()) {
      const g = el('g', { class: `node ${n.expanded ? 'expanded' : ''}`, transform: `translate(${n.x},${n.y})`, 'data-twin': n.id });
      g.append(el('circle', { r: 14 }));
      g.append(el('text', { y: 28, class: 'node-label' }, n.id));
      g.append(el('text', { y: 40, class: 'node-model' }, shortModel(n.model)));
      const title = el('title', {}, `${n.id}\n${n.model ?? ''}\nclick: expand · double-click: open`);
      g.append(title);
      g.addEventListener('click', () => void this.expand(n.id));
      g.addEventListener('dblclick', () => { location.hash = `#/twin/${encodeURIComponent(n.id)}`; });
      parts.push(g);
    }
    this.svg.replaceChildren(...parts);
  }
}
