// The run's line charts: train loss (raw and EMA-smoothed, log-scale toggle), eval loss with accuracy or perplexity,
// sft's answer scores (token accuracy, exact match) when the evals have them, the learning rate of each LoRA+ group,
// the gradient norm and tokens/s. Each draw hands the charts the model's full columns; LineChart decimates them. All
// share one StepSync: the same step domain (the baseline eval's step 0 to the last step), zoom and cursor. The eval
// chart sits full width under the train loss, so their step axes line up; perplexity is exp(loss), so it is read
// off the loss line on a right axis whose range is exp of the left one (one line, two labelled axes).
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import type { VscodeCheckbox } from '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import { h } from '../shared/dom';
import { count, sig3 } from '../shared/format';
import { LineChart, type ChartSpec } from '../shared/line-chart';
import { stepDomain, type StepSync } from '../shared/step-sync';
import { withAlpha, type Theme } from '../shared/theme';
import { lossWithEma, type RunModel } from './model';

const GROUP_ORDER = ['A', 'B', 'B_no_decay', 'embedding'];

export class Charts {
  readonly el: HTMLElement;
  private smoothing = 0.6;
  private logLoss = false;
  private scratch: Float64Array | undefined;
  private evalMetric: 'accuracy' | 'perplexity' | null = null;
  private groups: string[] = [];
  private readonly loss: LineChart;
  private readonly evals: LineChart;
  private readonly lr: LineChart;
  private readonly grad: LineChart;
  private readonly speed: LineChart;
  private readonly answers: LineChart; // sft: token accuracy and exact match of the eval answers
  private readonly answersCard: HTMLElement;
  private answerSeries = '';

  constructor(
    private theme: Theme,
    private readonly redraw: () => void,
    private readonly sync: StepSync,
  ) {
    const host = (id?: string) => h('div', { id, class: 'chart' });
    const [loss, evals, lr, grad, speed, answers] = [
      host('chart-loss'),
      host('chart-eval'),
      host('chart-lr'),
      host('chart-grad-norm'),
      host('chart-speed'),
      host('chart-answers'),
    ];

    const slider = h('input', {
      attrs: {
        type: 'range',
        min: '0',
        max: '0.99',
        step: '0.01',
        value: String(this.smoothing),
        'aria-label': 'EMA smoothing',
      },
    });
    const sliderValue = h('span', { class: 'muted', text: this.smoothing.toFixed(2) });
    slider.addEventListener('input', () => {
      this.smoothing = Number(slider.value);
      sliderValue.textContent = this.smoothing.toFixed(2);
      this.redraw();
    });
    const log = h('vscode-checkbox', { attrs: { label: 'Log scale' } }) as VscodeCheckbox;
    log.addEventListener('change', () => {
      this.logLoss = log.checked;
      this.loss.respec(this.lossSpec());
      this.redraw();
    });

    const card = (title: string, body: HTMLElement, controls: HTMLElement[] = [], wide = false) =>
      h('section', { class: wide ? 'card wide' : 'card' }, [
        h('div', { class: 'card-head' }, [h('h3', { text: title }), h('div', { class: 'controls' }, controls)]),
        body,
      ]);
    this.answersCard = card('Eval answers: token accuracy, exact match', answers);
    this.answersCard.hidden = true; // until an eval reports them (sft)
    this.el = h('div', { class: 'charts' }, [
      card('Train loss', loss, [h('label', { class: 'slider' }, ['Smoothing ', slider, sliderValue]), log], true),
      card('Eval', evals, [], true),
      this.answersCard,
      card('Learning rate per group', lr),
      card('Gradient norm (before clipping)', grad),
      card('Tokens / s', speed),
    ]);
    this.loss = new LineChart(loss, this.lossSpec(), theme, sync);
    this.evals = new LineChart(evals, this.evalSpec(), theme, sync);
    this.lr = new LineChart(lr, this.lrSpec(), theme, sync);
    this.grad = new LineChart(grad, this.gradSpec(), theme, sync);
    this.speed = new LineChart(speed, this.speedSpec(), theme, sync);
    this.answers = new LineChart(answers, this.answersSpec(), theme, sync);
  }

  draw(model: RunModel): void {
    const s = model.steps;
    const n = s.x.length;
    this.sync.domain = stepDomain(s.x.view(), model.evals.x.view());
    const { raw, ema } = lossWithEma(model, this.smoothing, this.scratch);
    this.scratch = new Float64Array(ema.buffer);
    this.loss.setData({ x: s.x.data, n, ys: [raw, ema] });

    const metric = model.evalMetric;
    if (metric !== this.evalMetric) {
      this.evalMetric = metric;
      this.evals.respec(this.evalSpec());
    }
    const v = model.evals;
    this.evals.setData({ x: v.x.data, n: v.x.length, ys: metric ? [v.loss.data, v[metric].data] : [v.loss.data] });
    this.drawAnswers(model);

    const groups = [...model.lr.keys()].sort((a, b) => rank(a) - rank(b));
    if (groups.join() !== this.groups.join()) {
      this.groups = groups;
      this.lr.respec(this.lrSpec());
    }
    this.lr.setData({ x: s.x.data, n, ys: groups.map((g) => model.lr.get(g)!.data) });
    this.grad.setData({ x: s.x.data, n, ys: [s.gradNorm.data] });
    this.speed.setData({ x: s.x.data, n, ys: [s.tokensPerS.data] });
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.loss.respec(this.lossSpec(), theme);
    this.evals.respec(this.evalSpec(), theme);
    this.lr.respec(this.lrSpec(), theme);
    this.grad.respec(this.gradSpec(), theme);
    this.speed.respec(this.speedSpec(), theme);
    this.answers.respec(this.answersSpec(), theme);
  }

  destroy(): void {
    for (const c of [this.loss, this.evals, this.lr, this.grad, this.speed, this.answers]) c.destroy();
  }

  /** Token accuracy and exact match, each only once some eval has it; the card stays hidden with neither. */
  private drawAnswers(model: RunModel): void {
    const v = model.evals;
    const present = ANSWER_SERIES.filter((s) => hasValue(v[s.key].data, v.x.length));
    const key = present.map((s) => s.key).join();
    this.answersCard.hidden = !present.length;
    if (key !== this.answerSeries) {
      this.answerSeries = key;
      this.answers.respec(this.answersSpec());
    }
    if (present.length) this.answers.setData({ x: v.x.data, n: v.x.length, ys: present.map((s) => v[s.key].data) });
  }

  private answersSpec(): ChartSpec {
    const present = ANSWER_SERIES.filter((s) => this.answerSeries.split(',').includes(s.key));
    return {
      format: percent,
      yLabel: 'share of answers',
      series: present.map((s) => ({ label: s.label, color: this.theme.series[s.color], points: true })),
    };
  }

  private gradSpec(): ChartSpec {
    return { yLabel: '‖∇‖', series: [{ label: '‖∇‖', color: this.theme.series[0] }] };
  }

  private speedSpec(): ChartSpec {
    return { yLabel: 'tokens/s', format: count, series: [{ label: 'tokens/s', color: this.theme.series[2] }] };
  }

  private lossSpec(): ChartSpec {
    const c = this.theme.series[0];
    return {
      log: this.logLoss,
      yLabel: 'train loss',
      height: 220,
      format: (v) => v.toFixed(4),
      series: [
        { label: 'loss', color: withAlpha(c, 0.35), width: 1 },
        { label: 'smoothed', color: c, width: 2 },
      ],
    };
  }

  private evalSpec(): ChartSpec {
    const t = this.theme;
    const loss = { label: 'eval loss', color: t.series[1], points: true, format: (v: number) => v.toFixed(4) };
    const base = { yLabel: 'eval loss', format: sig3, height: 200 };
    if (this.evalMetric === 'perplexity') {
      const ppl = { label: 'perplexity', color: t.series[1], scale: 'y2' as const, hidden: true };
      return { ...base, y2: { log: true, label: 'perplexity = exp(loss)', derive: Math.exp }, series: [loss, ppl] };
    }
    if (this.evalMetric === 'accuracy') {
      const acc = { label: 'accuracy', color: t.series[2], points: true, scale: 'y2' as const, format: percent };
      return { ...base, y2: { label: 'accuracy', ticks: percent }, series: [loss, acc] };
    }
    return { ...base, series: [loss] };
  }

  private lrSpec(): ChartSpec {
    // Log scale: B's rate is λ times A's, so on a linear axis A's line would lie flat on zero.
    return {
      log: true,
      yLabel: 'learning rate',
      format: sig3,
      series: this.groups.map((g, i) => ({
        label: g,
        color: this.theme.series[i % this.theme.series.length],
        dash: g === 'B_no_decay' ? [4, 3] : undefined,
      })),
    };
  }
}

const ANSWER_SERIES = [
  { key: 'tokenAccuracy', label: 'token accuracy', color: 3 },
  { key: 'exactMatch', label: 'exact match', color: 2 },
] as const;

const percent = (v: number) => (Number.isFinite(v) ? `${Number((100 * v).toPrecision(3))}%` : '–');

function hasValue(xs: ArrayLike<number>, n: number): boolean {
  for (let i = 0; i < n; i++) if (Number.isFinite(xs[i])) return true;
  return false;
}

function rank(group: string): number {
  const i = GROUP_ORDER.indexOf(group);
  return i < 0 ? GROUP_ORDER.length : i;
}
