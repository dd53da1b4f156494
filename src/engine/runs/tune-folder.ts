// A tune's folder: `<output_dir>/<tune name>/` with tune.jsonl (one TuneEvent a line, src/protocol/tune.ts) and
// trials/<id>/, one run folder per grid cell. The tune engine (src/engine/tune/, TensorFlow.js) writes it through
// openTuneFolder; everything that only reads it (the CLI's table, the VS Code tune explorer and dashboard) starts
// from readTuneEvents and summarizeTuneFolder here, which load no TensorFlow.js.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';
import {
  summarizeTune,
  TRIALS_DIR,
  TUNE_FILE,
  isTuneEvent,
  type TuneEvent,
  type TuneSummary,
} from '../../protocol/tune';
import { ensureDir, folderError } from '../checks/paths';
import { lockRun } from './lock';
import { METRICS_FILE } from './writer';
import { RECENT_MS } from './summary';

export interface TuneFolder {
  dir: string;
  name: string;
  trialsDir: string;
  emit(e: TuneEvent): void; // appends to tune.jsonl
  close(): void; // releases the folder's lock
}

/** True when `dir` holds a tune (its tune.jsonl). */
export function isTuneDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, TUNE_FILE));
}

/**
 * A new tune's folder, created here and locked (one writer, as for a run): `dir` when given, which must be new or
 * empty; else `<parent>/<name>`, with -2, -3, … when that is taken.
 */
export function openTuneFolder(dir: string, named: boolean): TuneFolder {
  ensureDir(path.dirname(dir), 'output_dir');
  for (let i = 1; ; i++) {
    const candidate = i === 1 ? dir : `${dir}-${i}`;
    let made = false;
    try {
      fs.mkdirSync(candidate);
      made = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw folderError(candidate, err, 'output_dir');
    }
    if (!made && !named) continue;
    const lock = lockRun(candidate);
    if (!made && fs.readdirSync(candidate).some((n) => n !== '.lock')) {
      lock.release();
      throw new LoraPlusError({
        code: 'tune/folder-not-empty',
        message: `${candidate} is not empty; a tune writes only into a new or empty folder`,
        file: candidate,
        hint: 'Choose another --tune-dir (or run_name), or delete the old tune.',
      });
    }
    const file = path.join(candidate, TUNE_FILE);
    fs.writeFileSync(file, '');
    const trialsDir = path.join(candidate, TRIALS_DIR);
    fs.mkdirSync(trialsDir, { recursive: true });
    return {
      dir: candidate,
      name: path.basename(candidate),
      trialsDir,
      emit: (e) => fs.appendFileSync(file, `${JSON.stringify(e)}\n`),
      close: () => lock.release(),
    };
  }
}

/** The tune's events (a torn last line from a crash is skipped; lines that are not tune events too). */
export function readTuneEvents(dir: string): TuneEvent[] {
  const file = path.join(dir, TUNE_FILE);
  if (!fs.existsSync(file)) return [];
  const out: TuneEvent[] = [];
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    if (!line.trim()) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      break;
    }
    if (isTuneEvent(v)) out.push(v);
  }
  return out;
}

/**
 * The tune's summary from its files. Without a tune_end it is running while a process is known to write it
 * (`alive`), else while tune.jsonl or a trial's metrics.jsonl changed in the last RECENT_MS, else interrupted.
 */
export function summarizeTuneFolder(dir: string, alive?: boolean): TuneSummary {
  return summarizeTune(readTuneEvents(dir), alive ?? Date.now() - lastWrite(dir) < RECENT_MS);
}

/** The newest mtime (ms) of tune.jsonl and the trials' metrics.jsonl (0 when none is there). */
export function lastWrite(dir: string): number {
  const files = [path.join(dir, TUNE_FILE)];
  const trials = path.join(dir, TRIALS_DIR);
  if (fs.existsSync(trials)) for (const n of fs.readdirSync(trials)) files.push(path.join(trials, n, METRICS_FILE));
  let newest = 0;
  for (const f of files) {
    try {
      newest = Math.max(newest, fs.statSync(f).mtimeMs);
    } catch {
      // a trial not started yet
    }
  }
  return newest;
}
