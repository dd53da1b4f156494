// One writer per run folder. A run takes `<run>/.lock` (created exclusively, holding its pid, host and start time)
// before it writes anything, and removes it when it ends; a second `train` of the same folder, or a `--resume`
// while the run still goes, is refused with who holds it. A lock whose process is gone (kill -9, a crash, a
// reboot) is stale and taken over. Under the lock, what a killed writer left half done (`<x>.tmp-<pid>` and
// `<x>.old-<pid>` around writeDirAtomic's renames) is put right.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';

export const LOCK_FILE = '.lock';

interface Holder {
  pid: number;
  host: string;
  started: string;
}

export interface RunLock {
  release(): void;
}

export function lockRun(dir: string): RunLock {
  const file = path.join(dir, LOCK_FILE);
  for (let attempt = 0; ; attempt++) {
    let fd: number;
    try {
      fd = fs.openSync(file, 'wx');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockError(dir, err);
      const held = readHolder(file);
      if (held && alive(held)) throw lockedBy(dir, held);
      fs.rmSync(file, { force: true }); // stale: its process is gone
      continue;
    }
    const me: Holder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
    fs.writeSync(fd, JSON.stringify(me));
    fs.closeSync(fd);
    const release = () => {
      process.off('exit', release);
      if (readHolder(file)?.pid === process.pid) fs.rmSync(file, { force: true });
    };
    process.on('exit', release); // a crash of this process still leaves a stale lock, which is recovered
    return { release };
  }
}

/**
 * Puts right what a killed writer left in `dir` and `dir/checkpoints`: a `<x>.old-<pid>` whose `<x>` is missing
 * was the complete folder before an interrupted replace, so it goes back; the rest (`.tmp-`, other `.old-`) goes.
 * Call it only while holding the run's lock.
 */
export function cleanLeftovers(dir: string): string[] {
  const cleaned: string[] = [];
  for (const parent of [dir, path.join(dir, 'checkpoints')]) {
    let names: string[];
    try {
      names = fs.readdirSync(parent);
    } catch {
      continue;
    }
    for (const name of names) {
      const m = /^(.+)\.(tmp|old)-\d+$/.exec(name);
      if (!m) continue;
      const [from, base] = [path.join(parent, name), path.join(parent, m[1])];
      if (m[2] === 'old' && !fs.existsSync(base)) fs.renameSync(from, base);
      else fs.rmSync(from, { recursive: true, force: true });
      cleaned.push(path.relative(dir, from));
    }
  }
  return cleaned;
}

function readHolder(file: string): Holder | null {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (isObject(v) && typeof v.pid === 'number' && typeof v.host === 'string') {
      return { pid: v.pid, host: v.host, started: typeof v.started === 'string' ? v.started : '?' };
    }
  } catch {
    // unreadable or half written: treated as stale
  }
  return null;
}

/** Whether the holder still runs. On another host we cannot tell, so it counts as alive. */
function alive(h: Holder): boolean {
  if (h.host !== os.hostname()) return true;
  if (h.pid === process.pid) return true;
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, another user's
  }
}

function lockedBy(dir: string, h: Holder): LoraPlusError {
  const who = `process ${h.pid}${h.host !== os.hostname() ? ` on ${h.host}` : ''}, since ${h.started}`;
  return new LoraPlusError({
    code: 'run/locked',
    message: `another run is writing this folder (${who})`,
    file: dir,
    hint:
      'Wait for it to end, or stop it (Ctrl-C or Stop saves a checkpoint); to train beside it, set another run_name. ' +
      `If no such process exists, delete ${path.join(dir, LOCK_FILE)}.`,
  });
}

function lockError(dir: string, err: unknown): LoraPlusError {
  const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
  return new LoraPlusError(
    {
      code: 'run/cannot-lock',
      message: `cannot create ${LOCK_FILE} in the run folder (${code})`,
      file: dir,
      hint: 'Check that the folder is writable and on a file system that supports exclusive creation.',
    },
    { cause: err },
  );
}
