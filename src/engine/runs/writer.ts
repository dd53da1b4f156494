// A run folder: `<output_dir>/<run_name>/` with config.yaml (the config as run, defaults filled), metrics.jsonl (every
// engine event, one JSON object a line), checkpoints/ and final/. A run writes only into a folder it created (or an
// empty one), holding its lock (lock.ts) while it writes. Lines already written are never rewritten except on
// resume, where the events after the resumed checkpoint are dropped so the file reads as one uninterrupted run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { writeFileAtomic } from '../../adapters/files';
import { diffConfigs, flattenConfig } from '../../config/flatten';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent, EventSink } from '../../protocol/events';
import { isObject } from '../../protocol/json';
import { ensureDir, folderError } from '../checks/paths';
import { listCheckpoints, type Checkpoint } from './checkpoints';
import { cleanLeftovers, LOCK_FILE, lockRun, type RunLock } from './lock';
import { runName } from './names';

export const METRICS_FILE = 'metrics.jsonl';
export const CONFIG_FILE = 'config.yaml';

export interface RunFolder {
  dir: string;
  name: string;
  emit: EventSink; // appends to metrics.jsonl
  close(): void; // releases the folder's lock
}

/** Settings a resumed run may change: how long it trains, how often it logs, evaluates and saves, and where. */
const RESUMABLE_CHANGES = [
  'training.max_steps',
  'training.epochs',
  'training.log_every',
  'training.eval_every',
  'training.save_every',
  'training.save_total_limit',
  'eval.generate',
  'eval.max_new_tokens',
  'device',
  'output_dir',
  'run_name',
];

/**
 * A new run's folder, created here and locked: `dir` (from --run-dir), else `<output_dir>/<run_name>`. A new run
 * never writes into a folder that holds anything (another run, the user's own files, the config itself): a named
 * folder that exists and is not empty is refused, and a default name (names.ts, from `configFile`) that is taken
 * gets a suffix.
 */
export function createRun(config: TrainConfig, dir?: string, configFile?: string): RunFolder {
  const named = dir !== undefined || Boolean(config.run_name);
  const first = path.resolve(dir ?? path.join(config.output_dir, runName(config, configFile)));
  const where = dir !== undefined ? undefined : config.run_name ? 'run_name' : 'output_dir';
  ensureDir(path.dirname(first), where ?? 'output_dir');
  for (let i = 1; ; i++) {
    const candidate = i === 1 ? first : `${first}-${i}`;
    if (makeDir(candidate, where)) return open(config, candidate, null);
    if (!named) continue; // a default name is taken: try the next
    const lock = lockRun(candidate);
    if (isEmpty(candidate)) return open(config, candidate, null, lock);
    lock.release();
    throw notEmpty(candidate, config, where);
  }
}

/** Finds the run to resume: the given folder, the configured run_name, or the newest run with a checkpoint. */
export function findRunToResume(config: TrainConfig, runDir?: string): string {
  if (runDir) return path.resolve(runDir);
  if (config.run_name) return path.resolve(config.output_dir, config.run_name);
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
  return path.resolve(candidates.sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]);
}

/**
 * The run folder to resume, locked, after checking that it is a run whose config matches this one; its newest
 * checkpoint is where the run continues (what a killed writer left half done is put right first).
 */
export function reopenRun(config: TrainConfig, dir: string): { run: RunFolder; from: Checkpoint } {
  if (!fs.existsSync(dir)) {
    throw new LoraPlusError({
      code: 'resume/no-checkpoint',
      message: `${dir} does not exist, so there is nothing to resume`,
      file: dir,
      hint: 'Start the run without --resume.',
    });
  }
  const lock = lockRun(dir);
  try {
    const differs = configChanges(config, dir);
    if (differs.length) {
      throw new LoraPlusError({
        code: 'resume/config-differs',
        message: `the config differs from the run's own config.yaml in ${differs.join(', ')}`,
        file: path.join(dir, CONFIG_FILE),
        hint:
          'Resume with the config the run was started with (its config.yaml), or start a new run. A resume may ' +
          `change only ${RESUMABLE_CHANGES.join(', ')}.`,
      });
    }
    cleanLeftovers(dir);
    const from = listCheckpoints(dir).at(-1);
    if (!from) {
      throw new LoraPlusError({
        code: 'resume/no-checkpoint',
        message: `${dir} has no checkpoint to resume from`,
        file: dir,
        hint: 'Start the run again without --resume.',
      });
    }
    return { run: open(config, dir, from.step, lock), from };
  } catch (err) {
    lock.release();
    throw err;
  }
}

function open(config: TrainConfig, dir: string, resumeStep: number | null, held?: RunLock): RunFolder {
  const lock = held ?? lockRun(dir);
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
    close: () => lock.release(),
  };
}

/** The dotted keys whose values differ between the config and the run's config.yaml (resumable ones aside). */
function configChanges(config: TrainConfig, dir: string): string[] {
  const file = path.join(dir, CONFIG_FILE);
  let stored: unknown;
  try {
    stored = parse(fs.readFileSync(file, 'utf8'));
  } catch {
    stored = null;
  }
  if (!isObject(stored) || !fs.existsSync(path.join(dir, METRICS_FILE))) {
    throw new LoraPlusError({
      code: 'resume/not-a-run',
      message: 'this folder is not a run folder (no config.yaml and metrics.jsonl written by a run)',
      file: dir,
      hint: 'Resume a folder that `loraplus train` created, or start a new run.',
    });
  }
  const now = parse(stringify(config)) as Record<string, unknown>; // as it would be written
  return diffConfigs([flattenConfig(stored), flattenConfig(now)]).differs.filter((k) => !RESUMABLE_CHANGES.includes(k));
}

/** Creates `dir` (its parent exists); false when it already exists. */
function makeDir(dir: string, yamlPath: string | undefined): boolean {
  try {
    fs.mkdirSync(dir);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST' && fs.statSync(dir).isDirectory()) return false;
    throw folderError(dir, err, yamlPath, path.dirname(dir));
  }
}

function isEmpty(dir: string): boolean {
  return fs.readdirSync(dir).every((n) => n === LOCK_FILE);
}

function notEmpty(dir: string, config: TrainConfig, yamlPath: string | undefined): LoraPlusError {
  const isRun = fs.existsSync(path.join(dir, METRICS_FILE));
  return new LoraPlusError({
    code: 'run/folder-not-empty',
    message: isRun
      ? `${dir} already holds a run; a new run never writes into another run's folder`
      : `${dir} is not empty; a run writes only into a new or empty folder, so nothing in it is overwritten`,
    file: dir,
    yamlPath,
    hint: isRun
      ? 'Continue it with --resume, delete it, or set another run_name.'
      : `Choose another ${yamlPath === undefined ? '--run-dir' : 'run_name'} (a new folder for the run), e.g. ${path.join(config.output_dir, 'my-run')}.`,
  });
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
