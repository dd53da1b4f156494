// A line chart over a step axis: uPlot (canvas, fast) drawing a min/max-decimated copy of series that keep every
// point. Drag to zoom (the zoomed range is decimated again, so detail appears), double-click to zoom out; the legend
// is the hover readout. The data is given whole on every redraw; the chart picks ~4 points per pixel column of it.
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { sig3 } from './format';
import { gather, minMaxIndices } from './series';
import { withAlpha, type Theme } from './theme';

export interface LineSpec {
  label: string;
  color: string;
  width?: number;
  dash?: number[];
  scale?: 'y' | 'y2';
  points?: boolean; // mark each point (sparse series such as evals)
}

export interface ChartSpec {
  series: LineSpec[];
  log?: boolean; // log-scale y
  y2?: { log?: boolean }; // a second y axis on the right, for series with scale 'y2'
  height?: number;
  format?: (v: number) => string; // legend and tick labels
  x?: { label: string; format?: (v: number) => string }; // default: 'step', shown as it is
}

/** Series sharing one non-decreasing x; only the first n points count. */
export interface ChartData {
  x: ArrayLike<number>;
  n: number;
  ys: ArrayLike<number>[];
}

export class LineChart {
  private plot: uPlot | null = null;
  private zoom: [number, number] | null = null;
  private data: ChartData = { x: [], n: 0, ys: [] };
  private width = 0;
  private readonly resize: ResizeObserver;

  constructor(
    readonly host: HTMLElement,
    private spec: ChartSpec,
    private theme: Theme,
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
  }

  private get height(): number {
    return this.spec.height ?? 180;
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
    this.zoom = null;
    this.render();
  }

  destroy(): void {
    this.resize.disconnect();
    this.plot?.destroy();
    this.plot = null;
  }

  private render(): void {
    const u = this.plot;
    if (!u) return;
    const { x, n, ys } = this.data;
    const idx = minMaxIndices(x, ys, n, Math.max(16, this.width), this.zoom?.[0], this.zoom?.[1]);
    const logOf = (i: number) =>
      this.spec.series[i]?.scale === 'y2' ? Boolean(this.spec.y2?.log) : Boolean(this.spec.log);
    const aligned = [Array.from(idx, (i) => x[i]), ...ys.map((y, i) => gather(y, idx, logOf(i)))] as uPlot.AlignedData;
    u.setData(aligned, true);
    if (this.zoom) u.setScale('x', { min: this.zoom[0], max: this.zoom[1] });
  }

  private build(): void {
    if (this.width <= 0) return; // hidden: built when it gets a size
    const t = this.theme;
    const fmt = this.spec.format ?? sig3;
    const xFmt = this.spec.x?.format;
    const font = `11px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    const axis = (scale: string, side: 0 | 1 | 2 | 3, grid: boolean): uPlot.Axis => ({
      scale,
      side,
      font,
      stroke: t.muted,
      size: side === 2 ? 36 : 56,
      grid: { show: grid, stroke: withAlpha(t.grid, 0.6), width: 1 },
      ticks: { stroke: withAlpha(t.grid, 0.6), width: 1, size: 4 },
      values:
        side === 2
          ? xFmt && ((_u, vals) => vals.map((v) => (v === null ? '' : xFmt(v))))
          : (_u, vals) => vals.map((v) => (v === null ? '' : sig3(v))),
    });
    const opts: uPlot.Options = {
      width: this.width,
      height: this.height,
      scales: {
        x: { time: false },
        y: this.spec.log ? { distr: 3, log: 10 } : {},
        ...(this.spec.y2 ? { y2: this.spec.y2.log ? { distr: 3, log: 10 } : {} } : {}),
      },
      axes: [axis('x', 2, true), axis('y', 3, true), ...(this.spec.y2 ? [axis('y2', 1, false)] : [])],
      series: [
        {
          label: this.spec.x?.label ?? 'step',
          value: (u, v, _s, idx) => {
            const shown = v ?? (idx === null ? lastValue(u.data[0]) : null);
            return shown === null ? '–' : (xFmt ?? String)(shown);
          },
        },
        ...this.spec.series.map<uPlot.Series>((s) => ({
          label: s.label,
          stroke: s.color,
          width: s.width ?? 1.5,
          dash: s.dash,
          scale: s.scale ?? 'y',
          spanGaps: true,
          points: s.points ? { show: true, size: 5, fill: s.color } : { show: false },
          // Under the cursor: that point; elsewhere: the latest point, so the legend doubles as a live readout.
          value: (u, v, sidx, idx) => {
            const shown = v ?? (idx === null ? lastValue(u.data[sidx]) : null);
            return shown === null ? '–' : fmt(shown);
          },
        })),
      ],
      legend: { live: true },
      cursor: {
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
        setSelect: [
          (u) => {
            if (u.select.width < 2) return;
            const [min, max] = [u.posToVal(u.select.left, 'x'), u.posToVal(u.select.left + u.select.width, 'x')];
            u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
            this.zoom = [min, max];
            this.render(); // decimate the zoomed range afresh
          },
        ],
      },
    };
    this.plot = new uPlot(opts, [[], ...this.spec.series.map(() => [])], this.host);
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
