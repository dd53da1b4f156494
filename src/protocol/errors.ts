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
  return { code: 'internal', message: e.message };
}
