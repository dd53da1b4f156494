// What a run folder says about its run, read from the files alone (metrics.jsonl, config.yaml, checkpoints/, final/):
// the run explorer, the dashboard, the status bar and `loraplus compare` all start here, so a run is the same run
// everywhere, also after VS Code restarts or while another process is still writing it. Its status and settings are
// decided here and nowhere else. RunRecord folds events one at a time, so a feed that follows a growing file never
// reads it twice.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { DashboardSummary } from '../../protocol/dashboard';
import { isObject } from '../../protocol/json';
import { usesRatio } from '../../protocol/tune';
import type { EngineEvent, EvalEvent, RunStartEvent, RunStatus, StepEvent } from '../../protocol/events';
import { listCheckpoints } from './checkpoints';
import { CONFIG_FILE, METRICS_FILE, readMetrics } from './writer';

/** A run with no `end` whose metrics.jsonl changed this recently counts as running (e.g. a CLI run in a terminal). */
export const RECENT_MS = 2 * 60_000;

export interface CheckpointSummary {
  dir: string;
  step: number;
  eval: { loss: number; accuracy?: number; perplexity?: number } | null; // the eval at that step, if one ran
}

/** What the run trained with: from its run_start, else (it failed before one) from its config.yaml. */
export interface RunSettings {
  model: string | null;
  task: string | null;
  r: number | null;
  alpha: number | null;
  ratio: number | null; // loraplus_lr_ratio (λ) as applied: 1 with riemannian and lorafa
  optimizer: string | null; // training.optimizer: adamw (LoRA+), riemannian, lorafa
  lrA: number | null;
  lrB: number | null;
  device: string | null;
}

export interface RunSummary {
  dir: string;
  name: string;
  status: RunStatus;
  start: RunStartEvent | null; // the latest run_start (a resumed run has one per session)
  config: Record<string, unknown> | null; // config.yaml as run
  settings: RunSettings;
  step: number; // last logged or checkpointed step
  totalSteps: number | null;
  lastLoss: number | null;
  elapsed: number | null; // seconds of training, as the last step or end event says (one clock for every view)
  bestEval: EvalEvent | null; // lowest eval loss
  lastEval: EvalEvent | null;
  checkpoints: CheckpointSummary[];
  finalAdapter: string | null; // final/ when it holds an adapter
  error: string | null; // the error message of a failed run
  updated: number; // mtime of metrics.jsonl (ms), for sorting and for telling a quiet run from a running one
}

/** True when `dir` looks like a run folder (it has the engine's metrics file). */
export function isRunDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, METRICS_FILE));
}

/** Summarises one run folder. `alive` says whether a process is known to be training it right now. */
export function summarizeRun(dir: string, alive?: boolean): RunSummary {
  return summarizeEvents(dir, readMetrics(dir), alive);
}

export function summarizeEvents(dir: string, events: EngineEvent[], alive?: boolean): RunSummary {
  const record = new RunRecord();
  record.add(events);
  return record.summarize(dir, alive);
}

/** The events of a run so far, folded: what a summary needs, without keeping the events. */
export class RunRecord {
  private start: RunStartEvent | null = null;
  private step = 0;
  private lastLoss: number | null = null;
  private elapsed: number | null = null;
  private bestEval: EvalEvent | null = null;
  private lastEval: EvalEvent | null = null;
  private ended: 'finished' | 'stopped' | 'failed' | null = null;
  private error: string | null = null;
  private readonly evalAt = new Map<number, EvalEvent>();

  add(events: EngineEvent[]): void {
    for (const e of events) this.fold(e);
  }

  private fold(e: EngineEvent): void {
    // The explorer reads every metrics.jsonl in a workspace, also other tools' files: skip what is not our event.
    const counted = e && typeof e === 'object' && isCount((e as { step?: unknown }).step);
    if (!counted && e?.type !== 'run_start' && e?.type !== 'log' && e?.type !== 'error') return;
    if (e.type === 'run_start')
      [this.start, this.ended, this.error] = [e, null, null]; // a resumed session starts clean
    else if (e.type === 'step')
      [this.step, this.lastLoss, this.elapsed] = [Math.max(this.step, e.step), e.loss, e.elapsed_s];
    else if (e.type === 'eval') {
      this.evalAt.set(e.step, e);
      this.lastEval = e;
      // A NaN/Inf loss is written as null (JSON): never "best".
      if (Number.isFinite(e.loss) && (!this.bestEval || e.loss < this.bestEval.loss)) this.bestEval = e;
    } else if (e.type === 'checkpoint') this.step = Math.max(this.step, e.step);
    else if (e.type === 'end') {
      [this.ended, this.step] = [e.status, Math.max(this.step, e.step)];
      if (typeof e.elapsed_s === 'number') this.elapsed = e.elapsed_s;
    } else if (e.type === 'error') this.error = e.error?.message ?? 'unknown error';
  }

  /** The status the file alone gives: its end event, else 'running' (`alive`) or 'interrupted' (not alive). */
  summarize(dir: string, alive?: boolean, config = readConfig(dir)): RunSummary {
    const metrics = path.join(dir, METRICS_FILE);
    const finalDir = path.join(dir, 'final');
    const start = this.start;
    return {
      dir,
      name: path.basename(dir),
      status: this.ended ?? (alive === false || (alive === undefined && !start) ? 'interrupted' : 'running'),
      start,
      config,
      settings: runSettings(start, config),
      step: this.step,
      totalSteps: start?.total_steps ?? null,
      lastLoss: this.lastLoss,
      elapsed: this.elapsed,
      bestEval: this.bestEval,
      lastEval: this.lastEval,
      checkpoints: listCheckpoints(dir).map((c) => ({ ...c, eval: this.evalAt.get(c.step) ?? null })),
      finalAdapter: fs.existsSync(path.join(finalDir, 'adapter_config.json')) ? finalDir : null,
      error: this.error,
      updated: fs.existsSync(metrics) ? fs.statSync(metrics).mtimeMs : 0,
    };
  }
}

// ---- status -------------------------------------------------------------------------------------------------------

/**
 * The status to show. A run with an `end` event is what that event says. Otherwise it is running while a process
 * of this window trains it (`alive`) or while its metrics.jsonl keeps changing (another process, e.g. `loraplus
 * train` in a terminal), and interrupted once it has been quiet for RECENT_MS (the process was killed or the machine
 * slept).
 */
export function decideStatus(s: RunSummary, alive: boolean, now: number): RunStatus {
  if (s.status !== 'running' && s.status !== 'interrupted') return s.status;
  return alive || now - s.updated < RECENT_MS ? 'running' : 'interrupted';
}

export function withStatus(s: RunSummary, alive: boolean, now: number): RunSummary {
  const status = decideStatus(s, alive, now);
  return status === s.status ? s : { ...s, status };
}

/** When a quiet run will turn from running to interrupted (null: it will not by time alone). */
export function statusExpires(s: RunSummary, alive: boolean, now: number): number | null {
  if (alive || (s.status !== 'running' && s.status !== 'interrupted')) return null;
  const at = s.updated + RECENT_MS;
  return at > now ? at : null;
}

/** A live step, folded into the summary without re-reading metrics.jsonl. */
export function applyStep(s: RunSummary, e: StepEvent, now: number): RunSummary {
  return { ...s, step: Math.max(s.step, e.step), lastLoss: e.loss, elapsed: e.elapsed_s, updated: now };
}

/** The summary as the dashboard's header takes it (src/protocol/dashboard.ts). */
export function dashboardSummary(s: RunSummary): DashboardSummary {
  const set = s.settings;
  const some = <T>(v: T | null) => v ?? undefined;
  return {
    name: s.name,
    runDir: s.dir,
    status: s.status,
    step: s.step,
    totalSteps: s.totalSteps,
    lastLoss: s.lastLoss,
    elapsed: s.elapsed,
    checkpoints: s.checkpoints.length,
    finalAdapter: s.finalAdapter,
    error: s.error,
    config:
      s.config || s.start
        ? {
            model: some(set.model),
            task: some(set.task),
            r: some(set.r),
            lora_alpha: some(set.alpha),
            learning_rate: some(set.lrA),
            loraplus_lr_ratio: some(set.ratio),
            optimizer: some(set.optimizer),
            device: some(set.device),
          }
        : null,
  };
}

// ---- settings -----------------------------------------------------------------------------------------------------

export function runSettings(start: RunStartEvent | null, config: Record<string, unknown> | null): RunSettings {
  const cfg = config ?? {};
  const [lora, training] = [record(cfg.lora), record(cfg.training)];
  const groupLr = (name: string) => start?.groups.find((g) => g.name === name)?.lr ?? null;
  // A run_start says which optimizer trained; a config without the key (older ones) trained LoRA+'s adamw.
  const optimizer = start?.optimizer ?? str(training.optimizer) ?? (start || config ? 'adamw' : null);
  const ratio = start?.loraplus_lr_ratio ?? (usesRatio(optimizer ?? undefined) ? num(training.loraplus_lr_ratio) : 1);
  const lrA = groupLr('A') ?? num(training.learning_rate);
  return {
    model: start?.model ?? str(cfg.model),
    task: start?.task ?? str(cfg.task),
    r: start?.lora.r ?? num(lora.r),
    alpha: start?.lora.lora_alpha ?? num(lora.lora_alpha),
    ratio,
    lrA,
    lrB: groupLr('B') ?? (lrA !== null && ratio !== null ? lrA * ratio : null),
    optimizer,
    device: str(cfg.device),
  };
}

/**
 * A folder is a run when the engine wrote it: a run_start, or (before one, or when it failed first) our config.yaml
 * as run. Other tools write metrics.jsonl and config.yaml too.
 */
export function isEngineRun(s: RunSummary): boolean {
  const c = s.config;
  return (
    s.start !== null ||
    (c !== null && typeof c.model === 'string' && typeof c.lora === 'object' && typeof c.training === 'object')
  );
}

export function readConfig(dir: string): Record<string, unknown> | null {
  try {
    const v: unknown = parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8'));
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function record(v: unknown): Record<string, unknown> {
  return isObject(v) ? v : {};
}

function num(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function str(v: unknown): string | null {
  return typeof v === 'string' ? v : null;
}
