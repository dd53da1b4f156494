// Renaming a run renames its folder (a run's name is its folder's name everywhere). Only a folder no process writes:
// the run's lock is taken first, so a run training here, in a terminal or in another window is refused. Inside the
// folder only metrics.jsonl (run_start's run_name and run_dir, the checkpoint and end paths) and config.yaml's
// run_name name it; both are rewritten, so every view reads the new name and checkpoints stay resumable.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { writeFileAtomic } from '../../adapters/files';
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent } from '../../protocol/events';
import { TRIALS_DIR } from '../../protocol/tune';
import { LOCK_FILE, lockRun } from './lock';
import { badRunName } from './names';
import { CONFIG_FILE, METRICS_FILE } from './writer';

/**
 * Renames the run folder `dir` to `name` (beside it) and returns the new folder. Refused while a process writes the
 * run (its lock), for a tune's trial (tune.jsonl names its folder), and when the name is taken or not a folder name.
 */
export function renameRun(dir: string, name: string): string {
  const from = path.resolve(dir);
  const to = path.join(path.dirname(from), name);
  const refuse = (message: string, hint: string, code = 'run/rename') =>
    new LoraPlusError({ code, message, file: from, hint });
  const bad = badRunName(name);
  if (bad) throw refuse(`'${name}' cannot name a run folder`, bad);
  if (!fs.existsSync(path.join(from, METRICS_FILE))) throw refuse('this is not a run folder', 'Rename a run.');
  if (path.basename(path.dirname(from)) === TRIALS_DIR)
    throw refuse("a tune's trial keeps its name: the tune's tune.jsonl refers to it", 'Rename the tune instead.');
  if (to === from) return from;
  if (fs.existsSync(to)) throw refuse(`${to} already exists`, 'Choose another name.', 'run/rename-taken');
  const lock = lockRun(from); // throws run/locked while the run trains (here, in a terminal, or in another window)
  try {
    fs.renameSync(from, to);
  } catch (err) {
    lock.release();
    throw refuse(`cannot rename the folder (${(err as NodeJS.ErrnoException).code ?? String(err)})`, 'Try again.');
  }
  lock.release(); // the lock file moved with the folder: release() finds nothing at the old path
  fs.rmSync(path.join(to, LOCK_FILE), { force: true }); // ours: no other writer can have taken it meanwhile
  rewriteMetrics(to, from);
  rewriteRunName(to, name);
  return to;
}

/** run_start's run_name and run_dir, and every path under the old folder (checkpoints, final adapter). */
function rewriteMetrics(dir: string, old: string): void {
  const file = path.join(dir, METRICS_FILE);
  const name = path.basename(dir);
  const move = (p: unknown) =>
    typeof p === 'string' && (p === old || p.startsWith(old + path.sep)) ? dir + p.slice(old.length) : p;
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out = lines.map((line) => {
    let e: EngineEvent;
    try {
      e = JSON.parse(line) as EngineEvent;
    } catch {
      return line; // blank, torn or another tool's line: kept as it is
    }
    if (e?.type === 'run_start') Object.assign(e, { run_name: name, run_dir: move(e.run_dir) });
    else if (e?.type === 'checkpoint') Object.assign(e, { path: move(e.path) });
    else if (e?.type === 'end')
      Object.assign(e, { final_adapter: move(e.final_adapter), last_checkpoint: move(e.last_checkpoint) });
    else return line;
    return JSON.stringify(e);
  });
  writeFileAtomic(file, out.join('\n'));
}

/** config.yaml's run_name, when it names the folder (a resume by run_name then finds it), keeping its comments. */
function rewriteRunName(dir: string, name: string): void {
  const file = path.join(dir, CONFIG_FILE);
  if (!fs.existsSync(file)) return;
  const doc = parseDocument(fs.readFileSync(file, 'utf8'));
  const current = doc.get('run_name');
  if (typeof current !== 'string' || !current) return;
  doc.set('run_name', name);
  writeFileAtomic(file, doc.toString());
}
