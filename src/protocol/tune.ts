// A tune (`loraplus tune`, or `train` of a config with `learning_rate: auto` / `loraplus_lr_ratio: auto`): a
// successive-halving search over learning_rate × loraplus_lr_ratio (× optimizer). Its folder holds tune.jsonl, one
// TuneEvent a line, and trials/<id>/, one real run folder per grid cell. The CLI's table, the VS Code tune explorer
// and its dashboard all fold the same events with TuneRecord below, so a tune reads the same everywhere, also from
// the file alone after the process has gone. Plain data: no node: modules, no DOM.
import type { ErrorInfo } from './errors';

export const TUNE_FILE = 'tune.jsonl';
export const TRIALS_DIR = 'trials';

/** What one trial trains with: the searched settings (everything else is the config's, the same for every trial). */
export interface TrialSettings {
  learning_rate: number; // lr_A
  loraplus_lr_ratio: number; // λ: lr_B = learning_rate·λ
  optimizer: string; // training.optimizer ('adamw' where the schema has no such key)
}

/**
 * Whether `optimizer` has a λ: LoRA+'s adamw (also when absent, as in configs and runs older than the key); PEFT's
 * riemannian and lorafa train lora_A and lora_B at one rate.
 */
export function usesRatio(optimizer: string | undefined): boolean {
  return optimizer === undefined || optimizer === 'adamw';
}

/** The figures an eval gives (as the run's eval event). */
export interface EvalFigures {
  loss: number;
  accuracy?: number;
  perplexity?: number;
  token_accuracy?: number;
  examples: number;
}

/** How rungs are judged: classification by accuracy (loss breaks ties), the language-model tasks by loss. */
export interface TuneMetric {
  name: 'accuracy' | 'loss';
  goal: 'max' | 'min';
  tie_break: 'loss' | null;
}

/** " (loss breaks ties)", or "" without a tie-break: the CLI table, the CLI progress and the tune dashboard say it. */
export function tuneTieText(m: TuneMetric): string {
  return m.tie_break ? ` (${m.tie_break} breaks ties)` : '';
}

export interface TuneStartEvent {
  type: 'tune_start';
  time: string;
  tune_name: string;
  tune_dir: string;
  config_file: string | null;
  model: string;
  task: string;
  axes: { learning_rate: number[]; loraplus_lr_ratio: number[]; optimizer: string[] };
  trials: { trial: string; settings: TrialSettings }[]; // grid order: optimizer, then learning_rate, then λ
  eta: number; // 1/eta of a rung's trials continue to the next
  rungs: number[]; // the step each rung trains to; the last is the budget, the length the winner trains to
  budget: { steps: number; tokens: number | null; from: 'config' | 'steps' | 'tokens' };
  metric: TuneMetric;
  eval: { examples: number | null; source: string }; // the fixed eval subset every rung is judged on
  divergence: { loss_factor: number }; // a loss this many times the start's stops a trial
  seed: number; // training.seed: every trial sees the same data order, initialisation and dropout
  full_grid_steps: number; // what training every trial to the budget would cost
}

/** A rung begins: these trials train (or continue) to `steps`. */
export interface RungStartEvent {
  type: 'rung_start';
  rung: number;
  steps: number;
  trials: string[];
}

/** A trial's run folder is created (once; later rungs resume it). */
export interface TrialStartEvent {
  type: 'trial_start';
  trial: string;
  settings: TrialSettings;
  run_dir: string;
}

/** Where a trial stands at the end of a rung: the eval on the fixed subset, or why it stopped early. */
export interface RungResultEvent {
  type: 'rung_result';
  trial: string;
  rung: number;
  step: number; // the step it reached
  steps_trained: number; // optimizer steps trained in this rung (what the tune spent on it)
  metric: number | null; // the judged figure at `step`; null when it diverged before an eval
  loss: number | null; // eval loss
  accuracy?: number;
  perplexity?: number;
  diverged?: string; // why it stopped: the loss became NaN, or rose far above the start
  elapsed_s: number; // wall time of this rung's training
}

/** A rung is judged: the best 1/eta continue (best first); the rest stop here. */
export interface PromoteEvent {
  type: 'promote';
  rung: number;
  next_steps: number;
  continue: string[];
  stopped: string[]; // outranked here (diverged trials are out already)
}

export const TRIAL_OUTCOMES = ['winner', 'finished', 'eliminated', 'diverged', 'stopped'] as const;
export type TrialOutcome = (typeof TRIAL_OUTCOMES)[number];

/** A trial is done: won, trained to the budget but lost, outranked at a rung, diverged, or stopped by the user. */
export interface TrialEndEvent {
  type: 'trial_end';
  trial: string;
  outcome: TrialOutcome;
  rung: number; // the last rung it trained in
  step: number;
  reason?: string;
}

export interface TuneWinner {
  trial: string;
  settings: TrialSettings;
  run_dir: string;
  final_adapter: string | null;
  metric: number; // at the budget, on the eval subset
  eval: EvalFigures; // the final adapter on the whole eval set (data.eval, or the held-out eval_fraction)
}

export interface TuneEndEvent {
  type: 'tune_end';
  status: 'finished' | 'stopped' | 'failed';
  winner: TuneWinner | null;
  spent_steps: number; // optimizer steps trained, all trials together
  full_grid_steps: number;
  elapsed_s: number;
}

export interface TuneErrorEvent {
  type: 'error';
  trial: string | null;
  error: ErrorInfo;
}

export type TuneEvent =
  | TuneStartEvent
  | RungStartEvent
  | TrialStartEvent
  | RungResultEvent
  | PromoteEvent
  | TrialEndEvent
  | TuneEndEvent
  | TuneErrorEvent;
export type TuneEventSink = (event: TuneEvent) => void;

export const TUNE_EVENT_TYPES: readonly TuneEvent['type'][] = [
  'tune_start',
  'rung_start',
  'trial_start',
  'rung_result',
  'promote',
  'trial_end',
  'tune_end',
  'error',
];

/** One parsed line of tune.jsonl: an object whose `type` is a TuneEvent's (the fields are the writer's). */
export function isTuneEvent(v: unknown): v is TuneEvent {
  return (
    typeof v === 'object' &&
    v !== null &&
    TUNE_EVENT_TYPES.includes((v as { type?: unknown }).type as TuneEvent['type'])
  );
}

/** What `loraplus tune --json` prints last, and the engine process's answer to a `tune` request. */
export interface TuneResult {
  status: 'finished' | 'stopped';
  tune_dir: string;
  trial: string | null; // the winner; null when the tune was stopped first
  learning_rate: number | null;
  loraplus_lr_ratio: number | null;
  optimizer: string | null;
  run_dir: string | null; // the winner's run folder, trained to the budget
  final_adapter: string | null;
  eval: EvalFigures | null; // the winner on the whole eval set
  spent_steps: number;
  full_grid_steps: number;
}

/** The engine process's `tune` request (src/protocol/host.ts); the options of `loraplus tune`. */
export interface TuneRequest {
  configFile: string;
  tuneDir?: string; // default: <output_dir>/<run_name, else tune-<config file's name>>
  grid?: string[]; // axis overrides, e.g. ['lr=1e-4,5e-4', 'ratio=1,4,16']
  budget?: string; // '600', '600steps', '2M tokens'
  eta?: number;
  rungs?: number;
  evalSamples?: number;
}

// ---- Folding the events: what the table, the explorer and the dashboard show ----

export type TuneStatus = 'running' | 'finished' | 'stopped' | 'failed' | 'interrupted';
export type TrialState = TrialOutcome | 'waiting' | 'training' | 'continues';

export interface TrialSummary {
  trial: string;
  settings: TrialSettings;
  run_dir: string | null;
  results: (RungResultEvent | null)[]; // by rung
  state: TrialState; // 'continues': promoted, its next rung not begun
  step: number;
  reason: string | null;
}

export interface TuneSummary {
  start: TuneStartEvent | null;
  status: TuneStatus;
  trials: TrialSummary[]; // grid order
  rung: number; // the rung now training (or the last one)
  promotions: PromoteEvent[];
  winner: TuneWinner | null;
  spent_steps: number;
  full_grid_steps: number;
  error: ErrorInfo | null;
}

/** The events of a tune so far, folded one at a time (a feed following a growing tune.jsonl never rereads it). */
export class TuneRecord {
  private start: TuneStartEvent | null = null;
  private readonly trials = new Map<string, TrialSummary>();
  private readonly promotions: PromoteEvent[] = [];
  private rung = 0;
  private spent = 0;
  private end: TuneEndEvent | null = null;
  private error: ErrorInfo | null = null;

  add(events: readonly unknown[]): void {
    for (const e of events) if (isTuneEvent(e)) this.fold(e);
  }

  private fold(e: TuneEvent): void {
    const t = 'trial' in e && typeof e.trial === 'string' ? this.trial(e.trial) : null;
    switch (e.type) {
      case 'tune_start':
        this.start = e;
        for (const { trial, settings } of e.trials) this.trial(trial, settings);
        break;
      case 'rung_start':
        this.rung = e.rung;
        for (const id of e.trials) {
          const s = this.trial(id);
          if (s.state === 'waiting' || s.state === 'continues') s.state = 'training';
        }
        break;
      case 'trial_start':
        if (t) [t.settings, t.run_dir, t.state] = [e.settings, e.run_dir, 'training'];
        break;
      case 'rung_result':
        if (!t) break;
        t.results[e.rung] = e;
        t.step = e.step;
        this.spent += e.steps_trained;
        break;
      case 'promote':
        this.promotions.push(e);
        for (const id of e.continue) this.trial(id).state = 'continues';
        break;
      case 'trial_end':
        if (t) [t.state, t.step, t.reason] = [e.outcome, e.step, e.reason ?? null];
        break;
      case 'tune_end':
        this.end = e;
        break;
      case 'error':
        this.error = e.error;
        break;
    }
  }

  private trial(id: string, settings?: TrialSettings): TrialSummary {
    let s = this.trials.get(id);
    if (!s) {
      const none = { learning_rate: NaN, loraplus_lr_ratio: NaN, optimizer: '' };
      s = {
        trial: id,
        settings: settings ?? none,
        run_dir: null,
        results: [],
        state: 'waiting',
        step: 0,
        reason: null,
      };
      this.trials.set(id, s);
    }
    return s;
  }

  /** `alive`: whether a process is known to write the tune now; without an end event, else it was interrupted. */
  summarize(alive: boolean): TuneSummary {
    const start = this.start;
    return {
      start,
      status: this.end?.status ?? (alive ? 'running' : 'interrupted'),
      trials: [...this.trials.values()].map((t) => ({ ...t, results: [...t.results] })),
      rung: this.rung,
      promotions: [...this.promotions],
      winner: this.end?.winner ?? null,
      spent_steps: this.end?.spent_steps ?? this.spent,
      full_grid_steps: this.end?.full_grid_steps ?? start?.full_grid_steps ?? 0,
      error: this.error,
    };
  }
}

export function summarizeTune(events: readonly unknown[], alive: boolean): TuneSummary {
  const r = new TuneRecord();
  r.add(events);
  return r.summarize(alive);
}

/** A learning rate or ratio as trial ids and tables write it: 5e-4, 2.5e-4, 16. */
export function fmtSetting(x: number): string {
  if (!Number.isFinite(x)) return '?';
  if (Number.isInteger(x) && Math.abs(x) < 1e5) return String(x);
  if (Math.abs(x) >= 0.01 && Math.abs(x) < 1e5) return String(Number(x.toPrecision(4)));
  return Number(x.toPrecision(4))
    .toExponential()
    .replace(/e([+-])(\d)/, (_, sign: string, d: string) => `e${sign === '-' ? '-' : ''}${d}`);
}
