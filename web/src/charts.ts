// uPlot helpers: a history chart over server-side aggregates (zoom by drag-select and pan re-query
// the server with a step that fits the width), and plain line charts.
import uPlot from 'uplot';
import { enc, get } from './api';
import { h } from './dom';

const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800];

export function niceStep(rangeMs: number, points: number): number {
  const want = rangeMs / 1000 / Math.max(points, 1);
  return NICE_STEPS.find((s) => s >= want) ?? NICE_STEPS[NICE_STEPS.length - 1];
}

export class HistoryChart {
  readonly el: HTMLElement;
  private plot: uPlot | null = null;
  private from = 0;
  private to = 0;
  private follow = true;     // the range ends now, and moves with new data
  private span = 10 * 60e3;  // ms
  private info: HTMLElement;
  private busy = false;
  private pending = false;
  private lastLoad = 0;
  private seq = 0;
  points = 0;

  constructor(private twin: string, private path: string, private unit = '') {
    this.info = h('span.muted');
    const btn = (label: string, title: string, fn: () => void) => h('button.small', { title, onclick: fn }, label);
    const plotBox = h('div.plot');
    this.el = h('div.chart', { 'data-testid': `chart-${path}` },
      h('div.row', {}, h('strong', {}, path), ' ',
        btn('◀', 'pan back', () => this.pan(-0.5)), btn('▶', 'pan forward', () => this.pan(0.5)),
        btn('−', 'zoom out', () => this.zoom(2)), btn('+', 'zoom in', () => this.zoom(0.5)),
        btn('1h', 'last hour', () => this.last(3600e3)), btn('10m', 'last 10 minutes', () => this.last(600e3)),
        btn('live', 'follow new data', () => this.last(this.span)), ' ', this.info),
      plotBox);
    const now = Date.now();
    this.from = now - this.span;
    this.to = now;
    this.make(plotBox);
    void this.load();
  }

  private make(box: HTMLElement): void {
    const width = Math.max(300, Math.min(1100, window.innerWidth - 120));
    const opts: uPlot.Options = {
      width, height: 220,
      scales: { x: { time: true } },
      series: [
        {},
        { label: 'min', stroke: 'rgba(70,130,220,0.25)', width: 1 },
        { label: 'max', stroke: 'rgba(70,130,220,0.25)', width: 1 },
        { label: `mean${this.unit ? ` (${this.unit})` : ''}`, stroke: '#2f6fd6', width: 2, points: { show: false } },
      ],
      bands: [{ series: [2, 1], fill: 'rgba(70,130,220,0.15)' }],
      cursor: { drag: { x: true, y: false, setScale: false } },
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 3) return;
          const a = u.posToVal(u.select.left, 'x') * 1000;
          const b = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          this.follow = false;
          this.from = a;
          this.to = b;
          this.span = b - a;
          void this.load();
        }],
      },
    };
    this.plot = new uPlot(opts, [[], [], [], []], box);
  }

  private pan(frac: number): void {
    const d = (this.to - this.from) * frac;
    this.follow = false;
    this.from += d;
    this.to += d;
    if (this.to >= Date.now()) return this.last(this.to - this.from);
    void this.load();
  }
  private zoom(f: number): void {
    const mid = this.follow ? Date.now() : (this.from + this.to) / 2;
    this.span = (this.to - this.from) * f;
    if (this.follow) return this.last(this.span);
    this.from = mid - this.span / 2;
    this.to = mid + this.span / 2;
    void this.load();
  }
  private last(ms: number): void {
    this.follow = true;
    this.span = ms;
    this.to = Date.now();
    this.from = this.to - ms;
    void this.load();
  }

  // New data exists (a change-feed event for the twin): re-query when following, at most every 2 s.
  poke(): void {
    if (!this.follow) return;
    if (Date.now() - this.lastLoad < 2000) return;
    this.to = Date.now();
    this.from = this.to - this.span;
    void this.load();
  }

  async load(): Promise<void> {
    if (this.busy) { this.pending = true; return; }
    this.busy = true;
    this.lastLoad = Date.now();
    const seq = ++this.seq;
    try {
      const width = this.plot?.width ?? 600;
      const step = niceStep(this.to - this.from, width / 3);
      const base = `/digitaltwins/${enc(this.twin)}/history/${this.path.split('/').map(enc).join('/')}` +
        `?from=${new Date(this.from).toISOString()}&to=${new Date(this.to).toISOString()}&step=${step}s&epoch=ms`;
      const [mean, min, max] = await Promise.all(['mean', 'min', 'max'].map((agg) => get<any>(`${base}&agg=${agg}`)));
      if (seq !== this.seq || !this.plot) return;
      const xs = mean.points.map((p: any[]) => p[0] / 1000);
      const byTime = (r: any) => new Map<number, number | null>(r.points.map((p: any[]) => [p[0] / 1000, p[1]]));
      const mn = byTime(min), mx = byTime(max);
      this.points = xs.length;
      this.el.dataset.points = String(xs.length);
      this.plot.setData([xs, xs.map((x: number) => mn.get(x) ?? null), xs.map((x: number) => mx.get(x) ?? null),
                         mean.points.map((p: any[]) => p[1])], false);
      this.plot.setScale('x', { min: this.from / 1000, max: this.to / 1000 });
      const n = mean.points.reduce((s: number, p: any[]) => s + (p[2] ?? 0), 0);
      this.info.textContent = `${xs.length} buckets of ${step}s (mean, min–max band) over ${n} points`;
    } catch (e) {
      this.info.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
      if (this.pending) { this.pending = false; void this.load(); }
    }
  }

  destroy(): void { this.plot?.destroy(); this.plot = null; }
}

// A line chart of several series over a shared x (seconds, not time), optionally with bands.
export function lineChart(box: HTMLElement, title: string, x: number[], series: { label: string; values: (number | null)[]; color: string; dash?: number[] }[],
                          opts: { bands?: [number, number][]; xLabel?: string; height?: number; xTime?: boolean } = {}): uPlot {
  const width = Math.max(300, Math.min(1100, box.clientWidth || window.innerWidth - 120));
  return new uPlot({
    title, width, height: opts.height ?? 240,
    scales: { x: { time: opts.xTime ?? false } },
    axes: [{ label: opts.xLabel }, {}],
    series: [{ label: opts.xLabel ?? 'x' }, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 2, dash: s.dash, points: { show: x.length < 30 } }))],
    bands: (opts.bands ?? []).map(([a, b]) => ({ series: [a, b] as [number, number], fill: 'rgba(70,130,220,0.15)' })),
  }, [x, ...series.map((s) => s.values)] as uPlot.AlignedData, box);
}
