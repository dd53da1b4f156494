// Overlaid curves of the compared items (uPlot): one quantity at a time (train loss, eval loss, accuracy,
// perplexity), aligned by optimizer step or by tokens seen (runs with different batch sizes or sequence lengths
// line up only by tokens).
import uPlot from 'uplot';
import type { CompareReport } from '../../src/protocol/compare';
import { count, sig3 } from '../shared/format';
import { el, themeColor } from './dom';
import { alignedCurves, availableCurves, CURVE_LABELS, type Axis, type CurveKind } from './model';

/** One colour per item from the theme's chart palette (cycled). */
export function itemColors(n: number): string[] {
  const palette = [
    ['--vscode-charts-blue', '#3794ff'],
    ['--vscode-charts-orange', '#d18616'],
    ['--vscode-charts-green', '#89d185'],
    ['--vscode-charts-purple', '#b180d7'],
    ['--vscode-charts-red', '#f14c4c'],
    ['--vscode-charts-yellow', '#cca700'],
  ].map(([v, f]) => themeColor(v, f));
  return Array.from({ length: n }, (_, i) => palette[i % palette.length]);
}

export class CurvesView {
  readonly root: HTMLElement;
  private readonly chartBox: HTMLElement;
  private readonly kinds: CurveKind[];
  private kind: CurveKind;
  private axis: Axis = 'step';
  private chart: uPlot | null = null;
  private readonly resize = new ResizeObserver(() => this.chart?.setSize(this.size()));

  constructor(
    private readonly report: CompareReport,
    private readonly colors: string[],
  ) {
    this.kinds = availableCurves(report);
    this.kind = this.kinds[0] ?? 'loss';
    const quantity = el(
      'select',
      { id: 'curve-kind', title: 'quantity' },
      ...this.kinds.map((k) => el('option', { value: k }, CURVE_LABELS[k])),
    );
    quantity.addEventListener('change', () => {
      this.kind = quantity.value as CurveKind;
      this.draw();
    });
    const axisToggle = el(
      'span',
      { className: 'segmented', id: 'curve-axis', title: 'aligned by' },
      ...(['step', 'tokens_seen'] as const).map((a) => {
        const input = el('input', { type: 'radio', name: 'curve-axis', value: a, checked: a === this.axis });
        input.addEventListener('change', () => {
          this.axis = a;
          this.draw();
        });
        return el('label', {}, input, a === 'step' ? ' step' : ' tokens seen');
      }),
    );
    this.chartBox = el('div', { id: 'chart-curves', className: 'chart' });
    this.root = el(
      'div',
      {},
      el('div', { className: 'controls' }, el('label', {}, 'quantity ', quantity), ' aligned by ', axisToggle),
      this.chartBox,
    );
    this.resize.observe(this.chartBox);
  }

  draw(): void {
    this.chart?.destroy();
    this.chart = null;
    const { x, ys } = alignedCurves(this.report, this.kind, this.axis);
    if (!x.length) {
      this.chartBox.replaceChildren(
        el(
          'p',
          { className: 'note' },
          `No ${CURVE_LABELS[this.kind]} logged${this.axis === 'tokens_seen' ? ' with tokens seen' : ''}.`,
        ),
      );
      return;
    }
    this.chartBox.replaceChildren();
    const fg = themeColor('--vscode-foreground', '#ccc');
    const grid = themeColor('--vscode-editorWidget-border', 'rgba(128,128,128,0.25)');
    const font = `11px ${themeColor('--vscode-font-family', 'sans-serif')}`;
    const axis = { stroke: fg, font, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const eval_ = this.kind !== 'loss';
    const opts: uPlot.Options = {
      ...this.size(),
      scales: { x: { time: false } },
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [
        { label: this.axis === 'step' ? 'step' : 'tokens seen', value: (_u, v) => (v === null ? '–' : count(v)) },
        ...this.report.items.map((it, i) => ({
          label: it.label,
          stroke: this.colors[i],
          width: 1.5,
          spanGaps: true,
          points: { show: eval_, size: 5 },
          value: (_u: uPlot, v: number | null) =>
            v === null ? '–' : this.kind === 'accuracy' ? `${(100 * v).toFixed(2)}%` : sig3(v),
        })),
      ],
      axes: [
        { ...axis, values: (_u, vals) => vals.map((v) => count(v)) },
        { ...axis, values: (_u, vals) => vals.map((v) => sig3(v)) },
      ],
    };
    this.chart = new uPlot(opts, [x, ...ys] as uPlot.AlignedData, this.chartBox);
  }

  private size(): { width: number; height: number } {
    return { width: Math.max(320, this.chartBox.clientWidth || 640), height: 280 };
  }

  dispose(): void {
    this.resize.disconnect();
    this.chart?.destroy();
  }
}
