// Overlaid curves of the compared items (the dashboard's LineChart): one quantity at a time (train loss, eval loss,
// accuracy, perplexity, sft's token accuracy and exact match), aligned by optimizer step or by tokens seen (runs with different batch sizes or sequence
// lengths line up only by tokens).
import type { CompareReport } from '../../src/protocol/compare';
import { h } from '../shared/dom';
import { count, sig3 } from '../shared/format';
import { LineChart, type ChartSpec } from '../shared/line-chart';
import type { Theme } from '../shared/theme';
import {
  availableCurves,
  curveColumns,
  CURVE_LABELS,
  itemColors,
  PERCENT_CURVES,
  type Axis,
  type CurveKind,
} from './model';

const AXIS_LABELS: Record<Axis, string> = { step: 'step', tokens_seen: 'tokens seen' };

export class CurvesView {
  readonly root: HTMLElement;
  private readonly chartBox = h('div', { id: 'chart-curves', class: 'chart' });
  private readonly note = h('p', { class: 'note' });
  private readonly chart: LineChart;
  private kind: CurveKind;
  private axis: Axis = 'step';

  constructor(
    private readonly report: CompareReport,
    private theme: Theme,
  ) {
    const kinds = availableCurves(report);
    this.kind = kinds[0] ?? 'loss';
    const quantity = h(
      'select',
      { id: 'curve-kind', title: 'quantity' },
      kinds.map((k) => h('option', { text: CURVE_LABELS[k], attrs: { value: k } })),
    );
    quantity.addEventListener('change', () => {
      this.kind = quantity.value as CurveKind;
      this.draw();
    });
    const axisToggle = h(
      'span',
      { class: 'segmented', id: 'curve-axis', title: 'aligned by' },
      (['step', 'tokens_seen'] as const).map((a) => {
        const input = h('input', { attrs: { type: 'radio', name: 'curve-axis', value: a } });
        input.checked = a === this.axis;
        input.addEventListener('change', () => {
          this.axis = a;
          this.chart.resetZoom(); // the zoomed range was in the other axis's units
          this.draw();
        });
        return h('label', {}, [input, ` ${AXIS_LABELS[a]}`]);
      }),
    );
    this.note.hidden = true;
    this.root = h('div', {}, [
      h('div', { class: 'controls' }, [h('label', {}, ['quantity ', quantity]), ' aligned by ', axisToggle]),
      this.note,
      this.chartBox,
    ]);
    this.chart = new LineChart(this.chartBox, this.spec(), theme);
  }

  /** The chart for the current quantity and axis (uPlot fixes series options at creation: respec rebuilds it). */
  draw(): void {
    const data = curveColumns(this.report, this.kind, this.axis);
    const empty = data.n === 0;
    this.note.hidden = !empty;
    this.chartBox.hidden = empty;
    this.note.textContent = empty
      ? `No ${CURVE_LABELS[this.kind]} logged${this.axis === 'tokens_seen' ? ' with tokens seen' : ''}.`
      : '';
    this.chart.setData(data);
    this.chart.respec(this.spec(), this.theme);
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.draw();
  }

  private spec(): ChartSpec {
    const colors = itemColors(this.theme.series, this.report.items.length);
    return {
      height: 280,
      x: { label: AXIS_LABELS[this.axis], format: count },
      format: PERCENT_CURVES.includes(this.kind) ? (v) => `${(100 * v).toFixed(2)}%` : sig3,
      series: this.report.items.map((it, i) => ({ label: it.label, color: colors[i], points: this.kind !== 'loss' })),
    };
  }

  dispose(): void {
    this.chart.destroy();
  }
}
