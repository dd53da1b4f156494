// The run explorer's tunes as data: a tune folder's group item (name, status, winner, "3 of 7 trials, rung 2/3"), the
// order of its trials (best first) and what each trial's run item adds (its outcome in the tune), and the progress
// line a tune started from VS Code shows. No `vscode` import: run-tree.ts and tune-command.ts turn these into UI,
// and the tests check them on summaries of real tunes.
import * as path from 'node:path';
import {
  TRIALS_DIR,
  fmtSetting,
  usesRatio,
  type TrialSummary,
  type TuneStartEvent,
  type TuneSummary,
} from '../../protocol/tune';
import { CONTEXT } from '../command-table';
import { fmtEvalHeadline, statusIcon, type ItemData } from './tree-model';

export interface TuneItemData extends ItemData {
  collapsible: boolean;
}

/** The tune folder a run folder belongs to when it is a trial (`<tune>/trials/<id>`), else null. */
export function tuneDirOfTrial(runDir: string): string | null {
  const parent = path.dirname(runDir);
  return path.basename(parent) === TRIALS_DIR ? path.dirname(parent) : null;
}

/** "lr_A 5e-4 · λ 16"; an optimizer without λ (riemannian, lorafa) by its name instead: "lr_A 5e-4 · riemannian". */
export function settingsText(t: Pick<TrialSummary, 'settings'>): string {
  const { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer } = t.settings;
  return `lr_A ${fmtSetting(lr)} · ${optimizer && !usesRatio(optimizer) ? optimizer : `λ ${fmtSetting(ratio)}`}`;
}

/** Where the tune stands: the rung now training (1-based), how many rungs, and how many of its trials are judged. */
export function rungProgress(s: TuneSummary): { rung: number; rungs: number; judged: number; inRung: number } {
  const inRung = s.trials.filter((t) => t.results[s.rung] || t.state === 'training');
  const judged = inRung.filter((t) => t.results[s.rung]).length;
  return { rung: s.rung + 1, rungs: s.start?.rungs.length ?? 0, judged, inRung: inRung.length };
}

/**
 * The group item of a tune. Its description starts with the status word, as a run's does: "running · 3 of 7 trials,
 * rung 2/3", "finished · winner lr_A 5e-4 · λ 1 · acc 55.0%", "stopped · rung 2/3 · 16 of 54 steps".
 */
export function tuneItem(dir: string, s: TuneSummary, where?: string): TuneItemData {
  const name = s.start?.tune_name ?? path.basename(dir);
  const p = rungProgress(s);
  const figures: string[] = [s.status];
  if (s.winner) figures.push(`winner ${settingsText(s.winner)}`, fmtEvalHeadline(s.winner.eval));
  else if (s.status === 'running' && s.start)
    figures.push(`${p.judged} of ${p.inRung} trials, rung ${p.rung}/${p.rungs}`);
  else if (s.start) figures.push(`rung ${p.rung}/${p.rungs}`, `${s.spent_steps} of ${s.full_grid_steps} steps`);
  if (where) figures.push(where);
  return {
    id: `tune:${dir}`,
    label: name,
    description: figures.join(' · '),
    tooltip: tuneTooltip(dir, name, s),
    icon: statusIcon(s.status),
    contextValue: s.status === 'running' ? CONTEXT.tuneRunning : CONTEXT.tuneDone,
    collapsible: s.trials.some((t) => t.run_dir !== null),
  };
}

function tuneTooltip(dir: string, name: string, s: TuneSummary): string {
  const st = s.start;
  const lines = [`**tune ${md(name)}**: ${s.status}`, ''];
  if (st) {
    const axes = st.axes;
    lines.push(
      `- model: ${md(path.basename(st.model))} (${md(st.task)})`,
      `- grid: lr_A ${axes.learning_rate.map(fmtSetting).join(', ')} × ` +
        `λ ${axes.loraplus_lr_ratio.map(fmtSetting).join(', ')}` +
        (axes.optimizer.length > 1 ? ` × ${axes.optimizer.map(md).join(', ')}` : '') +
        ` (${st.trials.length} trials)`,
      `- rungs: ${st.rungs.join(' → ')} steps, the best 1/${st.eta} continue; judged by ${st.metric.name}`,
    );
  }
  const share = s.full_grid_steps ? ` (${Math.round((100 * s.spent_steps) / s.full_grid_steps)}%)` : '';
  lines.push(`- steps: ${s.spent_steps} of the full grid's ${s.full_grid_steps}${share}`);
  if (s.winner)
    lines.push(`- winner: ${md(s.winner.trial)}, ${settingsText(s.winner)}, ${fmtEvalHeadline(s.winner.eval)}`);
  if (s.error) lines.push('', `**error:** ${md(s.error.message)}`);
  lines.push('', `\`${dir.replace(/`/g, "'")}\``);
  return lines.join('\n');
}

// ---- Trials -------------------------------------------------------------------------------------------------------

/** How far a trial got: the last rung it has a result for (-1: none yet). */
function lastRung(t: TrialSummary): number {
  for (let k = t.results.length - 1; k >= 0; k--) if (t.results[k]) return k;
  return -1;
}

/** Best first: the winner, the deepest rung reached, the figure there (by the metric's goal); diverged last. */
export function trialOrder(s: TuneSummary): TrialSummary[] {
  const goal = s.start?.metric.goal ?? 'min';
  const figure = (t: TrialSummary) => {
    const r = t.results[lastRung(t)];
    const v = r && !r.diverged ? r.metric : null;
    return v === null || !Number.isFinite(v) ? -Infinity : goal === 'max' ? v : -v;
  };
  const rank = (t: TrialSummary) => [
    t.state === 'winner' ? 1 : 0,
    t.state === 'diverged' ? 0 : 1,
    lastRung(t),
    figure(t),
  ];
  const index = new Map(s.trials.map((t, i) => [t.trial, i]));
  return [...s.trials].sort((a, b) => {
    const [ra, rb] = [rank(a), rank(b)];
    for (let i = 0; i < ra.length; i++) if (ra[i] !== rb[i]) return rb[i] - ra[i];
    return index.get(a.trial)! - index.get(b.trial)!;
  });
}

/** What a trial's run item adds to its description: how it stands in the tune. */
export function trialOutcome(t: TrialSummary): string {
  const at = lastRung(t) + 1;
  switch (t.state) {
    case 'winner':
      return '★ winner';
    case 'eliminated':
      return `out after rung ${at}`;
    case 'diverged':
      return 'diverged';
    case 'continues':
      return `continues to rung ${at + 1}`;
    case 'finished':
      return 'trained to the budget';
    default:
      return t.state; // waiting, training, stopped
  }
}

/** The trial's lines for its run item's tooltip. */
export function trialTooltip(t: TrialSummary): string {
  return `\n\n**trial** ${settingsText(t)}: ${trialOutcome(t)}${t.reason ? ` (${md(t.reason)})` : ''}`;
}

// ---- Progress -----------------------------------------------------------------------------------------------------

/**
 * The steps successive halving will train if nothing diverges: every trial to rung 1, the best 1/η on, and so on;
 * the last rung is the winner's alone (as the engine promotes).
 */
export function plannedSteps(start: Pick<TuneStartEvent, 'trials' | 'rungs' | 'eta'>): number {
  let [n, from, total] = [start.trials.length, 0, 0];
  start.rungs.forEach((to, k) => {
    total += n * (to - from);
    const last = k === start.rungs.length - 2;
    [n, from] = [last ? 1 : Math.max(1, Math.ceil(n / start.eta)), to];
  });
  return total;
}

/** The progress notification's share done (0–100) and line: "rung 2/3 · 1 of 2 trials · 16 of ~22 steps". */
export function tuneProgress(s: TuneSummary): { percent: number; message: string } {
  if (!s.start) return { percent: 0, message: 'planning the tune' };
  const planned = plannedSteps(s.start);
  const p = rungProgress(s);
  const percent = Math.min(99, (100 * s.spent_steps) / Math.max(1, planned));
  const steps = `${s.spent_steps} of ~${planned} steps`;
  return { percent, message: `rung ${p.rung}/${p.rungs} · ${p.judged} of ${p.inRung} trials · ${steps}` };
}

/** Escapes Markdown in text from files (tune names, models, error messages). */
function md(text: string): string {
  return text.replace(/[\\`*_[\]<>|~]/g, '\\$&');
}
