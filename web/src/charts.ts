// uPlot helpers: a history chart over server-side aggregates (zoom by drag-select and pan re-query
// the server with a step that fits the width), and plain line charts.
import uPlot from 'uplot';
import { enc, errorText, get } from './api';
import { h } from './dom';

const NICE_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400, 604800];

export function niceStep(rangeMs: number, points: number): number {
  const want = rangeMs / 1000 / Math.max(points, 1);
  return NICE_STEPS.find((s) => s >= want) ?? NICE_STEPS[NICE_STEPS.length - 1];
}

// An anomaly episode of one series (GET /digitaltwins/{id}/anomalies, twin.anomaly events).
export interface Episode { path: string; start: string; end?: string | null; value: number; score: number; detector?: string; baseline?: number; peakScore?: number }

// Series of the history chart: x, the history's min, max and mean, then the forecast's 95% and
// 80% bounds and its mean (null outside the forecast).
const S = { min: 1, max: 2, mean: 3, lo95: 4, hi95: 5, lo80: 6, hi80: 7, fmean: 8 } as const;

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
  private loads = 0;  // loads that set data; the draw after load n sets data-drawn = n (benchmark)
  // Forecast (toggle): the last answer and what it was asked with.
  private forecastOn = false;
  private forecast: any = null;
  private forecastKey = '';
  private forecastAt = 0;
  private forecastBtn: HTMLButtonElement;
  private caption: HTMLElement;
  // Anomaly episodes of this path, by start time (open ones have no end).
  private episodes = new Map<string, Episode>();
  private badge: HTMLElement;

  constructor(private twin: string, readonly path: string, private unit = '') {
    this.info = h('span.muted');
    const btn = (label: string, title: string, fn: () => void) => h('button.small', { title, onclick: fn }, label);
    const plotBox = h('div.plot');
    this.forecastBtn = h('button.small.toggle', { title: 'forecast this series (mean with 80% and 95% intervals)', 'data-testid': `forecast-toggle-${path}`, onclick: () => this.toggleForecast() }, 'Forecast');
    this.caption = h('div.caption.muted', { 'data-testid': `forecast-caption-${path}` });
    this.badge = h('span', { 'data-testid': `chart-anomaly-${path}` });
    this.el = h('div.chart', { 'data-testid': `chart-${path}` },
      h('div.row', {}, h('strong', {}, path), ' ', this.badge, ' ',
        btn('◀', 'pan back', () => this.pan(-0.5)), btn('▶', 'pan forward', () => this.pan(0.5)),
        btn('−', 'zoom out', () => this.zoom(2)), btn('+', 'zoom in', () => this.zoom(0.5)),
        btn('1h', 'last hour', () => this.last(3600e3)), btn('10m', 'last 10 minutes', () => this.last(600e3)),
        btn('live', 'follow new data', () => this.last(this.span)), ' ', this.forecastBtn, ' ', this.info),
      plotBox, this.caption);
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
        { label: 'forecast 95% low', stroke: 'rgba(230,120,20,0.35)', width: 1, spanGaps: true, points: { show: false } },
        { label: 'forecast 95% high', stroke: 'rgba(230,120,20,0.35)', width: 1, spanGaps: true, points: { show: false } },
        { label: 'forecast 80% low', stroke: 'rgba(230,120,20,0.55)', width: 1, spanGaps: true, points: { show: false } },
        { label: 'forecast 80% high', stroke: 'rgba(230,120,20,0.55)', width: 1, spanGaps: true, points: { show: false } },
        { label: 'forecast mean', stroke: '#d9660b', width: 2, dash: [6, 4], spanGaps: true, points: { show: false } },
      ],
      bands: [
        { series: [S.max, S.min], fill: 'rgba(70,130,220,0.15)' },
        { series: [S.hi95, S.lo95], fill: 'rgba(230,120,20,0.14)' },
        { series: [S.hi80, S.lo80], fill: 'rgba(230,120,20,0.22)' },
      ],
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
        draw: [(u) => { this.drawEpisodes(u); this.el.dataset.drawn = String(this.loads); }],
      },
    };
    this.plot = new uPlot(opts, [[], [], [], [], [], [], [], [], []], box);
    // For the browser tests: the chart's uPlot (data, series).
    (this.el as any).__uplot = this.plot;
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

  private toggleForecast(): void {
    this.forecastOn = !this.forecastOn;
    this.forecastBtn.classList.toggle('on', this.forecastOn);
    this.forecast = null;
    this.forecastKey = '';
    if (!this.forecastOn) { this.caption.textContent = ''; this.caption.className = 'caption muted'; }
    void this.load();
  }

  // The forecast's step: at least the chart's bucket and at least the spacing of the data (so
  // that the steps are not mostly empty, which the server refuses as FORECAST_GAPS); the horizon
  // a quarter of the visible buckets (10 to 60 steps).
  private forecastParams(chartStep: number, mean: any): { step: number; horizon: number } {
    const pts: any[] = mean.points;
    const n = pts.reduce((s: number, p: any[]) => s + (p[2] ?? 0), 0);
    let spacing = 0;
    if (n > 1 && pts.length > 1) spacing = (pts[pts.length - 1][0] - pts[0][0]) / 1000 / (n - 1);
    const want = Math.max(chartStep, spacing * 1.5);
    const step = NICE_STEPS.find((s) => s >= want) ?? NICE_STEPS[NICE_STEPS.length - 1];
    const visible = (this.to - this.from) / 1000 / step;
    return { step, horizon: Math.max(10, Math.min(60, Math.round(visible / 4))) };
  }

  private async loadForecast(chartStep: number, mean: any): Promise<void> {
    const { step, horizon } = this.forecastParams(chartStep, mean);
    const key = `${step}/${horizon}`;
    // Re-asked when the step changes, or every 30 s while following (a new version is fitted
    // when the data moved on).
    if (this.forecast && key === this.forecastKey && (!this.follow || Date.now() - this.forecastAt < 30000)) return;
    this.forecastKey = key;
    this.forecastAt = Date.now();
    this.caption.textContent = `forecasting at ${step}s steps…`;
    try {
      this.forecast = await get<any>(`/digitaltwins/${enc(this.twin)}/forecast/${this.path.split('/').map(enc).join('/')}?step=${step}s&horizon=${horizon}`);
      const f = this.forecast;
      const chosen = (f.backtest?.families ?? []).find((x: any) => x.family === (f.backtest?.chosen ?? f.info?.family)) ?? {};
      const cov = (chosen.coverage ?? []).map((c: any) => `${Math.round(c.level * 100)}%: ${(c.coverage * 100).toFixed(0)}%`).join(', ');
      this.caption.className = 'caption';
      this.caption.textContent = `forecast: ${f.info?.family ?? '?'}${f.info?.description ? ` (${f.info.description})` : ''} · ${f.points.length} steps of ${step}s` +
        ` · backtest MAE ${chosen.mae != null ? fmtNum(chosen.mae) : '—'}${cov ? `, interval coverage ${cov}` : ''}` +
        ` · model v${f.model?.version ?? '?'}${f.model?.trainedNow ? ' (fitted now)' : ''}`;
      this.el.dataset.forecast = String(f.points.length);
    } catch (e) {
      this.forecast = null;
      this.el.dataset.forecast = '0';
      this.caption.className = 'caption error';
      this.caption.textContent = `forecast: ${errorText(e)}`;
    }
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
      if (this.forecastOn) await this.loadForecast(step, mean);
      if (seq !== this.seq || !this.plot) return;
      const hx: number[] = mean.points.map((p: any[]) => p[0] / 1000);
      const byTime = (pts: any[][]) => new Map<number, number | null>(pts.map((p) => [p[0] / 1000, p[1]]));
      const mn = byTime(min.points), mx = byTime(max.points), me = byTime(mean.points);
      // The forecast's steps (after the history) on the same x.
      const fc = new Map<number, any>();
      if (this.forecastOn && this.forecast) for (const p of this.forecast.points) fc.set(Date.parse(p.time) / 1000, p);
      const xs = [...new Set([...hx, ...fc.keys()])].sort((a, b) => a - b);
      const band = (level: number, side: 'low' | 'high') => xs.map((x) => {
        const iv = fc.get(x)?.intervals?.find((i: any) => Math.abs(i.level - level) < 1e-9);
        return iv && Number.isFinite(iv[side]) ? iv[side] : null;
      });
      this.points = hx.length;
      this.el.dataset.points = String(hx.length);
      this.loads++;  // before setData: uPlot draws in a microtask after it, or at once
      this.plot.setData([xs, xs.map((x) => mn.get(x) ?? null), xs.map((x) => mx.get(x) ?? null), xs.map((x) => me.get(x) ?? null),
                         band(0.95, 'low'), band(0.95, 'high'), band(0.8, 'low'), band(0.8, 'high'),
                         xs.map((x) => fc.get(x)?.mean ?? null)], false);
      const fEnd = fc.size ? Math.max(...fc.keys()) : 0;
      this.plot.setScale('x', { min: this.from / 1000, max: Math.max(this.to / 1000, fEnd) });
      const n = mean.points.reduce((s: number, p: any[]) => s + (p[2] ?? 0), 0);
      this.info.textContent = `${hx.length} buckets of ${step}s (mean, min–max band) over ${n} points`;
      Object.assign(this.el.dataset, { step: String(step), covered: String(n), loads: String(this.loads) });
    } catch (e) {
      this.info.textContent = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
      if (this.pending) { this.pending = false; void this.load(); }
    }
  }

  // Anomaly episodes: the twin page passes GET …/anomalies' episodes and the twin.anomaly /
  // twin.anomalyCleared events of this path.
  setEpisodes(list: Episode[]): void {
    this.episodes.clear();
    for (const e of list) this.episodes.set(e.start, e);
    this.episodesChanged();
  }
  episode(e: Episode): void {
    this.episodes.set(e.start, { ...this.episodes.get(e.start), ...e });
    this.episodesChanged();
  }
  private episodesChanged(): void {
    const open = [...this.episodes.values()].filter((e) => !e.end);
    this.el.dataset.anomalies = String(this.episodes.size);
    this.el.dataset.openAnomalies = String(open.length);
    const last = [...this.episodes.values()].sort((a, b) => Date.parse(b.start) - Date.parse(a.start))[0];
    this.badge.replaceChildren(open.length
      ? h('span.badge.anomaly', { title: `${last.detector ?? ''} score ${fmtNum(last.score)} at ${last.start}: value ${fmtNum(last.value)}${last.baseline != null ? `, baseline ${fmtNum(last.baseline)}` : ''}` }, `⚠ anomaly (${open.length})`)
      : this.episodes.size ? h('span.badge', { title: 'ended anomaly episodes in view of the server' }, `${this.episodes.size} past anomal${this.episodes.size === 1 ? 'y' : 'ies'}`) : '');
    this.plot?.redraw(false, false);
  }

  // Episodes as shaded spans (start → end, or → the right edge while open) with a marker at the
  // first anomalous reading.
  private drawEpisodes(u: uPlot): void {
    if (!this.episodes.size) return;
    const ctx = u.ctx;
    const { left, top, width, height } = u.bbox;
    let drawn = 0;
    ctx.save();
    ctx.beginPath();
    ctx.rect(left, top, width, height);
    ctx.clip();
    for (const e of this.episodes.values()) {
      const t0 = Date.parse(e.start) / 1000;
      const t1 = e.end ? Date.parse(e.end) / 1000 : (u.scales.x.max ?? t0);
      const x0 = u.valToPos(t0, 'x', true), x1 = u.valToPos(Math.max(t0, t1), 'x', true);
      if (x1 < left || x0 > left + width) continue;
      ctx.fillStyle = e.end ? 'rgba(224,64,48,0.10)' : 'rgba(224,64,48,0.20)';
      ctx.fillRect(x0, top, Math.max(2, x1 - x0), height);
      if (Number.isFinite(e.value)) {
        const y = u.valToPos(e.value, 'y', true);
        ctx.fillStyle = '#d0321e';
        ctx.beginPath();
        ctx.arc(x0, Math.min(top + height - 4, Math.max(top + 4, y)), 5 * devicePixelRatio, 0, 2 * Math.PI);
        ctx.fill();
      }
      drawn++;
    }
    ctx.restore();
    this.el.dataset.anomaliesDrawn = String(drawn);
  }

  destroy(): void { this.plot?.destroy(); this.plot = null; }
}

function fmtNum(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Math.abs(v) >= 1000 || Number.isInteger(v) ? v.toFixed(0) : v.toPrecision(3);
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
