// The A/B heatmap on a canvas: one row per LoRA module, one column per logged step (averaged in log space when
// there are more steps than pixels), a colour bar (colorbar.ts), and a hover readout with the exact value under the
// cursor. The colour scale is robust (heat-scale.ts): the map's 5th–95th percentile, ratios centred on their
// balanced value, so the first steps' outliers do not turn the map into one colour. Cells with nothing to show yet
// (no step logged, or a ratio with a zero side on the first steps) are hatched: "no data yet". The hovered cell is
// framed, and its step is marked on the charts (StepSync); a chart's cursor draws its step here as a line. Clicking
// a row toggles that module's line in the chart below. From the keyboard: focus the map (Tab), arrows move a cell
// cursor whose value the readout shows (it is a live region), Enter or Space toggles the row's line.
// The container is #ab-heatmap (UI contract), with data-modules / data-steps / data-quantity / data-hover for tests.
import { h } from '../shared/dom';
import { shortModule, sig3 } from '../shared/format';
import { lowerBound } from '../shared/series';
import type { StepSync } from '../shared/step-sync';
import type { Theme } from '../shared/theme';
import { AB_INFO, heatmapCells, type AbMatrices, type AbQuantity } from './ab-model';
import { ColorBar, rampAt, sized, type Palette } from './colorbar';
import { heatPosition, heatScale, type HeatScale } from './heat-scale';

const LABEL_W = 120;
const HINT =
  'Hover the map (or focus it and use the arrow keys) for values; click a row (Enter) to add or remove its line below.';
const AXIS_H = 18;
const PAD = 6;

// viridis (sequential: norms) and a blue–orange diverging map (ratios: blue = A's side larger, orange = B's), one for
// light backgrounds (white in the middle) and one for dark ones.
const VIRIDIS = [
  '#440154',
  '#482878',
  '#3e4989',
  '#31688e',
  '#26828e',
  '#1f9e89',
  '#35b779',
  '#6ece58',
  '#b5de2b',
  '#fde725',
];
const DIVERGING_LIGHT = ['#2166ac', '#4393c3', '#92c5de', '#ececec', '#f4a582', '#d6604d', '#b2182b'];
const DIVERGING_DARK = ['#4393c3', '#2f6f9e', '#23455f', '#3a3a3a', '#6b3526', '#b5523a', '#f08a5d'];

export interface HeatmapInput {
  ab: AbMatrices;
  quantity: AbQuantity;
  selected: ReadonlySet<string>;
  stalled: ReadonlyMap<string, 'A' | 'B'>;
  balanced: number; // a ratio's balanced value (λ for ‖ΔB‖/‖ΔA‖, 1 for the output ratio): the neutral colour
}

interface Geometry {
  plotW: number;
  width: number; // pixel columns of cells
  scale: HeatScale;
}

export class Heatmap {
  readonly el: HTMLElement;
  private readonly canvas = h('canvas', { attrs: { role: 'img', tabindex: '0' } });
  private readonly overlay = h('canvas', { class: 'heatmap-overlay', attrs: { 'aria-hidden': 'true' } });
  private readonly box: HTMLElement;
  private readonly readout = h('div', { class: 'readout muted', text: HINT, attrs: { 'aria-live': 'polite' } });
  private readonly bar = new ColorBar();
  private input: HeatmapInput | null = null;
  private geometry: Geometry | null = null;
  private rowH = 14;
  private cursor = { row: 0, col: -1 }; // the keyboard's cell; col -1: the last logged step
  private hovered: { row: number; col: number } | null = null;
  private chartStep: number | null = null; // a chart's cursor

  constructor(
    private theme: Theme,
    private readonly onToggle: (module: string) => void,
    private readonly sync?: StepSync,
  ) {
    this.box = h(
      'div',
      {
        id: 'ab-heatmap',
        class: 'heatmap',
        attrs: { 'data-modules': '0', 'data-steps': '0', 'data-quantity': '', 'data-hover': '' },
      },
      [this.canvas],
    );
    const stack = h('div', { class: 'heatmap-stack' }, [this.box, this.overlay]); // the frame drawn over the map
    this.el = h('div', { class: 'heatmap-wrap' }, [stack, this.bar.el, this.readout]);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => this.leave());
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.canvas.addEventListener('click', (e) => {
      const row = this.rowAt(e.offsetY);
      if (this.input && row !== null) this.onToggle(this.input.ab.modules[row]);
    });
    sync?.onCursor((step, from) => {
      if (from === this) return;
      this.chartStep = step;
      this.drawOverlay();
    });
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
  }

  draw(input: HeatmapInput): void {
    this.input = input;
    const { ab, quantity } = input;
    Object.assign(this.box.dataset, { modules: String(ab.modules.length), steps: String(ab.cols), quantity });
    this.canvas.setAttribute(
      'aria-label',
      `${AB_INFO[quantity].label} for ${ab.modules.length} modules over ${ab.cols} logged steps`,
    );
    const rows = ab.modules.length;
    this.rowH = rows <= 16 ? 14 : rows <= 36 ? 12 : Math.max(2, Math.floor(432 / rows));
    const cssW = Math.max(200, Math.floor(this.box.clientWidth || 600));
    const cssH = PAD + Math.max(1, rows) * this.rowH + AXIS_H;
    const ctx = sized(this.canvas, cssW, cssH);
    sized(this.overlay, cssW, cssH);
    ctx.clearRect(0, 0, cssW, cssH);
    const plotW = cssW - LABEL_W - PAD;

    const cells = heatmapCells(ab, quantity, plotW);
    const ratio = AB_INFO[quantity].ratio;
    const scale = heatScale(cells.values, ratio ? Math.log10(input.balanced) : undefined);
    const [palette, ramp] = this.ramp(ratio);
    this.geometry = { plotW, width: cells.width, scale };
    this.drawCells(ctx, cells.values, cells.width, rows, plotW, ramp);
    this.drawLabels(ctx, input);
    this.drawAxis(ctx, ab, rows, plotW);
    const name = quantity === 'delta_ratio' ? `λ = ${sig3(input.balanced)}` : sig3(input.balanced);
    this.bar.draw(
      ratio
        ? { palette, ramp, scale, lowMeans: "A's side larger", highMeans: "B's side larger", midLabel: name }
        : { palette, ramp, scale },
      this.theme,
      plotW / 3,
    );
    this.hatchSwatch();
    this.drawOverlay();
  }

  private ramp(ratio: boolean): [Palette, string[]] {
    if (!ratio) return ['viridis', VIRIDIS];
    return this.theme.dark ? ['diverging-dark', DIVERGING_DARK] : ['diverging-light', DIVERGING_LIGHT];
  }

  /** The cells, one pixel each in an offscreen image scaled up without smoothing, over a hatch for "no data yet". */
  private drawCells(
    ctx: CanvasRenderingContext2D,
    values: Float32Array,
    width: number,
    rows: number,
    plotW: number,
    ramp: string[],
  ): void {
    const plotH = Math.max(1, rows) * this.rowH;
    ctx.fillStyle = this.hatch(ctx) ?? this.theme.grid;
    ctx.fillRect(LABEL_W, PAD, plotW, plotH);
    if (width > 0 && rows > 0) {
      const img = new ImageData(width, rows);
      const lut = Uint8ClampedArray.from({ length: 256 * 3 }, (_, k) => rampAt(ramp, Math.floor(k / 3) / 255)[k % 3]);
      for (let i = 0; i < values.length; i++) {
        const f = heatPosition(values[i], this.geometry!.scale);
        if (Number.isNaN(f)) continue; // transparent: the hatch shows
        const k = 3 * Math.round(255 * f);
        img.data.set([lut[k], lut[k + 1], lut[k + 2], 255], 4 * i);
      }
      const off = document.createElement('canvas');
      [off.width, off.height] = [width, rows];
      off.getContext('2d')!.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, LABEL_W, PAD, plotW, rows * this.rowH);
    } else {
      ctx.fillStyle = this.theme.fg;
      ctx.textAlign = 'center';
      ctx.textBaseline = 'middle';
      ctx.font = `12px ${family()}`;
      ctx.fillText('no data yet: the map fills in with the first logged steps', LABEL_W + plotW / 2, PAD + plotH / 2);
    }
  }

  /** Diagonal stripes in the grid colour: cells with no value yet. */
  private hatch(ctx: CanvasRenderingContext2D): CanvasPattern | null {
    const tile = document.createElement('canvas');
    [tile.width, tile.height] = [6, 6];
    const t = tile.getContext('2d')!;
    t.strokeStyle = this.theme.grid;
    t.lineWidth = 1;
    t.beginPath();
    t.moveTo(0, 6);
    t.lineTo(6, 0);
    t.stroke();
    return ctx.createPattern(tile, 'repeat');
  }

  private hatchSwatch(): void {
    const s = this.bar.swatch;
    s.style.backgroundImage = `repeating-linear-gradient(135deg, ${this.theme.grid} 0 1px, transparent 1px 4px)`;
  }

  /** Row labels (every row when they fit, else every k-th), selected rows in bold, stalled ones marked. */
  private drawLabels(ctx: CanvasRenderingContext2D, input: HeatmapInput): void {
    const t = this.theme;
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    const every = Math.ceil(10 / this.rowH);
    input.ab.modules.forEach((m, r) => {
      const y = PAD + (r + 0.5) * this.rowH;
      const stall = input.stalled.get(m);
      if (stall) {
        ctx.fillStyle = t.warning;
        ctx.fillRect(LABEL_W - 4, PAD + r * this.rowH, 3, this.rowH);
      }
      if (r % every && !input.selected.has(m)) return;
      ctx.fillStyle = input.selected.has(m) ? t.fg : t.muted;
      ctx.font = `${input.selected.has(m) ? 'bold ' : ''}10px ${family()}`;
      ctx.fillText(`${stall ? `${stall} stalls · ` : ''}${shortModule(m)}`, LABEL_W - 8, y);
    });
  }

  /** Step axis: first, middle and last logged step. */
  private drawAxis(ctx: CanvasRenderingContext2D, ab: AbMatrices, rows: number, plotW: number): void {
    ctx.fillStyle = this.theme.muted;
    ctx.font = `10px ${family()}`;
    ctx.textBaseline = 'top';
    const y = PAD + Math.max(1, rows) * this.rowH + 4;
    if (!ab.cols) return;
    const marks: [number, CanvasTextAlign][] = [
      [0, 'left'],
      [0.5, 'center'],
      [1, 'right'],
    ];
    for (const [f, align] of marks) {
      ctx.textAlign = align;
      ctx.fillText(`step ${ab.steps.data[Math.round(f * (ab.cols - 1))]}`, LABEL_W + f * plotW, y);
    }
  }

  /** The hovered (or keyboard) cell framed, and a chart's cursor step as a line across the rows. */
  private drawOverlay(): void {
    const [inp, g] = [this.input, this.geometry];
    const ctx = this.overlay.getContext('2d');
    if (!ctx || !inp || !g) return;
    const dpr = window.devicePixelRatio || 1;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, this.overlay.width, this.overlay.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const cols = inp.ab.cols;
    const colX = (col: number) => {
      const p = Math.min(g.width - 1, Math.floor(((col + 0.5) * g.width) / cols)); // the pixel column holding it
      const [x0, x1] = [LABEL_W + (p * g.plotW) / g.width, LABEL_W + ((p + 1) * g.plotW) / g.width];
      return x1 - x0 >= 4 ? [x0, x1] : [(x0 + x1) / 2 - 2, (x0 + x1) / 2 + 2];
    };
    const rows = inp.ab.modules.length;
    if (this.chartStep !== null && cols) {
      const col = Math.min(cols - 1, lowerBound(inp.ab.steps.data, cols, this.chartStep));
      const [x0, x1] = colX(col);
      ctx.fillStyle = this.theme.fg;
      ctx.fillRect((x0 + x1) / 2 - 0.5, PAD, 1, rows * this.rowH);
    }
    const c = this.hovered;
    this.box.dataset.hover = c ? `${c.row},${c.col}` : '';
    if (!c || !cols) return;
    const [x0, x1] = colX(c.col);
    const y0 = PAD + c.row * this.rowH;
    ctx.lineWidth = 2;
    ctx.strokeStyle = this.theme.bg; // a halo, so the frame shows on any cell colour
    ctx.strokeRect(x0 - 2, y0 - 2, x1 - x0 + 4, this.rowH + 4);
    ctx.strokeStyle = this.theme.fg;
    ctx.strokeRect(x0 - 1, y0 - 1, x1 - x0 + 2, this.rowH + 2);
  }

  private rowAt(y: number): number | null {
    const rows = this.input?.ab.modules.length ?? 0;
    const r = Math.floor((y - PAD) / this.rowH);
    return r >= 0 && r < rows ? r : null;
  }

  private hover(e: MouseEvent): void {
    const inp = this.input;
    const row = this.rowAt(e.offsetY);
    if (!inp || row === null) return this.leave();
    const plotW = this.canvas.clientWidth - LABEL_W - PAD;
    const f = (e.offsetX - LABEL_W) / plotW;
    if (f < 0 || f > 1 || !inp.ab.cols) {
      this.readout.textContent = `${inp.ab.modules[row]}${inp.ab.cols ? '' : ' · no data yet'}`;
      return this.mark(null);
    }
    this.mark({ row, col: Math.min(inp.ab.cols - 1, Math.floor(f * inp.ab.cols)) });
  }

  private leave(): void {
    this.readout.textContent = HINT;
    this.mark(null);
  }

  /** Frames a cell (null: none), shows its readout and tells the charts its step. */
  private mark(cell: { row: number; col: number } | null): void {
    this.hovered = cell;
    if (cell) this.show(cell.row, cell.col);
    this.drawOverlay();
    this.sync?.setCursor(cell ? this.input!.ab.steps.data[cell.col] : null, this);
  }

  private key(e: KeyboardEvent): void {
    const inp = this.input;
    if (!inp || !inp.ab.modules.length) return;
    const last = Math.max(0, inp.ab.cols - 1);
    let { row, col } = this.cursor;
    if (col < 0 || col > last) col = last;
    const moves: Record<string, () => void> = {
      ArrowUp: () => (row = Math.max(0, row - 1)),
      ArrowDown: () => (row = Math.min(inp.ab.modules.length - 1, row + 1)),
      ArrowLeft: () => (col = Math.max(0, col - 1)),
      ArrowRight: () => (col = Math.min(last, col + 1)),
      Home: () => (col = 0),
      End: () => (col = last),
      Enter: () => this.onToggle(inp.ab.modules[row]),
      ' ': () => this.onToggle(inp.ab.modules[row]),
    };
    const move = moves[e.key];
    if (!move) return;
    e.preventDefault();
    move();
    this.cursor = { row, col };
    if (inp.ab.cols) this.mark({ row, col });
    else this.readout.textContent = `${inp.ab.modules[row]} · no data yet`;
  }

  /** The readout for one cell: module, step, the quantity's value (and ‖ΔB‖/‖ΔA‖ beside a norm). */
  private show(row: number, col: number): void {
    const { ab, quantity } = this.input!;
    const v = ab.get(quantity, row, col);
    const value = v > 0 && Number.isFinite(v) ? sig3(v) : `${sig3(v)} (no data yet: ${noDataWhy(quantity, v)})`;
    const parts = [`${ab.modules[row]}`, `step ${ab.steps.data[col]}`, `${AB_INFO[quantity].label} = ${value}`];
    if (quantity !== 'delta_ratio') parts.push(`‖ΔB‖/‖ΔA‖ = ${sig3(ab.get('delta_ratio', row, col))}`);
    this.readout.textContent = parts.join(' · ');
  }
}

/** Why a cell has no colour: a side that has not moved yet (B starts at zero), or nothing logged. */
function noDataWhy(q: AbQuantity, v: number): string {
  if (Number.isNaN(v)) return 'not logged';
  if (AB_INFO[q].ratio) return v === 0 ? "B's side is zero" : "A's side is zero (B starts at zero)";
  return 'zero';
}

function family(): string {
  return getComputedStyle(document.body).fontFamily || 'sans-serif';
}
