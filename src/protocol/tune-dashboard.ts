// Messages between the extension host and a tune's dashboard webview, as two typed maps (name → payload) like the run
// dashboard's. The webview sends `ready` first; the host answers with `init` (the tune's summary, folded from
// tune.jsonl, and the curves of every trial read so far from their metrics.jsonl), then `summary` when the tune
// changes (a rung result, a promotion, its end) and `curves` as trials train. A reload or a hidden-then-shown panel
// sends `ready` again and gets a fresh `init`. Every message carries the protocol version; each side checks what it
// receives with the guards below.
import type { EngineEvent } from './events';
import type { TuneSummary } from './tune';

export const TUNE_DASHBOARD_PROTOCOL = 1;

/** One trial's curves from its metrics.jsonl: the logged training losses and the evals (on the tune's eval subset). */
export interface TrialCurves {
  trial: string;
  reset: boolean; // true: these are all of the trial's points (a first read, or its file was rewritten)
  steps: number[];
  loss: (number | null)[]; // null: a NaN/Inf loss
  evalSteps: number[];
  evalLoss: (number | null)[];
  evalAccuracy: (number | null)[]; // null where the task has no accuracy
}

/** What the panel saves for the serializer. */
export interface TuneDashboardState {
  tuneDir: string;
}

/** Host → webview, by name. */
export interface TuneHostMessages {
  init: { tuneDir: string; summary: TuneSummary; curves: TrialCurves[] };
  summary: { summary: TuneSummary };
  curves: { curves: TrialCurves[] };
  missing: { tuneDir: string; message: string }; // the tune folder is gone
}

/** Webview → host, by name. */
export interface TuneWebviewMessages {
  ready: Record<string, never>;
  trainWinner: Record<string, never>; // "Train with these settings": a config with the winner's settings
  openWinner: Record<string, never>; // the winner's run dashboard
  openTrial: { trial: string }; // a trial's run dashboard (a heatmap cell, a bracket entry)
}

export type TuneMessage<M, K extends keyof M = keyof M> = K extends keyof M
  ? { v: typeof TUNE_DASHBOARD_PROTOCOL; type: K } & M[K]
  : never;
export type HostToTuneDashboard = TuneMessage<TuneHostMessages>;
export type TuneDashboardToHost = TuneMessage<TuneWebviewMessages>;

export function tuneHostMessage<K extends keyof TuneHostMessages>(
  type: K,
  payload: TuneHostMessages[K],
): TuneMessage<TuneHostMessages, K> {
  return { v: TUNE_DASHBOARD_PROTOCOL, type, ...payload } as TuneMessage<TuneHostMessages, K>;
}

export function tuneWebviewMessage<K extends keyof TuneWebviewMessages>(
  type: K,
  payload: TuneWebviewMessages[K],
): TuneMessage<TuneWebviewMessages, K> {
  return { v: TUNE_DASHBOARD_PROTOCOL, type, ...payload } as TuneMessage<TuneWebviewMessages, K>;
}

// ---- guards: what arrives over postMessage is unknown until checked ------------------------------------------------

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isNums = (x: unknown) => Array.isArray(x) && x.every((v) => typeof v === 'number');
const isNumsOrNull = (x: unknown) => Array.isArray(x) && x.every((v) => v === null || typeof v === 'number');
const TUNE_STATUSES = ['running', 'finished', 'stopped', 'failed', 'interrupted'];

/** A shallow check of a TuneSummary (its fields are the host's fold of tune.jsonl). */
export function isTuneSummary(x: unknown): x is TuneSummary {
  return (
    isObj(x) &&
    TUNE_STATUSES.includes(x.status as string) &&
    Array.isArray(x.trials) &&
    x.trials.every((t) => isObj(t) && isStr(t.trial) && isObj(t.settings) && Array.isArray(t.results)) &&
    Array.isArray(x.promotions) &&
    typeof x.rung === 'number' &&
    (x.start === null || isObj(x.start)) &&
    (x.winner === null || isObj(x.winner))
  );
}

export function isTrialCurves(x: unknown): x is TrialCurves {
  return (
    isObj(x) &&
    isStr(x.trial) &&
    typeof x.reset === 'boolean' &&
    isNums(x.steps) &&
    isNumsOrNull(x.loss) &&
    isNums(x.evalSteps) &&
    isNumsOrNull(x.evalLoss) &&
    isNumsOrNull(x.evalAccuracy)
  );
}

const isCurves = (x: unknown) => Array.isArray(x) && x.every(isTrialCurves);

const HOST_CHECKS: { [K in keyof TuneHostMessages]: (m: Obj) => boolean } = {
  init: (m) => isStr(m.tuneDir) && isTuneSummary(m.summary) && isCurves(m.curves),
  summary: (m) => isTuneSummary(m.summary),
  curves: (m) => isCurves(m.curves),
  missing: (m) => isStr(m.tuneDir) && isStr(m.message),
};

const WEBVIEW_CHECKS: { [K in keyof TuneWebviewMessages]: (m: Obj) => boolean } = {
  ready: () => true,
  trainWinner: () => true,
  openWinner: () => true,
  openTrial: (m) => isStr(m.trial) && m.trial.length > 0,
};

function check<M>(checks: { [K in keyof M]: (m: Obj) => boolean }, x: unknown): boolean {
  if (!isObj(x) || x.v !== TUNE_DASHBOARD_PROTOCOL || !isStr(x.type) || !Object.hasOwn(checks, x.type)) return false;
  return checks[x.type as keyof M](x);
}

export function isHostToTuneDashboard(x: unknown): x is HostToTuneDashboard {
  return check(HOST_CHECKS, x);
}

export function isTuneDashboardToHost(x: unknown): x is TuneDashboardToHost {
  return check(WEBVIEW_CHECKS, x);
}

export function isTuneDashboardState(x: unknown): x is TuneDashboardState {
  return isObj(x) && isStr(x.tuneDir) && x.tuneDir.length > 0;
}

/** A trial's curves from its run's events (steps and evals; everything else is the run dashboard's). */
export function trialCurves(trial: string, events: readonly EngineEvent[], reset: boolean): TrialCurves {
  const c: TrialCurves = { trial, reset, steps: [], loss: [], evalSteps: [], evalLoss: [], evalAccuracy: [] };
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  for (const e of events) {
    if (e.type === 'step') {
      c.steps.push(e.step);
      c.loss.push(num(e.loss));
    } else if (e.type === 'eval') {
      c.evalSteps.push(e.step);
      c.evalLoss.push(num(e.loss));
      c.evalAccuracy.push(num(e.accuracy));
    }
  }
  return c;
}
