// The similarity heatmap (a canvas): for one pair of items, per layer × module kind (or per module × top-i
// directions), the cosine of the two updates or the subspace similarity φ of their output side, input side or lora_A,
// with a hover readout. Clicking a module shows its full φ(i, j) grid when the report has grids.
// Labels take the theme's colours, so a theme switch repaints both canvases (setTheme).
import type { CompareReport, ModuleSimilarity } from '../../src/protocol/compare';
import { h } from '../shared/dom';
import type { Theme } from '../shared/theme';
import {
  BASES,
  cellAt,
  heatColor,
  heatmap,
  itemName,
  pairLabel,
  similaritySummary,
  type Basis,
  type Heatmap,
  type HeatView,
} from './model';

interface Box {
  left: number;
  top: number;
  cellW: number;
  cellH: number;
  rows: number;
  cols: number;
}

export class SimilarityView {
  readonly root: HTMLElement;
  private readonly canvas = h('canvas', { id: 'similarity-heatmap' });
  private readonly readout = h('p', {
    id: 'similarity-readout',
    class: 'readout',
    text: 'Hover a cell for its value; click one for its φ(i, j) grid.',
  });
  private readonly summary = h('div', { id: 'similarity-summary', class: 'note' });
  private readonly gridBox = h('div', { id: 'similarity-grid-box' });
  private grid: { m: ModuleSimilarity; basis: Basis; pair: number } | null = null; // the φ(i, j) grid shown
  private pair = 0;
  private basis: Basis = 'out';
  private view: HeatView = 'layer-kind';
  private current: { hm: Heatmap; box: Box } | null = null;
  private lastWidth = 0;
  private readonly resize = new ResizeObserver(() => {
    if (this.root.clientWidth !== this.lastWidth) this.draw(); // heights follow from the draw itself
  });

  constructor(
    private readonly report: CompareReport,
    private theme: Theme,
  ) {
    const pairs = report.similarity;
    const select = <T extends string>(id: string, options: [T, string][], set: (v: T) => void) => {
      const s = h(
        'select',
        { id },
        options.map(([v, label]) => h('option', { text: label, attrs: { value: v } })),
      );
      s.addEventListener('change', () => {
        set(s.value as T);
        this.draw();
      });
      return s;
    };
    const controls = h('div', { class: 'controls' }, [
      pairs.length > 1 &&
        h('label', {}, [
          'pair ',
          select(
            'similarity-pair',
            pairs.map((p, i) => [String(i), pairLabel(report, p)]),
            (v) => (this.pair = Number(v)),
          ),
        ]),
      pairs.length > 1 && ' ',
      h(
        'label',
        { title: [report.definitions.phi_out, report.definitions.cosine, report.definitions.phi].join('\n') },
        ['compare ', select<Basis>('similarity-basis', BASES, (v) => (this.basis = v))],
      ),
      ' ',
      h('label', {}, [
        'view ',
        select<HeatView>(
          'similarity-view',
          [
            ['layer-kind', 'layer × module kind: φ(r1, r2) or cosine'],
            ['module-rank', 'module × top-i directions: φ(i, i)'],
          ],
          (v) => (this.view = v),
        ),
      ]),
    ]);
    this.canvas.dataset.layers = '0';
    this.canvas.addEventListener('mousemove', (e) => this.hover(e));
    this.canvas.addEventListener('click', (e) => this.showGrid(e));
    const ramp = h('span', { class: 'ramp' });
    ramp.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(heatColor).join(', ')})`;
    const legend = h('div', { class: 'legend' }, [h('span', { text: '0' }), ramp, h('span', { text: '1' })]);
    this.root = pairs.length
      ? h('div', {}, [
          controls,
          this.summary,
          h('div', { class: 'heat-wrap' }, [this.canvas]),
          legend,
          this.readout,
          this.gridBox,
        ])
      : h('div', {}, [
          h('p', { class: 'note', text: "Compare two or more items to see how alike their adapters' directions are." }),
          this.canvas,
        ]);
    this.resize.observe(this.root);
  }

  draw(): void {
    const p = this.report.similarity[this.pair];
    if (!p) return;
    const hm = heatmap(p, this.basis, this.view);
    this.canvas.dataset.layers = String(hm.rows.length);
    this.canvas.dataset.cols = String(hm.cols.length);
    this.summary.replaceChildren(...similaritySummary(this.report, p).map((t) => h('p', { text: t })));
    this.lastWidth = this.root.clientWidth;
    this.current = { hm, box: paint(this.canvas, hm, Math.max(240, (this.lastWidth || 640) - 4), this.theme) };
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.draw();
    if (this.grid) this.drawGrid(this.grid.m, this.grid.basis, this.grid.pair);
  }

  private hover(e: MouseEvent): void {
    if (!this.current) return;
    const { hm, box } = this.current;
    const c = cellAt(e.offsetX, e.offsetY, box);
    if (!c) return;
    const v = hm.values[c.row][c.col];
    const module = hm.modules[c.row][c.col];
    const m = this.moduleInfo(module);
    const cosine = this.basis === 'cosine';
    const figure = cosine ? 'cos(ΔW₁, ΔW₂)' : `φ(${m ? `${m.r1}, ${m.r2}` : 'r1, r2'})`;
    const what =
      this.view === 'layer-kind'
        ? `${hm.rows[c.row]} · ${hm.cols[c.col]}: ${figure}`
        : cosine
          ? `${hm.rows[c.row]}: cos(ΔW₁, ΔW₂)`
          : `${hm.rows[c.row]}, top ${hm.cols[c.col]}: φ(${hm.cols[c.col]}, ${hm.cols[c.col]})`;
    const where = module && this.view === 'layer-kind' ? `  [${module}]` : '';
    const value = v === null ? (module ? '– (a ΔW is zero)' : '– (no such module)') : v.toFixed(4);
    this.readout.textContent = `${what} = ${value}${where}`;
  }

  private showGrid(e: MouseEvent): void {
    if (!this.current) return;
    const c = cellAt(e.offsetX, e.offsetY, this.current.box);
    const m = c && this.moduleInfo(this.current.hm.modules[c.row][c.col]);
    if (m) this.drawGrid(m, this.basis, this.pair);
  }

  private drawGrid(m: ModuleSimilarity, basis: Basis, pairIndex: number): void {
    this.grid = { m, basis, pair: pairIndex };
    const grid = basis === 'cosine' ? undefined : m[basis]?.grid;
    if (!grid) {
      const why = basis === 'cosine' ? 'the cosine is one number' : 'the report has none (the CLI adds it with --grid)';
      this.gridBox.replaceChildren(h('p', { class: 'note', text: `${m.module}: no φ(i, j) grid: ${why}.` }));
      return;
    }
    const hm: Heatmap = {
      rows: grid.map((_, i) => `i = ${i + 1}`),
      cols: (grid[0] ?? []).map((_, j) => String(j + 1)),
      values: grid,
      modules: grid.map((row) => row.map(() => m.module)),
    };
    const canvas = h('canvas', { id: 'similarity-grid' });
    const pair = this.report.similarity[pairIndex];
    const [a, b] = [itemName(this.report.items[pair.a]), itemName(this.report.items[pair.b])];
    this.gridBox.replaceChildren(
      h('p', {
        class: 'note',
        text: `${m.module}: φ(i, j) for the top i directions of ${a} (rows) and the top j of ${b} (columns)`,
      }),
      canvas,
    );
    paint(canvas, hm, Math.min(this.root.clientWidth || 640, 80 + 40 * hm.cols.length), this.theme);
  }

  private moduleInfo(module: string | null): ModuleSimilarity | undefined {
    return module ? this.report.similarity[this.pair]?.modules.find((m) => m.module === module) : undefined;
  }

  dispose(): void {
    this.resize.disconnect();
  }
}

/** Draws a heatmap into the canvas at `width` CSS pixels; returns where the cells are. */
function paint(canvas: HTMLCanvasElement, hm: Heatmap, width: number, theme: Theme): Box {
  const ctx = canvas.getContext('2d')!;
  const font = `11px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
  ctx.font = font;
  const left = Math.ceil(Math.max(40, ...hm.rows.map((r) => ctx.measureText(r).width))) + 8;
  const top = 18;
  const cols = Math.max(1, hm.cols.length);
  const cellW = Math.max(14, Math.min(90, (width - left) / cols));
  const cellH = hm.rows.length > 24 ? 14 : 20;
  const [w, h] = [left + cellW * cols, top + cellH * hm.rows.length];
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.font = font;
  ctx.textBaseline = 'middle';
  const [fg, empty] = [theme.fg, theme.grid]; // labels; the outline of a cell without a value
  ctx.fillStyle = fg;
  ctx.textAlign = 'center';
  hm.cols.forEach((c, j) => ctx.fillText(fit(ctx, c, cellW - 2), left + (j + 0.5) * cellW, top / 2));
  ctx.textAlign = 'right';
  hm.rows.forEach((r, i) => {
    ctx.fillStyle = fg;
    ctx.fillText(r, left - 6, top + (i + 0.5) * cellH);
    hm.values[i].forEach((v, j) => {
      const [x, y] = [left + j * cellW, top + i * cellH];
      ctx.fillStyle = v === null ? 'transparent' : heatColor(v);
      if (v === null) {
        ctx.strokeStyle = empty;
        ctx.strokeRect(x + 1.5, y + 1.5, cellW - 3, cellH - 3);
        return;
      }
      ctx.fillRect(x + 0.5, y + 0.5, cellW - 1, cellH - 1);
      if (cellW >= 34) {
        ctx.fillStyle = v > 0.6 ? '#000' : '#fff';
        ctx.textAlign = 'center';
        ctx.fillText(v.toFixed(2), x + cellW / 2, y + cellH / 2);
        ctx.textAlign = 'right';
      }
    });
  });
  return { left, top, cellW, cellH, rows: hm.rows.length, cols: hm.cols.length };
}

function fit(ctx: CanvasRenderingContext2D, text: string, width: number): string {
  if (ctx.measureText(text).width <= width) return text;
  let s = text;
  while (s.length > 1 && ctx.measureText(`…${s}`).width > width) s = s.slice(1);
  return `…${s}`; // keep the end: q_proj, v_proj tell kinds apart
}
