// The A/B heatmap on a canvas: one row per LoRA module, one column per logged step (averaged in log space when
// there are more steps than pixels), a colour bar, and a hover readout with the exact value under the cursor.
// Clicking a row toggles that module's line in the chart below. From the keyboard: focus the map (Tab), arrows move
// a cell cursor whose value the readout shows (it is a live region), Enter or Space toggles the row's line.
// The container is #ab-heatmap (UI contract), and carries data-modules / data-steps / data-quantity for tests.
import { h } from '../shared/dom';
import { shortModule, sig3 } from '../shared/format';
import type { Theme } from '../shared/theme';
import { AB_INFO, colorRange, heatmapCells, type AbMatrices, type AbQuantity } from './ab-model';

const LABEL_W = 120;
const HINT =
  'Hover the map (or focus it and use the arrow keys) for values; click a row (Enter) to add or remove its line below.';
const AXIS_H = 18;
const PAD = 6;

// viridis (sequential: norms) and a blue–orange diverging map (ratios: blue = A's side larger, orange = B's).
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
const DIVERGING_LIGHT = ['#2166ac', '#4393c3', '#92c5de', '#e8e8e8', '#f4a582', '#d6604d', '#b2182b'];
const DIVERGING_DARK = ['#4393c3', '#2f6f9e', '#23455f', '#3a3a3a', '#6b3526', '#b5523a', '#f08a5d'];

export interface HeatmapInput {
  ab: AbMatrices;
  quantity: AbQuantity;
  selected: ReadonlySet<string>;
  stalled: ReadonlyMap<string, 'A' | 'B'>;
}

export class Heatmap {
  readonly el: HTMLElement;
  private readonly canvas = h('canvas', { attrs: { role: 'img', tabindex: '0' } });
  private readonly readout = h('div', { class: 'readout muted', text: HINT, attrs: { 'aria-live': 'polite' } });
  private readonly bar = h('canvas', { class: 'colorbar' });
  private readonly barLabels = h('div', { class: 'colorbar-labels muted' });
  private input: HeatmapInput | null = null;
  private rowH = 14;
  private cursor = { row: 0, col: -1 }; // the keyboard's cell; col -1: the last logged step

  constructor(
    private theme: Theme,
    private readonly onToggle: (module: string) => void,
  ) {
    const box = h(
      'div',
      { id: 'ab-heatmap', class: 'heatmap', attrs: { 'data-modules': '0', 'data-steps': '0', 'data-quantity': '' } },
      [this.canvas],
    );
    this.el = h('div', { class: 'heatmap-wrap' }, [
      box,
      h('div', { class: 'colorbar-row' }, [this.bar, this.barLabels]),
      this.readout,
    ]);
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('mouseleave', () => (this.readout.textContent = HINT));
    this.canvas.addEventListener('keydown', (e) => this.key(e));
    this.canvas.addEventListener('click', (e) => {
      const row = this.rowAt(e.offsetY);
      if (this.input && row !== null) this.onToggle(this.input.ab.modules[row]);
    });
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
  }

  draw(input: HeatmapInput): void {
    this.input = input;
    const { ab, quantity } = input;
    const box = this.canvas.parentElement!;
    box.dataset.modules = String(ab.modules.length);
    box.dataset.steps = String(ab.cols);
    box.dataset.quantity = quantity;
    this.canvas.setAttribute(
      'aria-label',
      `${AB_INFO[quantity].label} for ${ab.modules.length} modules over ${ab.cols} logged steps`,
    );

    const rows = ab.modules.length;
    this.rowH = rows <= 16 ? 14 : rows <= 36 ? 12 : Math.max(2, Math.floor(432 / rows));
    const cssW = Math.max(200, Math.floor(box.clientWidth || 600));
    const cssH = PAD + Math.max(1, rows) * this.rowH + AXIS_H;
    const ctx = this.resize(this.canvas, cssW, cssH);
    const t = this.theme;
    ctx.clearRect(0, 0, cssW, cssH);
    ctx.font = `10px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    const plotW = cssW - LABEL_W - PAD;

    const cells = heatmapCells(ab, quantity, plotW);
    const ratio = AB_INFO[quantity].ratio;
    const [lo, hi] = colorRange(cells.values, ratio);
    const ramp = ratio ? (t.dark ? DIVERGING_DARK : DIVERGING_LIGHT) : VIRIDIS;
    if (cells.width > 0 && rows > 0) {
      // One pixel per cell in an offscreen image, scaled up without smoothing.
      const img = new ImageData(cells.width, rows);
      const lut = rampLut(ramp);
      for (let i = 0; i < cells.values.length; i++) {
        const v = cells.values[i];
        if (!Number.isFinite(v)) continue; // transparent: nothing logged
        const k = 3 * Math.round(255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
        [img.data[4 * i], img.data[4 * i + 1], img.data[4 * i + 2], img.data[4 * i + 3]] = [
          lut[k],
          lut[k + 1],
          lut[k + 2],
          255,
        ];
      }
      const off = document.createElement('canvas');
      [off.width, off.height] = [cells.width, rows];
      off.getContext('2d')!.putImageData(img, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(off, LABEL_W, PAD, plotW, rows * this.rowH);
    }

    // Row labels (every row when they fit, else every k-th), selected rows in bold, stalled ones marked.
    ctx.textBaseline = 'middle';
    ctx.textAlign = 'right';
    const every = Math.ceil(10 / this.rowH);
    ab.modules.forEach((m, r) => {
      const y = PAD + (r + 0.5) * this.rowH;
      const stall = input.stalled.get(m);
      if (stall) {
        ctx.fillStyle = t.warning;
        ctx.fillRect(LABEL_W - 4, PAD + r * this.rowH, 3, this.rowH);
      }
      if (r % every && !input.selected.has(m)) return;
      ctx.fillStyle = input.selected.has(m) ? t.fg : t.muted;
      const family = getComputedStyle(document.body).fontFamily || 'sans-serif';
      ctx.font = `${input.selected.has(m) ? 'bold ' : ''}10px ${family}`;
      ctx.fillText(`${stall ? `${stall} stalls · ` : ''}${shortModule(m)}`, LABEL_W - 8, y);
    });

    // Step axis: first, middle and last logged step.
    ctx.fillStyle = t.muted;
    ctx.textBaseline = 'top';
    const yAxis = PAD + rows * this.rowH + 4;
    if (ab.cols) {
      const marks: [number, CanvasTextAlign][] = [
        [0, 'left'],
        [0.5, 'center'],
        [1, 'right'],
      ];
      for (const [f, align] of marks) {
        ctx.textAlign = align;
        ctx.fillText(`step ${ab.steps.data[Math.round(f * (ab.cols - 1))]}`, LABEL_W + f * plotW, yAxis);
      }
    } else {
      ctx.textAlign = 'left';
      ctx.fillText('no logged steps yet', LABEL_W, yAxis);
    }
    this.drawBar(ramp, lo, hi, ratio);
  }

  private drawBar(ramp: string[], lo: number, hi: number, ratio: boolean): void {
    const ctx = this.resize(this.bar, 160, 10);
    for (let x = 0; x < 160; x++) {
      const [r, g, b] = rampAt(ramp, x / 159);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x, 0, 1, 10);
    }
    const v = (l: number) => sig3(10 ** l);
    this.barLabels.textContent = ratio
      ? `${v(lo)} (A's side larger) · 1 · ${v(hi)} (B's side larger)`
      : `${v(lo)} … ${v(hi)} (log scale)`;
  }

  private resize(c: HTMLCanvasElement, w: number, hgt: number): CanvasRenderingContext2D {
    const dpr = window.devicePixelRatio || 1;
    if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
      [c.width, c.height] = [Math.round(w * dpr), Math.round(hgt * dpr)];
      c.style.width = `${w}px`;
      c.style.height = `${hgt}px`;
    }
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    return ctx;
  }

  private rowAt(y: number): number | null {
    const rows = this.input?.ab.modules.length ?? 0;
    const r = Math.floor((y - PAD) / this.rowH);
    return r >= 0 && r < rows ? r : null;
  }

  private hover(e: MouseEvent): void {
    const inp = this.input;
    const row = this.rowAt(e.offsetY);
    if (!inp || row === null) return;
    const plotW = this.canvas.clientWidth - LABEL_W - PAD;
    const f = (e.offsetX - LABEL_W) / plotW;
    if (f < 0 || f > 1 || !inp.ab.cols) {
      this.readout.textContent = inp.ab.modules[row];
      return;
    }
    this.show(row, Math.min(inp.ab.cols - 1, Math.floor(f * inp.ab.cols)));
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
    if (inp.ab.cols) this.show(row, col);
    else this.readout.textContent = inp.ab.modules[row];
  }

  /** The readout for one cell: module, step, the quantity's value (and ‖ΔB‖/‖ΔA‖ beside a norm). */
  private show(row: number, col: number): void {
    const { ab, quantity } = this.input!;
    const module = ab.modules[row];
    const parts = [
      `${module}`,
      `step ${ab.steps.data[col]}`,
      `${AB_INFO[quantity].label} = ${sig3(ab.get(quantity, row, col))}`,
    ];
    if (quantity !== 'delta_ratio') parts.push(`‖ΔB‖/‖ΔA‖ = ${sig3(ab.get('delta_ratio', row, col))}`);
    this.readout.textContent = parts.join(' · ');
  }
}

/** 256 RGB triples along the ramp. */
function rampLut(ramp: string[]): Uint8ClampedArray {
  const out = new Uint8ClampedArray(256 * 3);
  for (let i = 0; i < 256; i++) out.set(rampAt(ramp, i / 255), 3 * i);
  return out;
}

function rampAt(ramp: string[], f: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0.5)) * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(x));
  const [a, b] = [hex(ramp[i]), hex(ramp[i + 1])];
  const t = x - i;
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * t)) as [number, number, number];
}

function hex(c: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];
}
