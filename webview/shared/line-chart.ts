// A line chart over a step axis: uPlot (canvas, fast) drawing a min/max-decimated copy of series that keep every
// point. Drag to zoom (the zoomed range is decimated again, so detail appears), double-click to zoom out; the legend
// is the hover readout. The data is given whole on every redraw; the chart picks ~4 points per pixel column of it.
// Charts given one StepSync share their x domain, zoom and cursor, and keep the same left and right margins (a
// labelled axis each side, blank where unused), so their step axes line up when they are as wide. Steps tick at
// whole numbers; each axis writes its numbers one way (ticks.ts).
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { sig3 } from './format';
import { gather, minMaxIndices } from './series';
import type { StepSync } from './step-sync';
import { withAlpha, type Theme } from './theme';
import { formatTicks, INT_INCRS, logSplits, paddedRange } from './ticks';

export interface LineSpec {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  scale?: 'y' | 'y2';
  points?: boolean; // mark each point (sparse series such as evals)
  hidden?: boolean; // no line: a value for the legend only (e.g. perplexity read off the loss line)
  format?: (v: number) => string; // its legend value (default: the chart's format)
}

export interface ChartSpec {
  series: LineSpec[];
  log?: boolean; // log-scale y
  yLabel?: string; // the left axis's title
  // A second y axis on the right, for series with scale 'y2'. `derive`: its range is derive(left range), so a value
  // v on the left sits level with derive(v) on the right (perplexity = exp(loss) beside the loss).
  y2?: { log?: boolean; label?: string; derive?: (v: number) => number; ticks?: (v: number) => string };
  height?: number;
  format?: (v: number) => string; // legend values
  x?: { label: string; format?: (v: number) => string; integer?: boolean }; // default: 'step', whole numbers
}

/** Series sharing one non-decreasing x; only the first n points count. */
export interface ChartData {
  x: ArrayLike<number>;
  n: number;
  ys: ArrayLike<number>[];
}

const AXIS_SIZE = 56;
const NONE = new Float64Array(0);
const LABEL_SIZE = 18;

export class LineChart {
  private plot: uPlot | null = null;
  private ownZoom: [number, number] | null = null;
  private data: ChartData = { x: [], n: 0, ys: [] };
  private width = 0;
  private applying = false; // moving our cursor for another view: do not pass it on
  private readonly resize: ResizeObserver;
  private readonly unsubscribe: (() => void)[] = [];

  constructor(
    readonly host: HTMLElement,
    private spec: ChartSpec,
    private theme: Theme,
    private readonly sync?: StepSync,
  ) {
    this.resize = new ResizeObserver(() => {
      const w = Math.floor(this.host.clientWidth);
      if (w === this.width) return;
      this.width = w;
      if (!this.plot) this.build();
      else this.plot.setSize({ width: w, height: this.height });
      this.render();
    });
    this.resize.observe(host);
    if (sync) {
      this.unsubscribe.push(
        sync.onZoom(() => this.render()),
        sync.onCursor((step, from) => from !== this && this.showCursor(step)),
      );
    }
  }

  private get height(): number {
    return this.spec.height ?? 180;
  }

  private get zoom(): [number, number] | null {
    return this.sync ? this.sync.zoom : this.ownZoom;
  }

  setData(d: ChartData): void {
    this.data = d;
    this.render();
  }

  /** New series, log setting or theme: uPlot fixes these at creation, so the plot is built again. */
  respec(spec: ChartSpec, theme = this.theme): void {
    [this.spec, this.theme] = [spec, theme];
    this.plot?.destroy();
    this.plot = null;
    this.build();
    this.render();
  }

  /** Back to the whole x range (after a switch of the x quantity, the old range means nothing). */
  resetZoom(): void {
    if (this.sync) return this.sync.setZoom(null);
    this.ownZoom = null;
    this.render();
  }

  destroy(): void {
    this.resize.disconnect();
    for (const u of this.unsubscribe) u();
    this.plot?.destroy();
    this.plot = null;
  }

  private render(): void {
    const u = this.plot;
    if (!u) return;
    const { x, n } = this.data;
    const ys = this.spec.series.map((_, i) => this.data.ys[i] ?? NONE); // data and spec may change in either order
    const zoom = this.zoom;
    const idx = minMaxIndices(x, ys, n, Math.max(16, this.width), zoom?.[0], zoom?.[1]);
    const logOf = (i: number) =>
      this.spec.series[i]?.scale === 'y2' ? Boolean(this.spec.y2?.log) : Boolean(this.spec.log);
    const aligned = [Array.from(idx, (i) => x[i]), ...ys.map((y, i) => gather(y, idx, logOf(i)))] as uPlot.AlignedData;
    u.setData(aligned, true);
    const range = zoom ?? this.sync?.domain;
    if (range) u.setScale('x', { min: range[0], max: range[1] });
    if (this.sync?.cursor !== null && this.sync?.cursor !== undefined) this.showCursor(this.sync.cursor);
  }

  /** Marks `step` (another chart's or the heatmap's cursor) on this chart; null hides the mark. */
  private showCursor(step: number | null): void {
    const u = this.plot;
    if (!u) return;
    this.applying = true;
    const left = step === null ? -10 : u.valToPos(step, 'x');
    u.setCursor({ left: Number.isFinite(left) ? left : -10, top: step === null ? -10 : u.over.clientHeight / 2 });
    this.applying = false;
  }

  private build(): void {
    if (this.width <= 0) return; // hidden: built when it gets a size
    const s = this.spec;
    const opts: uPlot.Options = {
      width: this.width,
      height: this.height,
      scales: this.scales(),
      axes: this.axes(),
      series: [this.xSeries(), ...s.series.map((l) => this.series(l))],
      legend: { live: true },
      cursor: {
        y: false, // one vertical line: the step, as on every chart of the page
        // Dragging selects; the select hook below turns the selection into our zoom (uPlot itself never rescales x,
        // so a resize or new data cannot be mistaken for a zoom).
        drag: { x: true, y: false, setScale: false },
        bind: {
          dblclick: () => () => {
            this.resetZoom();
            return null;
          },
        },
      },
      hooks: {
        setSelect: [(u) => this.selected(u)],
        setCursor: [(u) => this.cursorMoved(u)],
      },
    };
    this.plot = new uPlot(opts, [[], ...s.series.map(() => [])], this.host);
  }

  private selected(u: uPlot): void {
    if (u.select.width < 2) return;
    const zoom: [number, number] = [u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x')];
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    if (this.sync) return this.sync.setZoom(zoom);
    this.ownZoom = zoom;
    this.render(); // decimate the zoomed range afresh
  }

  private cursorMoved(u: uPlot): void {
    if (this.applying || !this.sync) return;
    const left = u.cursor.left;
    const step = left === undefined || left < 0 ? null : u.posToVal(left, 'x');
    this.sync.setCursor(step === null ? null : this.spec.x?.integer === false ? step : Math.round(step), this);
  }

  private scales(): uPlot.Scales {
    const s = this.spec;
    const log = { distr: 3, log: 10 } as const;
    const derive = s.y2?.derive;
    if (!derive) return { x: { time: false }, y: s.log ? log : {}, ...(s.y2 ? { y2: s.y2.log ? log : {} } : {}) };
    // Both ranges from the left series alone, so the right axis reads the same line.
    const left = (u: uPlot): [number, number] => this.leftRange(u) ?? [0, 1];
    return {
      x: { time: false },
      y: { ...(s.log ? log : {}), range: (u) => left(u) },
      y2: { ...(s.y2?.log ? log : {}), range: (u) => left(u).map(derive) as [number, number] },
    };
  }

  /** The padded range of the left axis's series over the visible steps. */
  private leftRange(u: uPlot): [number, number] | null {
    const [xs, min, max] = [u.data[0], u.scales.x.min ?? -Infinity, u.scales.x.max ?? Infinity];
    const vals: (number | null | undefined)[] = [];
    this.spec.series.forEach((l, i) => {
      if ((l.scale ?? 'y') !== 'y') return;
      const ys = u.data[i + 1];
      for (let k = 0; k < xs.length; k++) if (xs[k] >= min && xs[k] <= max) vals.push(ys[k]);
    });
    return paddedRange(vals, this.spec.log);
  }

  private axes(): uPlot.Axis[] {
    const [t, s] = [this.theme, this.spec];
    const font = `11px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    const line = { stroke: withAlpha(t.grid, 0.6), width: 1 };
    const xFmt = s.x?.format;
    const x: uPlot.Axis = {
      scale: 'x',
      side: 2,
      font,
      stroke: t.muted,
      size: 36,
      grid: { show: true, ...line },
      ticks: { ...line, size: 4 },
      incrs: s.x?.integer === false ? undefined : INT_INCRS,
      values: (_u, vals) => (xFmt ? vals.map((v) => (v === null ? '' : xFmt(v))) : formatTicks(vals)),
    };
    const tickFmt = s.y2?.ticks;
    const colored = Boolean(s.y2); // two y axes: each in its series' colour, so it is clear which is which
    const y = (scale: 'y' | 'y2', side: 1 | 3, log: boolean, label: string, color: string): uPlot.Axis => ({
      scale,
      side,
      font,
      labelFont: font,
      label,
      labelSize: LABEL_SIZE,
      labelGap: 0,
      stroke: colored ? color : t.muted,
      size: AXIS_SIZE,
      grid: { show: side === 3, ...line },
      ticks: { ...line, size: 4 },
      ...(log ? { splits: (u: uPlot) => logSplits(u.scales[scale].min ?? 1, u.scales[scale].max ?? 10) } : {}),
      ...(log ? { filter: (_u: uPlot, splits: number[]) => splits } : {}),
      values: (_u, vals) =>
        scale === 'y2' && tickFmt ? vals.map((v) => (v === null ? '' : tickFmt(v))) : formatTicks(vals, log),
    });
    const color = (scale: 'y' | 'y2') => s.series.find((l) => (l.scale ?? 'y') === scale)?.color ?? t.muted;
    const left = y('y', 3, Boolean(s.log), s.yLabel ?? '', color('y'));
    if (s.y2) return [x, left, y('y2', 1, Boolean(s.y2.log), s.y2.label ?? '', color('y2'))];
    if (!this.sync) return [x, left];
    // A blank right axis as wide as a second one, so every chart of the page has the same plot width.
    return [x, left, { ...y('y', 1, false, '', t.muted), values: (_u, v) => v.map(() => ''), ticks: { show: false } }];
  }

  private xSeries(): uPlot.Series {
    const xFmt = this.spec.x?.format ?? String;
    return {
      label: this.spec.x?.label ?? 'step',
      value: (u, v, _s, idx) => {
        const shown = v ?? (idx === null ? lastValue(u.data[0]) : null);
        return shown === null ? '–' : xFmt(shown);
      },
    };
  }

  private series(l: LineSpec): uPlot.Series {
    const fmt = l.format ?? this.spec.format ?? sig3;
    return {
      label: l.label,
      stroke: l.color,
      width: l.width ?? 1.5,
      dash: l.dash,
      scale: l.scale ?? 'y',
      spanGaps: true,
      ...(l.hidden ? { paths: () => null } : {}),
      points: l.points && !l.hidden ? { show: true, size: 5, fill: l.color } : { show: false },
      // Under the cursor: that point; elsewhere: the latest point, so the legend doubles as a live readout.
      value: (u, v, sidx, idx) => {
        const shown = v ?? (idx === null ? lastValue(u.data[sidx]) : null);
        return shown === null ? '–' : fmt(shown);
      },
    };
  }
}

function lastValue(ys: ArrayLike<number | null | undefined> | undefined): number | null {
  if (!ys) return null;
  for (let i = ys.length - 1; i >= 0; i--) {
    const v = ys[i];
    if (v !== null && v !== undefined) return v;
  }
  return null;
}
