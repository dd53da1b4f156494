// The folders a run writes: checked by `loraplus validate` without creating anything, and created by the run writer
// without ever hanging. Node's recursive mkdirSync spins forever under /proc (printing nothing, deaf to SIGTERM), so
// folders are made one level at a time from the nearest existing ancestor, which must be a writable folder on a
// real, writable file system. Every failure names the folder, the reason (EACCES, EROFS, ENOSPC, a file in the way)
// and what to do.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { problem } from '../../config/problem';
import type { ConfigCheck } from '../../config/problem';
import { LoraPlusError } from '../../protocol/errors';

/** What is wrong with a folder a run would create, for a config problem or a thrown error. */
export interface FolderProblem {
  severity: 'error' | 'warning';
  code: string;
  message: string;
  hint?: string;
}

// Kernel pseudo file systems by their statfs magic (Linux): no run can be written there.
const PSEUDO: Record<number, string> = {
  0x9fa0: 'proc',
  0x62656572: 'sysfs',
  0x64626720: 'debugfs',
  0x74726163: 'tracefs',
  0x73636673: 'securityfs',
  0x27e0eb: 'cgroup',
  0x63677270: 'cgroup2',
  0x1cd1: 'devpts',
  0xcafe4a11: 'bpf',
  0x6165676c: 'pstore',
  0x62656570: 'configfs',
  0xde5e81e4: 'efivarfs',
  0x65735543: 'fusectl',
};

const errno = (err: unknown): string => (err as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN';

/** The config check: output_dir can be created and written, and run_name (when set) is not a file there. */
export const checkRunFolder: ConfigCheck = ({ config, written }) => {
  const out = checkOutputFolder(config.output_dir);
  if (out) return [problem({ ...out, path: ['output_dir'], at: written(['output_dir']) ? 'value' : 'parent' })];
  const run = config.run_name ? path.join(config.output_dir, config.run_name) : null;
  if (!run || !isFile(run)) return [];
  return [
    problem({
      severity: 'error',
      code: 'config/output-dir',
      message: `${run} is a file, not a folder for the run`,
      hint: 'Set another run_name, or move the file.',
      path: ['run_name'],
      at: 'value',
    }),
  ];
};

/**
 * Whether `dir` can be created (or, when it exists, written) as a run's output folder, without creating it: null
 * when it can. Checks the nearest existing ancestor: a folder, not on a pseudo or read-only file system, writable.
 */
export function checkOutputFolder(dir: string): FolderProblem | null {
  const target = path.resolve(dir);
  let found: { at: string; stat: fs.Stats };
  try {
    found = nearestExisting(target);
  } catch (err) {
    return describe(target, target, errno(err));
  }
  const { at, stat } = found;
  if (!stat.isDirectory()) return describe(target, at, 'ENOTDIR');
  const pseudo = pseudoFs(at);
  if (pseudo) return describe(target, at, 'EPSEUDO', pseudo);
  try {
    fs.accessSync(at, fs.constants.W_OK | fs.constants.X_OK);
  } catch (err) {
    return describe(target, at, errno(err));
  }
  return full(at) ? describe(target, at, 'ENOSPC') : null;
}

/**
 * Creates `dir` and its missing parents, one level at a time (never a recursive mkdir: it can hang), or throws a
 * LoraPlusError 'run/folder' that names the folder, the reason and what to do, at `yamlPath` of the config.
 */
export function ensureDir(dir: string, yamlPath: string | undefined = 'output_dir'): void {
  const target = path.resolve(dir);
  if (isFolder(target)) return;
  const problem = checkOutputFolder(target); // the nearest existing ancestor: a folder, writable, real
  if (problem?.severity === 'error') throw toError(target, problem, yamlPath);
  let at: string;
  try {
    at = nearestExisting(target).at;
  } catch (err) {
    throw folderError(target, err, yamlPath); // it changed since the check
  }
  const missing: string[] = [];
  for (let d = target; d !== at && path.dirname(d) !== d; d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      if (errno(err) === 'EEXIST' && isFolder(d)) continue; // made meanwhile by someone else
      throw folderError(target, err, yamlPath, errno(err) === 'EEXIST' ? d : path.dirname(d));
    }
  }
  if (!isFolder(target)) throw folderError(target, { code: 'ENOTDIR' }, yamlPath, target);
}

/** A LoraPlusError for a failed mkdir/open/write of a run folder: `at` is the folder the failure was in. */
export function folderError(dir: string, err: unknown, yamlPath: string | undefined, at = dir): LoraPlusError {
  let code = errno(err);
  // mkdir says EEXIST or ENOTDIR when a file is in the way, ENOENT when the parent is not a folder it can use.
  if (code === 'EEXIST' || (code === 'ENOENT' && isFile(at))) code = 'ENOTDIR';
  let pseudo: string | null = null;
  if (code === 'ENOENT') {
    try {
      pseudo = pseudoFs(nearestExisting(at).at); // mkdir under /proc says ENOENT
    } catch {
      pseudo = null;
    }
  }
  return toError(dir, describe(dir, at, pseudo ? 'EPSEUDO' : code, pseudo ?? undefined), yamlPath, err);
}

function toError(dir: string, p: FolderProblem, yamlPath: string | undefined, cause?: unknown): LoraPlusError {
  // The error names the folder as its file, so its message starts from there: `DIR: cannot create this folder: …`.
  const message = p.message.replace(`${dir}: `, 'this folder: ');
  return new LoraPlusError(
    { code: 'run/folder', message, file: dir, ...(yamlPath ? { yamlPath } : {}), hint: p.hint },
    { cause },
  );
}

/** The problem of creating (or writing to) `dir` when `at` (it or an ancestor) failed with `code`. */
function describe(dir: string, at: string, code: string, fsType?: string): FolderProblem {
  const verb = at === dir && isFolder(dir) ? 'cannot write to' : 'cannot create';
  const elsewhere = 'Set output_dir to a folder you can write to.';
  const error = (reason: string, hint = elsewhere): FolderProblem => ({
    severity: 'error',
    code: 'config/output-dir',
    message: `${verb} ${dir}: ${reason}`,
    hint,
  });
  switch (code) {
    case 'ENOTDIR':
      return error(
        at === dir ? 'a file has that name' : `${at} is a file`,
        'Set output_dir to a folder, or move the file.',
      );
    case 'EPSEUDO':
      return error(`${at} is on ${fsType}, a kernel pseudo file system`);
    case 'EROFS':
      return error(`${at} is on a read-only file system (EROFS)`);
    case 'EACCES':
    case 'EPERM':
      return error(`no permission to write in ${at} (${code})`, `${elsewhere} Or change its permissions.`);
    case 'ENOSPC':
      return {
        severity: 'warning',
        code: 'config/output-dir-full',
        message: `${verb} ${dir}: the disk that holds ${at} is full (ENOSPC)`,
        hint: 'Free some space, or set output_dir to a folder on another disk.',
      };
    case 'ENAMETOOLONG':
      return error('the path is longer than the file system allows (ENAMETOOLONG)');
    case 'ERR_INVALID_ARG_VALUE':
      return error('the path contains a NUL character');
    default:
      return error(`${code} in ${at}`);
  }
}

/** The folder itself or its nearest existing ancestor, with its stat (following links). */
function nearestExisting(dir: string): { at: string; stat: fs.Stats } {
  for (let at = dir; ; at = path.dirname(at)) {
    let stat: fs.Stats | undefined;
    try {
      stat = fs.statSync(at, { throwIfNoEntry: false });
    } catch (err) {
      // ENOTDIR: a file sits on the way; find it, it is the ancestor that exists.
      if (errno(err) !== 'ENOTDIR') throw err;
    }
    if (stat) return { at, stat };
    if (path.dirname(at) === at) throw Object.assign(new Error(`${at} does not exist`), { code: 'ENOENT' });
  }
}

/** The kernel pseudo file system `dir` is on, if any (Linux; elsewhere null). */
function pseudoFs(dir: string): string | null {
  if (process.platform !== 'linux') return null;
  try {
    return PSEUDO[fs.statfsSync(dir).type >>> 0] ?? null;
  } catch {
    return null;
  }
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isFile() === true;
  } catch {
    return false;
  }
}

function isFolder(p: string): boolean {
  try {
    return fs.statSync(p, { throwIfNoEntry: false })?.isDirectory() === true;
  } catch {
    return false; // ENOTDIR and the like: not a folder
  }
}

/** Whether the file system holding `dir` has no block left for an unprivileged writer. */
function full(dir: string): boolean {
  try {
    const s = fs.statfsSync(dir);
    return s.blocks > 0 && s.bavail === 0;
  } catch {
    return false;
  }
}
