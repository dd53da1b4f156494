// One error type for everything a user can get wrong: what went wrong, where (file, line, YAML path) and what to do.
// It crosses process boundaries as plain data (`toErrorInfo`), so the CLI, the extension host and the dashboard
// all show the same message.

export interface ErrorInfo {
  code: string; // stable, e.g. 'safetensors/bad-header', 'config/invalid'
  message: string; // what went wrong, one sentence
  file?: string; // where: a file path ...
  line?: number; // ... and a 1-based line, when known
  yamlPath?: string; // or a config path like `training.learning_rate`
  hint?: string; // what to do about it
}

export class LoraPlusError extends Error {
  constructor(
    readonly info: ErrorInfo,
    options?: { cause?: unknown },
  ) {
    super(formatError(info), options);
    this.name = 'LoraPlusError';
  }

  get code(): string {
    return this.info.code;
  }
}

/** `file:line: message (at yaml.path). hint` — the one-line form every front end prints. */
export function formatError(info: ErrorInfo): string {
  const where = info.file ? `${info.file}${info.line ? `:${info.line}` : ''}: ` : '';
  const path = info.yamlPath ? ` (at ${info.yamlPath})` : '';
  const hint = info.hint ? ` ${info.hint}` : '';
  return `${where}${info.message}${path}.${hint}`.replace(/\.\.(\s|$)/g, '.$1');
}

export function toErrorInfo(err: unknown): ErrorInfo {
  if (err instanceof LoraPlusError) return err.info;
  const e = err instanceof Error ? err : new Error(String(err));
  return fileSystemError(e) ?? { code: 'internal', message: e.message };
}

/** What the operating system said about a file, in words, with the file: a full disk, no permission, ... */
const FS_ERRORS: Record<string, [string, string]> = {
  ENOSPC: ['no space left on the device', 'Free some space (old checkpoints: save_total_limit), then resume.'],
  EDQUOT: ['the disk quota is used up', 'Free some space, then resume.'],
  EACCES: ['permission denied', 'Check the permissions of the file and its folder, or choose another folder.'],
  EPERM: ['operation not permitted', 'Check the permissions of the file and its folder, or choose another folder.'],
  EROFS: ['the file system is read-only', 'Choose a folder on a writable file system (output_dir).'],
  EMFILE: ['too many open files', 'Close other programs or raise the limit (ulimit -n), then resume.'],
  ENOTDIR: ['a part of the path is a file, not a folder', 'Check the path.'],
  EISDIR: ['this is a folder, not a file', 'Check the path.'],
  ENOENT: ['no such file or folder', 'Check the path.'],
};

function fileSystemError(e: Error): ErrorInfo | null {
  const { code, path } = e as Error & { code?: string; path?: string }; // a Node fs error
  const known = code ? FS_ERRORS[code] : undefined;
  if (!known) return null;
  return { code: `fs/${code!.toLowerCase()}`, message: known[0], file: path, hint: known[1] };
}
