// The tune dashboard's data shaping, DOM-free (tested in test/webview/tune-model.test.ts): from the tune's summary
// (src/protocol/tune.ts, folded from tune.jsonl by the host) the lr_A × λ heatmaps (one per optimizer) of the rung
// results, the bracket (which trials continued at each rung), the header's lines, and the trials' curves aligned on
// one step axis for the line chart.
import {
  fmtSetting,
  tuneTieText,
  usesRatio,
  type TrialSummary,
  type TuneMetric,
  type TuneSummary,
} from '../../src/protocol/tune';
import type { TrialCurves } from '../../src/protocol/tune-dashboard';

/** Which rung a heatmap shows: each trial's latest result, or one rung's. */
export type RungChoice = 'latest' | number;

export interface HeatCell {
  trial: string | null; // null: the grid has no trial there
  value: number | null; // the judged figure shown
  rung: number | null; // the rung of the result shown (0-based)
  state: TrialSummary['state'] | 'none';
  diverged: boolean;
  winner: boolean;
  shade: number | null; // 0…1 on the colour ramp, 1 the best shown; null: no colour (no figure, or diverged)
  text: string; // the figure, or what stands in for it: diverged, … (training), · (waiting)
  mark: string; // ★ winner, → continues, ✗ out, rung 2
  title: string; // the tooltip: settings and every rung's figure
}

export interface HeatGrid {
  optimizer: string;
  rows: string[]; // learning rates (lr_A)
  cols: string[]; // ratios (λ); one column, "no λ", for an optimizer without one (riemannian, lorafa)
  cells: HeatCell[][]; // [lr][λ]
}

const metricOf = (s: TuneSummary): TuneMetric => s.start?.metric ?? { name: 'loss', goal: 'min', tie_break: null };

/** A judged figure: accuracy in %, a loss with 3 decimals. */
export function fmtJudged(x: number | null | undefined, metric: TuneMetric): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  return metric.name === 'accuracy' ? `${(100 * x).toFixed(1)}%` : x.toFixed(3);
}

/** The rung of the result a cell shows: the chosen one, or the trial's latest. */
function shownRung(t: TrialSummary, choice: RungChoice): number | null {
  if (choice !== 'latest') return t.results[choice] ? choice : null;
  for (let k = t.results.length - 1; k >= 0; k--) if (t.results[k]) return k;
  return null;
}

/**
 * One heatmap per optimizer: rows lr_A, columns λ (an optimizer without λ has one column: its trials ran at λ 1);
 * shades share one scale over every shown figure.
 */
export function heatGrids(s: TuneSummary, choice: RungChoice = 'latest'): HeatGrid[] {
  const start = s.start;
  if (!start) return [];
  const metric = metricOf(s);
  const { learning_rate: lrs, loraplus_lr_ratio: ratios, optimizer: optimizers } = start.axes;
  const find = (lr: number, ratio: number, opt: string) =>
    s.trials.find(
      (t) => t.settings.learning_rate === lr && t.settings.loraplus_lr_ratio === ratio && t.settings.optimizer === opt,
    );
  const grids = optimizers.map((optimizer) => {
    const own = usesRatio(optimizer) ? ratios : [1];
    return {
      optimizer,
      rows: lrs.map(fmtSetting),
      cols: usesRatio(optimizer) ? ratios.map(fmtSetting) : ['no λ'],
      cells: lrs.map((lr) => own.map((ratio) => cell(s, find(lr, ratio, optimizer), choice, metric))),
    };
  });
  shade(
    grids.flatMap((g) => g.cells.flat()),
    metric,
  );
  return grids;
}

function cell(s: TuneSummary, t: TrialSummary | undefined, choice: RungChoice, metric: TuneMetric): HeatCell {
  if (!t) {
    const none = { trial: null, value: null, rung: null, state: 'none' as const, diverged: false, winner: false };
    return { ...none, shade: null, text: '', mark: '', title: 'not in the grid' };
  }
  const rung = shownRung(t, choice);
  const r = rung === null ? null : t.results[rung];
  const diverged = Boolean(r?.diverged) || (choice === 'latest' && t.state === 'diverged');
  const value = r && !r.diverged && r.metric !== null && Number.isFinite(r.metric) ? r.metric : null;
  const winner = s.winner?.trial === t.trial;
  const text = diverged ? 'diverged' : value !== null ? fmtJudged(value, metric) : pendingText(t);
  return {
    trial: t.trial,
    value,
    rung,
    state: t.state,
    diverged,
    winner,
    shade: null,
    text,
    mark: mark(t, rung, winner, choice),
    title: cellTitle(s, t, metric),
  };
}

function pendingText(t: TrialSummary): string {
  if (t.state === 'training') return '…';
  if (t.state === 'waiting') return '·';
  return t.state === 'stopped' ? 'stopped' : '–';
}

function mark(t: TrialSummary, rung: number | null, winner: boolean, choice: RungChoice): string {
  if (choice !== 'latest') return winner ? '★' : '';
  const at = rung === null ? '' : `rung ${rung + 1}`;
  if (winner) return `${at} ★`;
  if (t.state === 'continues') return `${at} →`;
  if (t.state === 'eliminated') return `${at} ✗`;
  return at;
}

/** Colours by the judged figure: 1 is the best shown (highest accuracy, lowest loss). */
function shade(cells: HeatCell[], metric: TuneMetric): void {
  const values = cells.flatMap((c) => (c.value !== null ? [c.value] : []));
  if (!values.length) return;
  const [lo, hi] = [Math.min(...values), Math.max(...values)];
  for (const c of cells) {
    if (c.value === null) continue;
    const t = hi > lo ? (c.value - lo) / (hi - lo) : 1;
    c.shade = metric.goal === 'max' ? t : 1 - t;
  }
}

function cellTitle(s: TuneSummary, t: TrialSummary, metric: TuneMetric): string {
  const { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer } = t.settings;
  const lines = [t.trial, `lr_A ${fmtSetting(lr)} · ${rates(lr, ratio, optimizer)} · ${optimizer}`];
  t.results.forEach((r, k) => {
    if (!r) return;
    const steps = s.start?.rungs[k];
    const figure = r.diverged ? `diverged: ${r.diverged}` : `${metric.name} ${fmtJudged(r.metric, metric)}`;
    const loss = !r.diverged && r.loss !== null && metric.name !== 'loss' ? ` · loss ${r.loss.toFixed(3)}` : '';
    lines.push(`rung ${k + 1} (step ${steps ?? r.step}): ${figure}${loss}`);
  });
  lines.push(`${t.state}${t.reason ? `: ${t.reason}` : ''}`);
  return lines.join('\n');
}

export const lrB = (lr: number, ratio: number) => fmtSetting(Number((lr * ratio).toPrecision(4)));

/** "λ 16 (lr_B 8e-3)", or "no λ" for an optimizer without one. */
const rates = (lr: number, ratio: number, optimizer: string) =>
  usesRatio(optimizer) ? `λ ${fmtSetting(ratio)} (lr_B ${lrB(lr, ratio)})` : 'no λ';

// ---- The bracket --------------------------------------------------------------------------------------------------

export type BracketMark = 'winner' | 'continued' | 'stopped' | 'diverged' | 'finished' | 'judged' | 'training';

export interface BracketEntry {
  trial: string;
  value: number | null;
  text: string; // "lr5e-4-ratio1 65.6%"
  mark: BracketMark;
}

export interface BracketColumn {
  rung: number; // 0-based
  steps: number;
  title: string; // "rung 1 · 1 step · 6 trials → 2 continue"
  entries: BracketEntry[]; // best first; diverged and still training last
}

/** Each rung's trials, best first, and which continued (the rung's promote event) or won. */
export function bracket(s: TuneSummary): BracketColumn[] {
  const start = s.start;
  if (!start) return [];
  const metric = metricOf(s);
  return start.rungs.flatMap((steps, rung) => {
    const ran = s.trials.filter((t) => t.results[rung] || (rung === s.rung && t.state === 'training'));
    if (!ran.length) return [];
    const p = s.promotions.find((x) => x.rung === rung);
    const entries = ran.map((t): BracketEntry => {
      const r = t.results[rung];
      const value = r && !r.diverged ? r.metric : null;
      return {
        trial: t.trial,
        value,
        text: `${t.trial} ${r ? (r.diverged ? 'diverged' : fmtJudged(value, metric)) : '…'}`,
        mark: entryMark(s, t, rung),
      };
    });
    const order = (e: BracketEntry) => (e.mark === 'training' ? 2 : e.value === null ? 1 : 0);
    const sign = metric.goal === 'max' ? -1 : 1;
    entries.sort((a, b) => order(a) - order(b) || sign * ((a.value ?? 0) - (b.value ?? 0)));
    const how = p ? ` → ${p.continue.length} continue` : s.winner && rung === start.rungs.length - 1 ? ' → winner' : '';
    const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
    const title = `rung ${rung + 1} · ${plural(steps, 'step')} · ${plural(ran.length, 'trial')}${how}`;
    return [{ rung, steps, title, entries }];
  });
}

function entryMark(s: TuneSummary, t: TrialSummary, rung: number): BracketMark {
  const r = t.results[rung];
  if (!r) return 'training';
  if (r.diverged) return 'diverged';
  const p = s.promotions.find((x) => x.rung === rung);
  if (p?.continue.includes(t.trial)) return 'continued';
  if (p?.stopped.includes(t.trial)) return 'stopped';
  if (s.winner?.trial === t.trial) return 'winner';
  return t.state === 'finished' ? 'finished' : t.state === 'stopped' || t.state === 'eliminated' ? 'stopped' : 'judged';
}

// ---- The header -----------------------------------------------------------------------------------------------------

/** What the header says about the tune: its setup and how far it got. */
export function headerLines(s: TuneSummary): string[] {
  const start = s.start;
  if (!start) return ['Waiting for the tune to start…'];
  const metric = start.metric;
  const subset = start.eval.examples !== null ? ` on ${start.eval.examples} eval rows` : '';
  const tie = tuneTieText(metric);
  const share = s.full_grid_steps ? ` (${Math.round((100 * s.spent_steps) / s.full_grid_steps)}%)` : '';
  return [
    `${start.task} · ${start.trials.length} trials · judged by ${metric.name}${subset}${tie}`,
    `rungs ${start.rungs.join(' → ')} steps · the best 1/${start.eta} continue · seed ${start.seed}`,
    `rung ${s.rung + 1} of ${start.rungs.length} · ` +
      `${s.spent_steps} of the full grid's ${s.full_grid_steps} steps${share}`,
  ];
}

/** The winner in a line: settings, then its figures on the whole eval set. */
export function winnerText(s: TuneSummary): string | null {
  const w = s.winner;
  if (!w) return null;
  const { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer } = w.settings;
  const e = w.eval;
  const figure =
    e.accuracy !== undefined
      ? `accuracy ${(100 * e.accuracy).toFixed(1)}%`
      : e.perplexity !== undefined
        ? `perplexity ${e.perplexity.toFixed(2)}`
        : `eval loss ${e.loss.toFixed(4)}`;
  return (
    `${w.trial}: lr_A ${fmtSetting(lr)} · ${rates(lr, ratio, optimizer)} · ${optimizer} · ` +
    `${figure} on ${e.examples} eval examples`
  );
}

// ---- Curves ---------------------------------------------------------------------------------------------------------

type Points = Omit<TrialCurves, 'trial' | 'reset'>;

/** Every trial's points as the host sends them: a reset replaces a trial's, anything else appends. */
export class CurveStore {
  private readonly byTrial = new Map<string, Points>();
  version = 0;

  add(c: TrialCurves): void {
    const have = this.byTrial.get(c.trial);
    const { trial: _t, reset: _r, ...points } = c;
    if (c.reset || !have) this.byTrial.set(c.trial, structuredClone(points));
    else for (const k of Object.keys(points) as (keyof Points)[]) (have[k] as unknown[]).push(...points[k]);
    this.version++;
  }

  clear(): void {
    this.byTrial.clear();
    this.version++;
  }

  get(trial: string): Points | undefined {
    return this.byTrial.get(trial);
  }
}

export type CurveKind = 'loss' | 'eval';

/** The trials (grid order) with points of this kind. */
export function curveTrials(s: TuneSummary, store: CurveStore, kind: CurveKind): string[] {
  return s.trials
    .map((t) => t.trial)
    .filter((id) => {
      const p = store.get(id);
      return p !== undefined && (kind === 'loss' ? p.steps.length : p.evalSteps.length) > 0;
    });
}

/** The chart's columns: the sorted union of the trials' steps, and per trial its value there (NaN: none). */
export function curveColumns(
  store: CurveStore,
  trials: string[],
  kind: CurveKind,
  metric: TuneMetric,
): { x: Float64Array; n: number; ys: Float64Array[] } {
  const series = trials.map((id) => {
    const p = store.get(id)!;
    if (kind === 'loss') return new Map(p.steps.map((s, i) => [s, p.loss[i]]));
    const ys = metric.name === 'accuracy' ? p.evalAccuracy : p.evalLoss;
    return new Map(p.evalSteps.map((s, i) => [s, ys[i]]));
  });
  const x = [...new Set(series.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  const ys = series.map((m) => Float64Array.from(x, (v) => m.get(v) ?? NaN));
  return { x: Float64Array.from(x), n: x.length, ys };
}
