// The trials' curves overlaid (the shared LineChart): the training loss and the eval figure the tune judges (accuracy
// or loss on its eval subset), one line per trial. Once there is a winner its line is drawn thick and the others
// fade, so the winning run stands out from the ones successive halving stopped.
import type { TuneSummary } from '../../src/protocol/tune';
import { h } from '../shared/dom';
import { sig3 } from '../shared/format';
import { LineChart, type ChartSpec } from '../shared/line-chart';
import { withAlpha, type Theme } from '../shared/theme';
import { curveColumns, curveTrials, type CurveKind, type CurveStore } from './model';

export class CurvesView {
  readonly el: HTMLElement;
  private readonly charts: Record<CurveKind, { wrap: HTMLElement; title: HTMLElement; chart: LineChart; key: string }>;
  private readonly empty = h('p', { class: 'muted', text: 'No trial has logged a step yet.' });

  constructor(private theme: Theme) {
    const make = (id: string, heading: string) => {
      const [title, box] = [h('h3', { text: heading }), h('div', { id, class: 'chart' })];
      const wrap = h('div', {}, [title, box]);
      return { wrap, title, chart: new LineChart(box, { series: [] }, theme), key: '' };
    };
    this.charts = { loss: make('chart-tune-loss', 'training loss'), eval: make('chart-tune-eval', 'eval') };
    this.el = h('div', { class: 'curves' }, [this.empty, this.charts.loss.wrap, this.charts.eval.wrap]);
  }

  draw(s: TuneSummary, store: CurveStore): void {
    const metric = s.start?.metric ?? { name: 'loss' as const, goal: 'min' as const, tie_break: null };
    this.charts.eval.title.textContent = `eval ${metric.name} on the tune's eval subset (what rungs are judged by)`;
    let shown = 0;
    for (const kind of ['loss', 'eval'] as const) {
      const c = this.charts[kind];
      const trials = curveTrials(s, store, kind);
      c.wrap.hidden = trials.length === 0;
      shown += trials.length;
      const percent = kind === 'eval' && metric.name === 'accuracy';
      // uPlot fixes its series at creation: rebuild only when the trials, the winner or the theme change.
      const key = `${trials.join()}|${s.winner?.trial ?? ''}|${this.theme.key}`;
      if (key !== c.key) {
        c.key = key;
        c.chart.respec(this.spec(trials, s.winner?.trial ?? null, kind === 'eval', percent), this.theme);
      }
      c.chart.setData(curveColumns(store, trials, kind, metric));
    }
    this.empty.hidden = shown > 0;
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
  }

  private spec(trials: string[], winner: string | null, points: boolean, percent: boolean): ChartSpec {
    const palette = this.theme.series;
    return {
      height: 220,
      format: percent ? (v) => `${(100 * v).toFixed(1)}%` : sig3,
      series: trials.map((trial, i) => {
        const color = palette[i % palette.length];
        const faded = winner !== null && trial !== winner;
        return {
          label: trial === winner ? `★ ${trial}` : trial,
          color: faded ? withAlpha(color, 0.35) : color,
          width: trial === winner ? 3 : 1.25,
          points,
        };
      }),
    };
  }

  dispose(): void {
    this.charts.loss.chart.destroy();
    this.charts.eval.chart.destroy();
  }
}
