// How far a run is, said one way everywhere (the CLI, the output channel, the status bar, the dashboard): the one
// duration format, what the run is doing now (starting, training, evaluating n/N) and an ETA that counts the evals
// still to come. RunTiming folds a run's events in order, as the views receive them; it keeps no events.
import type { EngineEvent } from './events';

/** Seconds → "12.3s", "3m 05s", "1h 02m" ("–" for nothing, "?" for a non-finite estimate). */
export function formatDuration(s: number | null | undefined): string {
  if (s === null || s === undefined) return '–';
  if (!Number.isFinite(s)) return '?';
  if (s < 0) return '–';
  if (s < 59.95) return `${s.toFixed(1)}s`;
  const m = Math.floor(Math.round(s) / 60);
  if (m < 60) return `${m}m ${String(Math.round(s) % 60).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h ${String(m % 60).padStart(2, '0')}m`;
}

export type RunPhase =
  | { kind: 'starting' }
  | { kind: 'training' }
  | { kind: 'evaluating'; step: number; done: number; total: number }
  | { kind: 'ended' };

/** "evaluating 32/64", "training", …: the phase in a few words. */
export function phaseText(p: RunPhase): string {
  if (p.kind === 'evaluating') return `evaluating ${p.done}/${p.total}`;
  return p.kind;
}

/**
 * A run's clock, folded from its events: the pace of this session's steps (a resumed run counts from its first step),
 * the seconds its evals took, and the eval under way. `eta()` is what is left: the remaining steps at that
 * pace (evals excluded), the remaining evals (every eval_every steps, and the final one) at their mean duration,
 * and the rest of an eval under way.
 */
export class RunTiming {
  private total = 0;
  private evalExamples = 0;
  private evalEvery = 0;
  private step = 0;
  private elapsed = 0; // seconds, as the last event with a clock said
  private pace: { step: number; elapsed: number } | null = null; // where this session's pace is counted from
  private evalSeconds = 0; // this session's finished evals, after `pace` began
  private evals = 0;
  private evalStarted: number | null = null; // elapsed when the eval under way began
  phase: RunPhase = { kind: 'starting' };

  fold(e: EngineEvent): void {
    switch (e.type) {
      case 'run_start':
        [this.total, this.step, this.evalExamples] = [e.total_steps, e.start_step, e.eval_examples];
        this.evalEvery = e.eval_every ?? 0;
        [this.evalSeconds, this.evals, this.evalStarted] = [0, 0, null];
        this.pace = e.start_step > 0 ? null : { step: 0, elapsed: 0 };
        this.phase = { kind: 'starting' };
        return;
      case 'eval_progress':
        this.elapsed = e.elapsed_s;
        if (e.done === 0 || this.evalStarted === null) this.evalStarted = e.elapsed_s;
        this.phase = { kind: 'evaluating', step: e.step, done: e.done, total: e.total };
        return;
      case 'eval':
        if (typeof e.elapsed_s === 'number') this.evalEnded(e.elapsed_s);
        this.evalStarted = null;
        if (this.phase.kind === 'evaluating') this.phase = { kind: this.pace ? 'training' : 'starting' };
        return;
      case 'step':
        this.elapsed = e.elapsed_s;
        this.pace ??= { step: e.step, elapsed: e.elapsed_s }; // a resumed session: from its first step on
        [this.step, this.evalStarted, this.phase] = [e.step, null, { kind: 'training' }];
        return;
      case 'end':
        this.phase = { kind: 'ended' };
        return;
      default:
    }
  }

  /** Seconds left, or null before the pace is known. */
  eta(): number | null {
    if (this.phase.kind === 'ended') return 0;
    const pace = this.pace;
    const steps = pace ? this.step - pace.step : 0;
    if (!pace || steps <= 0) return null;
    const inEval = this.evalStarted !== null ? Math.max(0, this.elapsed - this.evalStarted) : 0;
    const trainSeconds = Math.max(0, this.elapsed - pace.elapsed - this.evalSeconds - inEval);
    const evalMean = this.evals ? this.evalSeconds / this.evals : inEval;
    let left = (Math.max(0, this.total - this.step) * trainSeconds) / steps;
    if (this.evalExamples > 0) {
      left += evalsAfter(this.step, this.total, this.evalEvery) * evalMean; // the one under way is at this step
      if (this.evalStarted !== null) left += Math.max(0, evalMean - inEval);
    }
    return left;
  }

  private evalEnded(elapsed: number): void {
    this.elapsed = elapsed;
    if (this.evalStarted === null) return;
    this.evals++;
    this.evalSeconds += Math.max(0, elapsed - this.evalStarted); // the baseline before step 1 too: not training
  }
}

/** Evals the training loop still runs after `step`: one at each multiple of `every` below `total`, and the final. */
export function evalsAfter(step: number, total: number, every: number): number {
  if (step >= total) return 0;
  const periodic = every > 0 ? Math.floor((total - 1) / every) - Math.floor(step / every) : 0;
  return Math.max(0, periodic) + 1;
}
