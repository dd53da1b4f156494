// What every check reports: a problem with a severity, a stable code, the YAML path it is about and, where one
// edit repairs it, a machine-readable fix. Positions come later (load.ts maps `path` + `at` onto the YAML), so the
// schema checks, the rules between keys and the engine's checks against the model and data all report the same way.
import { stringify } from 'yaml';
import type { TrainConfig } from './schema';

export type Severity = 'error' | 'warning' | 'info' | 'hint';
export type Segment = string | number;

/** A value a fix writes: a scalar or a flow list (`[q_proj, v_proj]`). */
export type FixValue = string | number | boolean | null | string[];

/**
 * One edit that repairs a problem, for the editor's quick fixes (fixes.ts turns it into text edits):
 * - replaceKey: rename the key the problem points at (a typo);
 * - moveKey: move the key and its value to `to`, a full path that may rename it (`learning_rate` at the top level);
 * - setValue: replace the value (or list item) at the problem's path;
 * - addKey: insert the key at `path` with `value` (`text` is the line, `key: value`), creating missing sections on
 *   the way;
 * - removeKey: delete the key and its value (a value that is ignored, or null where the default is wanted).
 */
export type Fix =
  | { kind: 'replaceKey'; title: string; with: string }
  | { kind: 'moveKey'; title: string; to: string[] }
  | { kind: 'setValue'; title: string; value: FixValue }
  | { kind: 'addKey'; title: string; path: string[]; value: FixValue; text: string }
  | { kind: 'removeKey'; title: string };

export interface Problem {
  severity: Severity;
  code: string; // stable, e.g. 'config/unknown-key'
  message: string;
  path: Segment[]; // e.g. ['lora', 'target_modules', 2]
  yamlPath: string; // the same as text: `lora.target_modules[2]`
  hint?: string;
  at: 'key' | 'value' | 'parent'; // what to underline: the key, its value, or (missing key) the enclosing mapping
  // Quick-fix candidates: a key name, a dotted path for a key at the wrong level, allowed values.
  suggestions?: string[];
  fix?: Fix;
}

/** A problem without its yamlPath, which `problem` derives from the path. */
export type ProblemInit = Omit<Problem, 'yamlPath'>;

export function problem(p: ProblemInit): Problem {
  return { ...p, yamlPath: toYamlPath(p.path) };
}

/** An addKey fix; `text` is what the editor inserts (or offers as a completion). */
export function addKeyFix(title: string, path: string[], value: FixValue): Fix {
  return { kind: 'addKey', title, path, value, text: `${path[path.length - 1]}: ${yamlValue(value)}` };
}

/** A value as YAML text on one line: quoted only where needed, lists in flow style (`[q_proj, v_proj]`). */
export function yamlValue(value: FixValue): string {
  return stringify(value, { collectionStyle: 'flow', lineWidth: 0 })
    .trim()
    .replace(/^\[ (.*) \]$/, '[$1]');
}

/** A value or key as quoted in a message: cut to 40 characters, control characters (NUL, newlines) escaped. */
export function quote(s: string): string {
  const cut = s.length > 40 ? `${s.slice(0, 40)}…` : s;
  return cut.replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1));
}

/** `['lora', 'target_modules', 2]` → `lora.target_modules[2]`. */
export function toYamlPath(segments: readonly Segment[]): string {
  // Quoted: a key can be anything YAML allows (a NUL, a 1 MB paste), and the path is printed.
  return segments.reduce<string>(
    (s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${quote(seg)}` : quote(seg)),
    '',
  );
}

/**
 * A check that needs more than the config text (the model folder, the data files): the engine supplies these to
 * `validateConfig`, since this layer reads no models or data. `config` has defaults filled in and absolute paths;
 * `written` says whether the file itself sets a key (a problem with a default value is worded and fixed differently).
 */
export interface CheckInput {
  config: TrainConfig;
  configDir: string;
  written(path: readonly string[]): boolean;
}
export type ConfigCheck = (input: CheckInput) => Problem[];
