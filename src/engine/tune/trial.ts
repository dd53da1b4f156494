// One trial's training for one rung, through the engine's own train(): the first rung creates the trial's run folder
// and trains from step 0; later rungs resume it from its checkpoint, so no step is trained twice. Every rung trains
// with max_steps = the budget (the schedule of the full run) and stops at the rung's step through the abort signal:
// the eval at that step is the rung's figure, and the stop leaves the checkpoint the next rung resumes from.
// Divergence ends a trial: the engine's non-finite loss error, a training loss far above its start, or an eval loss
// far above the step-0 eval.
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent, EvalEvent } from '../../protocol/events';
import type { RungResultEvent } from '../../protocol/tune';
import { train } from '../train/train';
import { LOSS_FACTOR, trialConfig, trialDir, type PlannedTrial, type TunePlan } from './plan';

/** A trial as the tune follows it across rungs. */
export interface TrialState extends PlannedTrial {
  runDir: string;
  started: boolean; // its run folder exists: later rungs resume it
  step: number;
  baseEval: EvalEvent | null; // the eval at step 0: what "far above the start" compares with
  trainLosses: number[]; // logged training losses, all rungs
  results: RungResultEvent[];
  finalAdapter: string | null;
}

export function newTrialState(t: PlannedTrial, trialsDir: string): TrialState {
  const runDir = trialDir(trialsDir, t);
  return { ...t, runDir, started: false, step: 0, baseEval: null, trainLosses: [], results: [], finalAdapter: null };
}

/** How many logged losses the divergence watch averages (the start's and the latest). */
const WINDOW = 10;

export interface RungRun {
  plan: TunePlan;
  trialsDir: string;
  rung: number;
  signal?: AbortSignal; // the user's stop
  onEvent?: (e: EngineEvent) => void; // the trial run's own events
}

/**
 * Trains `t` to the rung's step and returns its result. Stopped by the user before the rung's step: null. Errors
 * other than a diverging loss (a full disk, a broken config) are the tune's and propagate.
 */
export async function trainRung(t: TrialState, r: RungRun): Promise<RungResultEvent | null> {
  const { plan, rung } = r;
  const to = plan.rungs[rung];
  const last = rung === plan.rungs.length - 1;
  // An eval exactly at the rung's step (the first multiple of `to` after the previous rung's step is `to` itself);
  // the last rung evaluates as the config says (train() always evaluates at the end).
  const evalEvery = !last ? to : plan.base.training.eval_every || plan.budget.steps;
  const config = trialConfig(plan, t, r.trialsDir, evalEvery);
  const stop = new AbortController();
  const onUserStop = () => stop.abort();
  if (r.signal?.aborted) return null;
  r.signal?.addEventListener('abort', onUserStop, { once: true });
  const from = t.step;
  const began = Date.now();
  let atRung: EvalEvent | null = null;
  let diverged: string | null = null;
  const onEvent = (e: EngineEvent) => {
    r.onEvent?.(e);
    if (e.type === 'eval') {
      if (e.step === 0) t.baseEval = e;
      if (e.step === to) atRung = e;
      if (e.step >= to && !last) stop.abort();
    } else if (e.type === 'step') {
      t.trainLosses.push(e.loss);
      diverged ??= lossRunaway(t.trainLosses);
      if (diverged) stop.abort();
    } else if (e.type === 'end') t.step = e.step;
  };
  try {
    const res = await train(config, onEvent, stop.signal, { runDir: t.runDir, resume: t.started });
    t.finalAdapter = res.finalAdapter;
  } catch (err) {
    if (!(err instanceof LoraPlusError && err.code === 'train/non-finite')) throw err;
    diverged = err.info.message; // e.g. "the loss became NaN (gradient norm NaN) at step 23"
  } finally {
    t.started = true; // train() created the folder before anything could fail in it
    r.signal?.removeEventListener('abort', onUserStop);
  }
  const evaluated = atRung as EvalEvent | null; // (assigned in the callback)
  if (!diverged && evaluated) diverged = evalRunaway(evaluated, t.baseEval);
  if (!diverged && !evaluated) return null; // the user stopped it before the rung's step
  const result: RungResultEvent = {
    type: 'rung_result',
    trial: t.trial,
    rung,
    step: t.step,
    steps_trained: t.step - from,
    metric: diverged || !evaluated ? null : judged(evaluated, plan),
    loss: evaluated ? evaluated.loss : null,
    ...(evaluated?.accuracy !== undefined ? { accuracy: evaluated.accuracy } : {}),
    ...(evaluated?.perplexity !== undefined ? { perplexity: evaluated.perplexity } : {}),
    ...(diverged ? { diverged } : {}),
    elapsed_s: (Date.now() - began) / 1000,
  };
  t.results.push(result);
  return result;
}

/** The figure a rung is judged by. */
function judged(e: EvalEvent, plan: TunePlan): number {
  return plan.metric.name === 'accuracy' ? (e.accuracy ?? NaN) : e.loss;
}

/** The mean of the last WINDOW logged training losses far above the mean of the first ones: why, else null. */
function lossRunaway(losses: number[]): string | null {
  if (losses.length < 2 * WINDOW) return null;
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const [start, now] = [mean(losses.slice(0, WINDOW)), mean(losses.slice(-WINDOW))];
  if (!(now > LOSS_FACTOR * start) && Number.isFinite(now)) return null;
  return `the training loss rose to ${now.toFixed(3)}, ${(now / start).toFixed(1)}× its start (${start.toFixed(3)})`;
}

/** An eval loss that is not finite, or far above the step-0 eval's: why, else null. */
function evalRunaway(e: EvalEvent, base: EvalEvent | null): string | null {
  if (!Number.isFinite(e.loss)) return `the eval loss became ${e.loss} at step ${e.step}`;
  if (!base || !(e.loss > LOSS_FACTOR * base.loss)) return null;
  const times = (e.loss / base.loss).toFixed(1);
  return `the eval loss rose to ${e.loss.toFixed(3)} at step ${e.step}, ${times}× the start's (${base.loss.toFixed(3)})`;
}

/** Best first: the judged figure (by the metric's goal), then the loss, then grid order. Diverged trials go last. */
export function compareResults(a: RungResultEvent, b: RungResultEvent, plan: TunePlan, ia: number, ib: number): number {
  const bad = (r: RungResultEvent) => Boolean(r.diverged) || r.metric === null || !Number.isFinite(r.metric);
  if (bad(a) !== bad(b)) return bad(a) ? 1 : -1;
  if (!bad(a)) {
    const d = plan.metric.goal === 'max' ? b.metric! - a.metric! : a.metric! - b.metric!;
    if (Math.abs(d) > 1e-12) return d;
    const dl = (a.loss ?? Infinity) - (b.loss ?? Infinity);
    if (plan.metric.tie_break && Math.abs(dl) > 1e-12) return dl;
  }
  return ia - ib;
}
