// Atomic writes: a crash or a full disk mid-write leaves the old file or folder (or none), never half a checkpoint.
// Write a temp file or folder beside the target, then rename it over the target (atomic within one folder).
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

export function writeFileAtomic(path: string, data: Buffer | string): void {
  const dir = dirname(path);
  makeDirs(dir);
  // Same folder, so rename never crosses a file system; pid + random so concurrent writers don't collide.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  try {
    const fd = openSync(tmp, 'w');
    try {
      let written = 0;
      while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  syncDir(dir);
}

/**
 * Creates `dir` and its missing parents one level at a time. Node's recursive mkdirSync can spin forever (under
 * /proc, say); this fails at the first level that cannot be made, with the OS error and its path.
 */
export function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) {
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      mkdirSync(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Pretty JSON (2 spaces) with a trailing newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Writes the folder `dir` as a whole: `write` fills `<dir>.tmp-<pid>`, which one rename then puts in place. An older
 * `dir` is moved aside to `<dir>.old-<pid>` first and removed after. If `write` throws, the temp folder is removed.
 */
export function writeDirAtomic(dir: string, write: (tmp: string) => void): void {
  const tmp = startDir(dir);
  try {
    write(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  finishDir(tmp, dir);
}

/** writeDirAtomic for a `write` that is async (a merge computes its tensors on the backend). */
export async function writeDirAtomicAsync(dir: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = startDir(dir);
  try {
    await write(tmp);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  finishDir(tmp, dir);
}

// `<dir>.tmp-<pid>` and `<dir>.old-<pid>`: the run explorer and a cancelled merge know these names.
function startDir(dir: string): string {
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  makeDirs(dirname(tmp));
  mkdirSync(tmp);
  return tmp;
}

function finishDir(tmp: string, dir: string): void {
  const old = `${dir}.old-${process.pid}`;
  if (existsSync(dir)) renameSync(dir, old);
  renameSync(tmp, dir);
  rmSync(old, { recursive: true, force: true });
}

// Persist the rename itself. Best effort: Windows cannot open a folder for fsync, and the data is already safe.
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // ignored on purpose, see above
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
