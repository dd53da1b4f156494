// A run folder: `<output_dir>/<run_name>/` with config.yaml (the config as run, defaults filled), metrics.jsonl (every
// engine event, one JSON object a line), checkpoints/ and final/. Lines already written are never rewritten except
// on resume, where the events after the resumed checkpoint are dropped so the file reads as one uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { writeFileAtomic } from '../../adapters/files';
import type { TrainConfig } from '../../config/schema';
import type { EngineEvent, EventSink } from '../../protocol/events';
import { LoraPlusError } from '../../protocol/errors';
import { listCheckpoints } from './checkpoints';

export const METRICS_FILE = 'metrics.jsonl';
export const CONFIG_FILE = 'config.yaml';

export interface RunFolder {
  dir: string;
  name: string;
  emit: EventSink; // appends to metrics.jsonl
}

export function runName(config: TrainConfig, now = new Date()): string {
  if (config.run_name) return config.run_name;
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15); // 20261123-071500
  return `${stamp}-${path.basename(config.model)}`;
}

/** Finds the run to resume: the given folder, the configured run_name, or the newest run with a checkpoint. */
export function findRunToResume(config: TrainConfig, runDir?: string): string {
  if (runDir) return runDir;
  if (config.run_name) return path.join(config.output_dir, config.run_name);
  const root = config.output_dir;
  const candidates = fs.existsSync(root)
    ? fs
        .readdirSync(root)
        .map((n) => path.join(root, n))
        .filter((d) => listCheckpoints(d).length > 0)
    : [];
  if (!candidates.length) {
    throw new LoraPlusError({
      code: 'resume/no-checkpoint',
      message: `no run under ${root} has a checkpoint to resume from`,
      yamlPath: 'output_dir',
      hint: 'Pass --run-dir DIR, or start without --resume.',
    });
  }
  return candidates.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0];
}

export function openRun(config: TrainConfig, dir: string, resumeStep: number | null): RunFolder {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(
    path.join(dir, CONFIG_FILE),
    `# The config as run (defaults filled, paths resolved).\n${stringify(config)}`,
  );
  const metrics = path.join(dir, METRICS_FILE);
  if (resumeStep === null) writeFileAtomic(metrics, '');
  else truncateAfter(metrics, resumeStep);
  return {
    dir,
    name: path.basename(dir),
    emit: (e: EngineEvent) => fs.appendFileSync(metrics, `${JSON.stringify(e)}\n`),
  };
}

/** Keeps the events up to the checkpoint of `step` (and its run_start); drops what came after. */
function truncateAfter(file: string, step: number): void {
  if (!fs.existsSync(file)) return;
  const kept: string[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let e: EngineEvent;
    try {
      e = JSON.parse(line) as EngineEvent;
    } catch {
      break; // a torn last line from a crash
    }
    if ((e.type === 'step' || e.type === 'eval' || e.type === 'checkpoint') && e.step > step) continue;
    if (e.type === 'end' || e.type === 'error') continue;
    kept.push(line);
  }
  writeFileAtomic(file, kept.map((l) => `${l}\n`).join(''));
}

/** Reads a run's events (for eval/compare and tests); skips a torn last line. */
export function readMetrics(dir: string): EngineEvent[] {
  const file = path.join(dir, METRICS_FILE);
  if (!fs.existsSync(file)) return [];
  const out: EngineEvent[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as EngineEvent);
    } catch {
      break;
    }
  }
  return out;
}
