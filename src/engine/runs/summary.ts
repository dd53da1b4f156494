// What a run folder says about its run, read from the files alone (metrics.jsonl, config.yaml, checkpoints/, final/):
// the run explorer, the dashboard header and `loraplus compare` all start here, so a run is the same run everywhere,
// also after VS Code restarts or while another process is still writing it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { EngineEvent, EvalEvent, RunStartEvent } from '../../protocol/events';
import { listCheckpoints } from './checkpoints';
import { CONFIG_FILE, METRICS_FILE, readMetrics } from './writer';

/** running: no end yet (the caller knows whether a process is alive; without one it is 'interrupted'). */
export type RunStatus = 'running' | 'finished' | 'stopped' | 'failed' | 'interrupted';

export interface CheckpointSummary {
  dir: string;
  step: number;
  eval: { loss: number; accuracy?: number; perplexity?: number } | null; // the eval at that step, if one ran
}

export interface RunSummary {
  dir: string;
  name: string;
  status: RunStatus;
  start: RunStartEvent | null; // the latest run_start (a resumed run has one per session)
  config: Record<string, unknown> | null; // config.yaml as run
  step: number; // last logged or checkpointed step
  totalSteps: number | null;
  lastLoss: number | null;
  bestEval: EvalEvent | null; // lowest eval loss
  lastEval: EvalEvent | null;
  checkpoints: CheckpointSummary[];
  finalAdapter: string | null; // final/ when it holds an adapter
  error: string | null; // the error message of a failed run
  updated: number; // mtime of metrics.jsonl (ms), for sorting
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
  let start: RunStartEvent | null = null;
  let step = 0;
  let lastLoss: number | null = null;
  let bestEval: EvalEvent | null = null;
  let lastEval: EvalEvent | null = null;
  let ended: 'finished' | 'stopped' | 'failed' | null = null;
  let error: string | null = null;
  const evalAt = new Map<number, EvalEvent>();
  for (const e of events) {
    // The explorer reads every metrics.jsonl in a workspace, also other tools' files: skip what is not our event.
    if (
      !e ||
      typeof e !== 'object' ||
      (e.type !== 'run_start' && e.type !== 'log' && e.type !== 'error' && !isCount(e.step))
    )
      continue;
    if (e.type === 'run_start')
      [start, ended, error] = [e, null, null]; // a resumed session starts clean
    else if (e.type === 'step') [step, lastLoss] = [Math.max(step, e.step), e.loss];
    else if (e.type === 'eval') {
      evalAt.set(e.step, e);
      lastEval = e;
      // A NaN/Inf loss is written as null (JSON): never "best".
      if (Number.isFinite(e.loss) && (!bestEval || e.loss < bestEval.loss)) bestEval = e;
    } else if (e.type === 'checkpoint') step = Math.max(step, e.step);
    else if (e.type === 'end') [ended, step] = [e.status, Math.max(step, e.step)];
    else if (e.type === 'error') error = e.error?.message ?? 'unknown error';
  }
  const metrics = path.join(dir, METRICS_FILE);
  const finalDir = path.join(dir, 'final');
  return {
    dir,
    name: path.basename(dir),
    status: ended ?? (alive === false || (alive === undefined && !start) ? 'interrupted' : 'running'),
    start,
    config: readConfig(dir),
    step,
    totalSteps: start?.total_steps ?? null,
    lastLoss,
    bestEval,
    lastEval,
    checkpoints: listCheckpoints(dir).map((c) => ({ ...c, eval: evalAt.get(c.step) ?? null })),
    finalAdapter: fs.existsSync(path.join(finalDir, 'adapter_config.json')) ? finalDir : null,
    error,
    updated: fs.existsSync(metrics) ? fs.statSync(metrics).mtimeMs : 0,
  };
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0;
}

function readConfig(dir: string): Record<string, unknown> | null {
  try {
    const v: unknown = parse(fs.readFileSync(path.join(dir, CONFIG_FILE), 'utf8'));
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}
