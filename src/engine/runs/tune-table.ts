// A tune as text: the lr_A × λ grid with each trial's result at every rung it reached, which trials continued at
// each rung, the winner, and the steps spent against the full grid's. `loraplus tune` prints it; it is what the tune
// dashboard shows, from the same TuneSummary (src/protocol/tune.ts).
import {
  fmtSetting,
  tuneTieText,
  type RungResultEvent,
  type TrialSummary,
  type TuneMetric,
  type TuneSummary,
  type TuneWinner,
  usesRatio,
} from '../../protocol/tune';

const n = (x: number) => x.toLocaleString('en-US');

/** A judged figure: accuracy in %, a loss with 3 decimals. */
export function fmtMetric(x: number | null | undefined, metric: TuneMetric): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return 'NaN';
  return metric.name === 'accuracy' ? (100 * x).toFixed(1) : x.toFixed(3);
}

/** One grid cell: the figure at each rung reached, then how the trial ended (★ winner, ✗ outranked, …). */
export function cellText(t: TrialSummary, metric: TuneMetric): string {
  const figures = t.results
    .filter((r): r is RungResultEvent => Boolean(r))
    .filter((r) => r.metric !== null)
    .map((r) => fmtMetric(r.metric, metric));
  const mark = {
    winner: '★',
    finished: '',
    eliminated: '✗',
    diverged: `diverged@${t.step}`,
    stopped: 'stopped',
    waiting: '·',
    training: '…',
    continues: '→',
  }[t.state];
  return [...figures, mark].filter(Boolean).join(' ');
}

/** The whole table, as lines. */
export function tuneTable(s: TuneSummary): string[] {
  const start = s.start;
  if (!start) return ['(no tune_start in tune.jsonl yet)'];
  const { metric } = start;
  const out: string[] = [];
  const judged = metric.name === 'accuracy' ? 'accuracy %' : 'eval loss';
  const subset = start.eval.examples !== null ? ` on up to ${n(start.eval.examples)} eval rows` : '';
  const tie = tuneTieText(metric);
  out.push(`tune ${start.tune_name} · ${start.task} · ${s.status} · ${judged}${subset}${tie}`);
  out.push(
    `rungs ${start.rungs.map(n).join(' → ')} steps · the best 1/${start.eta} continue, the best one to the end · seed ${start.seed} · ` +
      `cells: ${judged} at each rung reached; ★ winner, ✗ stopped at that rung, → continues`,
  );
  for (const optimizer of start.axes.optimizer) {
    out.push('');
    if (start.axes.optimizer.length > 1 || optimizer !== 'adamw') out.push(`optimizer ${optimizer}`);
    out.push(...grid(s, optimizer, metric));
  }
  out.push('');
  out.push(...rungLines(s, metric));
  if (s.winner) out.push(winnerLine(s.winner, metric));
  const share = s.full_grid_steps ? ` (${((100 * s.spent_steps) / s.full_grid_steps).toFixed(0)}%)` : '';
  out.push(`spent   ${n(s.spent_steps)} of the full grid's ${n(s.full_grid_steps)} steps${share}`);
  if (s.error) out.push(`error   ${s.error.message}`);
  return out;
}

function grid(s: TuneSummary, optimizer: string, metric: TuneMetric): string[] {
  const { learning_rate: lrs } = s.start!.axes;
  // riemannian, lorafa: one column, their trials recorded at λ 1 (gridTrials)
  const ratios = usesRatio(optimizer) ? s.start!.axes.loraplus_lr_ratio : [1];
  const byKey = new Map(s.trials.map((t) => [key(t.settings.learning_rate, t.settings.loraplus_lr_ratio, t), t]));
  const rows = lrs.map((lr) => [
    fmtSetting(lr),
    ...ratios.map((ratio) => {
      const t = byKey.get(key(lr, ratio, { settings: { optimizer } }));
      return t ? cellText(t, metric) : '';
    }),
  ]);
  const header = usesRatio(optimizer) ? ['lr_A \\ λ', ...ratios.map(fmtSetting)] : ['lr_A', 'no λ'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('   ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}

const key = (lr: number, ratio: number, t: { settings: { optimizer: string } }) =>
  `${lr}|${ratio}|${t.settings.optimizer}`;

function rungLines(s: TuneSummary, metric: TuneMetric): string[] {
  const start = s.start!;
  return start.rungs.flatMap((steps, rung) => {
    const ran = s.trials.filter((t) => t.results[rung]);
    if (!ran.length) return [];
    const p = s.promotions.find((x) => x.rung === rung);
    const diverged = ran.filter((t) => t.results[rung]!.diverged).length;
    const head = `rung ${rung + 1} · ${n(steps)} steps · ${ran.length} trial${ran.length === 1 ? '' : 's'}`;
    const div = diverged ? ` (${diverged} diverged)` : '';
    const figure = (id: string) => {
      const r = s.trials.find((t) => t.trial === id)?.results[rung];
      return `${id} (${fmtMetric(r?.metric, metric)})`;
    };
    if (p) return [`${head}${div} → ${p.continue.length} continue: ${p.continue.map(figure).join(', ')}`];
    return [`${head}${div}${s.winner ? ` → winner ${figure(s.winner.trial)}` : ''}`];
  });
}

function winnerLine(w: TuneWinner, metric: TuneMetric): string {
  const { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer } = w.settings;
  const e = w.eval;
  const figure =
    e.accuracy !== undefined
      ? `accuracy ${(100 * e.accuracy).toFixed(1)}% (loss ${e.loss.toFixed(3)})`
      : e.perplexity !== undefined
        ? `perplexity ${e.perplexity.toFixed(2)} (loss ${e.loss.toFixed(3)})`
        : `loss ${e.loss.toFixed(3)}`;
  const lrB = fmtSetting(Number((lr * ratio).toPrecision(4)));
  const rates = usesRatio(optimizer) ? `λ ${fmtSetting(ratio)} (lr_B ${lrB})` : 'no λ (lr_B = lr_A)';
  return (
    `winner  ${w.trial}: lr_A ${fmtSetting(lr)} · ${rates} · ${optimizer} · ` +
    `${figure} on ${n(e.examples)} eval examples (${fmtMetric(w.metric, metric)} on the subset) · ${w.run_dir}`
  );
}
