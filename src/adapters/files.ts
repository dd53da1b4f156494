// Atomic file writes: a crash or a full disk mid-write leaves the old file (or none), never half a checkpoint.
// Write a temp file beside the target, fsync it, then rename over the target (atomic within one folder).
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export function writeFileAtomic(path: string, data: Buffer | string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true });
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

/** Pretty JSON (2 spaces) with a trailing newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
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
