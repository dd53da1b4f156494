// Overlaid curves of the compared items (the dashboard's LineChart): one quantity at a time (train loss, eval loss,
// accuracy, perplexity, sft's token accuracy and exact match), aligned by optimizer step or by tokens seen (runs with different batch sizes or sequence
// lengths line up only by tokens). A smoothing slider (TensorBoard's EMA, smoothing.ts) draws each item's smoothed
// curve over its raw line, which stays faint.
import type { CompareReport } from '../../src/protocol/compare';
import { h } from '../shared/dom';
import { count, sig3 } from '../shared/format';
import { LineChart, type ChartSpec } from '../shared/line-chart';
import { withAlpha, type Theme } from '../shared/theme';
import { DEFAULT_SMOOTHING, withSmoothing } from './smoothing';
import {
  availableCurves,
  curveColumns,
  CURVE_LABELS,
  itemColors,
  itemName,
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
  private smoothing = DEFAULT_SMOOTHING;

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
      h('div', { class: 'controls' }, [
        h('label', {}, ['quantity ', quantity]),
        ' aligned by ',
        axisToggle,
        this.smoothingSlider(),
      ]),
      this.note,
      this.chartBox,
    ]);
    this.chart = new LineChart(this.chartBox, this.spec(), theme);
  }

  /** The chart for the current quantity and axis (uPlot fixes series options at creation: respec rebuilds it). */
  draw(): void {
    const data = withSmoothing(curveColumns(this.report, this.kind, this.axis), this.smoothing);
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
      series: this.report.items.flatMap((it, i) => {
        const [label, color, points] = [itemName(it), colors[i], this.kind !== 'loss'];
        if (!(this.smoothing > 0)) return [{ label, color, points }];
        const raw = { label: `${label} (raw)`, color: withAlpha(color, 0.3), width: 1, points };
        return [raw, { label, color, width: 2 }];
      }),
    };
  }

  /** "smoothing 0.40": 0 draws the raw curves alone. */
  private smoothingSlider(): HTMLElement {
    const value = this.smoothing.toFixed(2);
    const attrs = { type: 'range', min: '0', max: '0.99', step: '0.01', value, 'aria-label': 'smoothing (EMA)' };
    const slider = h('input', { id: 'curve-smoothing', attrs });
    const shown = h('span', { class: 'note', text: value });
    slider.addEventListener('input', () => {
      this.smoothing = Number(slider.value);
      shown.textContent = this.smoothing.toFixed(2);
      this.draw();
    });
    return h('label', { class: 'smoothing', title: 'exponential moving average, as TensorBoard smooths' }, [
      ' smoothing ',
      slider,
      ' ',
      shown,
    ]);
  }

  dispose(): void {
    this.chart.destroy();
  }
}
