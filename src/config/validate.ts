// Checks a parsed config document against the schema and returns the filled-in `TrainConfig` together with every
// problem found (not just the first), so the CLI can list them all and the editor can underline them all.
// Positions are not known here: each problem says what it points at (`at`) and load.ts maps that onto the YAML.
// Order: the schema (this file), the rules between keys (rules.ts), then any checks the caller supplies (the
// engine's checks against the model folder and the data files).
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { isObject } from '../protocol/json';
import { closest } from './distance';
import { describeBounds, describeLimit, describeType } from './keys';
import { addKeyFix, problem, quote } from './problem';
import type { ConfigCheck, FixValue, Problem, ProblemInit, Segment } from './problem';
import { checkRules } from './rules';
import { schema } from './schema';
import { unknownKey } from './unknown-key';
import type { NumberSpec, ObjectSpec, PathSpec, Spec, StringListSpec, StringSpec, TunableConfig } from './schema';
import { withAutoDefaults } from './auto';
import { LoraPlusError } from '../protocol/errors';

export type { ConfigCheck, Fix, FixValue, Problem, Segment, Severity } from './problem';
export { toYamlPath } from './problem';
export { closest, distance } from './distance';

/** No file system takes longer paths (Linux PATH_MAX); longer text is a paste gone wrong. */
const PATH_MAX = 4096;

export interface ValidateContext {
  configDir?: string; // relative paths resolve against it (default: the working directory)
  checkPaths?: boolean; // check that model/data/adapter paths exist (default true)
  checks?: readonly ConfigCheck[]; // further checks, run when every value passed the schema (unknown keys aside)
  /**
   * The folder a `model:` value names when it is not a path here: a Hub id's cached snapshot (the engine's hub
   * room; config/ cannot import it). Returns null for a value that is not a Hub id; throws a LoraPlusError when
   * the model is not (completely) in the cache.
   */
  resolveModel?: (value: string, configDir: string) => string | null;
}

export interface ValidateResult {
  config: TunableConfig | null; // null whenever any problem is an error; `auto` stays (auto.ts)
  problems: Problem[];
}

type Report = (p: ProblemInit) => void;
type Obj = Record<string, unknown>;

/** Errors that leave every value sound: the further checks can still run (a typo in one key hides nothing else). */
const KEY_ONLY = new Set(['config/unknown-key', 'config/wrong-level']);

export function validateConfig(doc: unknown, ctx: ValidateContext = {}): ValidateResult {
  const problems: Problem[] = [];
  const report: Report = (p) => problems.push(problem(p));
  if (doc !== null && doc !== undefined && !isObject(doc)) {
    report({
      severity: 'error',
      code: 'config/not-a-mapping',
      message: `a config must be a mapping of keys to values, got ${describeValue(doc)}`,
      path: [],
      at: 'value',
    });
    return { config: null, problems };
  }
  const configDir = path.resolve(ctx.configDir ?? '.');
  const out = checkObject(schema, doc, [], { ...ctx, configDir }, report);
  const sound = !problems.some((p) => p.severity === 'error' && !KEY_ONLY.has(p.code));
  const written = (at: readonly string[]): boolean => isWritten(doc, at);
  checkRules(out, written, report);
  if (sound) {
    // The checks read the model, the data and the memory, none of which depends on what `auto` will become.
    const config = withAutoDefaults(out as unknown as TunableConfig);
    for (const check of ctx.checks ?? []) problems.push(...check({ config, configDir, written }));
  }
  const ok = !problems.some((p) => p.severity === 'error');
  return { config: ok ? (out as unknown as TunableConfig) : null, problems };
}

/** Whether the document itself sets the key at `at` (to anything, null included). */
function isWritten(doc: unknown, at: readonly string[]): boolean {
  let node = doc;
  for (const seg of at) {
    if (!isObject(node) || !Object.hasOwn(node, seg)) return false;
    node = node[seg];
  }
  return true;
}

// ---- Walking the schema ----

type Ctx = Required<Pick<ValidateContext, 'configDir'>> & ValidateContext;

function checkObject(spec: ObjectSpec, value: unknown, at: Segment[], ctx: Ctx, report: Report): Obj {
  // `data:` with nothing under it parses as null; treat it like an empty section.
  const given: Obj = value === undefined || value === null ? {} : isObject(value) ? value : {};
  if (value !== undefined && value !== null && !isObject(value)) {
    report({
      severity: 'error',
      code: 'config/type',
      message: `${last(at)} must be a mapping of keys, got ${describeValue(value)}`,
      path: at,
      at: 'value',
    });
  }
  for (const key of Object.keys(given)) if (!Object.hasOwn(spec.keys, key)) unknownKey(key, at, spec, report);

  const out: Obj = {};
  for (const [key, s] of Object.entries(spec.keys)) {
    const here = [...at, key];
    const v = given[key];
    if (s.kind === 'marker') {
      if (v !== undefined && v !== s.value) {
        report({
          severity: 'warning',
          code: 'config/marker',
          message: `${key}: ${s.value} is the only known format version, got ${describeValue(v)}`,
          path: here,
          at: 'value',
          fix: { kind: 'setValue', title: `Set ${key} to ${s.value}`, value: s.value },
        });
      }
    } else if (s.kind === 'object') {
      out[key] = checkObject(s, v, here, ctx, report);
    } else if (v === undefined) {
      if (s.required) {
        const fix = addKeyFix(`Add ${key}`, here.map(String), s.placeholder ?? null);
        report({
          severity: 'error',
          code: 'config/missing-key',
          message: `missing required key '${key}'`,
          path: here,
          at: 'parent',
          hint: s.description,
          fix,
        });
      } else if (s.kind === 'path' && typeof s.default === 'string') {
        out[key] = path.resolve(ctx.configDir, s.default); // output_dir: 'runs' lands next to the config too
      } else out[key] = s.default ?? null;
    } else {
      out[key] = checkValue(s, v, here, ctx, report);
    }
  }
  return out;
}

/** The value to put in the config (coerced, resolved), or undefined when it is wrong (and reported). */
function checkValue(s: Exclude<Spec, ObjectSpec>, v: unknown, at: Segment[], ctx: Ctx, report: Report): unknown {
  const key = String(last(at));
  const wrongType = (hint?: string, fix?: Problem['fix']): undefined => {
    report({
      severity: 'error',
      code: 'config/type',
      message: `${key} must be ${describeType(s)}, got ${describeValue(v)}`,
      path: at,
      at: 'value',
      hint,
      ...(fix ? { fix } : {}),
    });
    return undefined;
  };
  if (v === null) {
    if (s.nullable) return null;
    const dflt = 'default' in s && s.default !== undefined ? ` (${s.default})` : '';
    if (s.required) return wrongType('Write a value after the colon.');
    return wrongType(`Write a value after the colon, or delete the line to use the default${dflt}.`, {
      kind: 'removeKey',
      title: `Delete ${key} to use the default${dflt}`,
    });
  }
  switch (s.kind) {
    case 'number':
    case 'integer':
      return checkNumber(s, v, at, report);
    case 'boolean':
      if (typeof v === 'boolean') return v;
      if (typeof v === 'string' && /^(yes|no|on|off|y|n)$/i.test(v)) {
        const b = /^(yes|on|y)$/i.test(v);
        return wrongType(`YAML 1.2 reads '${v}' as a string; write true or false.`, {
          kind: 'setValue',
          title: `Write ${b}`,
          value: b,
        });
      }
      return wrongType();
    case 'string':
      // A bare `0` or `2024` in YAML is a number; as a name or a column it means the text.
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      if (typeof v !== 'string') return wrongType();
      return v === '' ? emptyString(key, at, report) : checkString(s, v, at, report);
    case 'path':
      if (typeof v !== 'string') return wrongType();
      return v === '' ? emptyString(key, at, report) : checkPath(s, v, at, ctx, report);
    case 'enum': {
      if (typeof v === 'string' && s.values.includes(v)) return v;
      const close = typeof v === 'string' ? closest(v, s.values) : undefined;
      report({
        severity: 'error',
        code: 'config/enum',
        message:
          `${key} must be one of ${s.values.map((x) => `'${x}'`).join(', ')}, ` +
          `got ${describeValue(v)}${close ? `; did you mean '${close}'?` : ''}`,
        path: at,
        at: 'value',
        suggestions: close ? [close, ...s.values.filter((x) => x !== close)] : [...s.values],
        ...(close ? { fix: { kind: 'setValue', title: `Change to ${close}`, value: close } } : {}),
      });
      return undefined;
    }
    case 'string-list':
      if (typeof v === 'string' && s.also?.includes(v)) return v;
      if (typeof v === 'string')
        return wrongType(`Write a list: [${v}].`, { kind: 'setValue', title: `Write a list: [${v}]`, value: [v] });
      if (!Array.isArray(v)) return wrongType();
      return checkList(s, v, at, report);
  }
}

function checkNumber(s: NumberSpec, v: unknown, at: Segment[], report: Report): number | 'auto' | undefined {
  const key = String(last(at));
  if (s.auto && v === 'auto') return v; // a tune picks it (auto.ts)
  // YAML 1.2 reads 2e-4 as a number already; this also accepts "2e-4" written in quotes (or from JSON).
  const n = typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : v;
  const fail = (code: string, message: string, value?: FixValue): undefined => {
    report({
      severity: 'error',
      code,
      message,
      path: at,
      at: 'value',
      ...(value === undefined ? {} : { fix: { kind: 'setValue', title: `Set ${key} to ${value}`, value } }),
    });
    return undefined;
  };
  if (typeof n !== 'number' && s.auto) {
    // The hint says that `auto` is a value here too (the message keeps to the numbers, as the hover does).
    const word = typeof v === 'string' && v.trim().toLowerCase() === 'auto';
    report({
      severity: 'error',
      code: 'config/type',
      message: `${key} must be ${describeType(s)}, got ${describeValue(v)}`,
      path: at,
      at: 'value',
      hint: 'auto lets a tune pick it (loraplus tune, or loraplus train, which tunes first).',
      ...(word ? { fix: { kind: 'setValue', title: 'Write auto', value: 'auto' } } : {}),
    });
    return undefined;
  }
  if (typeof n !== 'number') return fail('config/type', `${key} must be ${describeType(s)}, got ${describeValue(v)}`);
  if (!Number.isFinite(n)) return fail('config/range', `${key} must be a finite number, got ${n}`);
  if (s.kind === 'integer' && !Number.isInteger(n)) return fail('config/type', `${key} must be an integer, got ${n}`);
  const below = s.min !== undefined && (s.exclusiveMin ? n <= s.min : n < s.min);
  const above = s.max !== undefined && (s.exclusiveMax ? n >= s.max : n > s.max);
  // The nearest allowed value is a fix only at an inclusive bound (there is no nearest number above an open one).
  const nearest = below ? (s.exclusiveMin ? undefined : s.min) : s.exclusiveMax ? undefined : s.max;
  if (below || above) return fail('config/range', `${key} must be${describeBounds(s)}, got ${n}`, nearest);
  const { min, max, why } = s.limit ?? {};
  if ((min !== undefined && n < min) || (max !== undefined && n > max)) {
    // The nearest limit is rarely what was meant (r: 1e6 → 16384): offer the default instead.
    const dflt = typeof s.default === 'number' ? s.default : undefined;
    report({
      severity: 'error',
      code: 'config/range',
      message: `${key} must be${describeLimit(s)}, got ${n}`,
      path: at,
      at: 'value',
      hint: why,
      ...(dflt === undefined
        ? {}
        : { fix: { kind: 'setValue', title: `Set ${key} to ${dflt} (the default)`, value: dflt } }),
    });
    return undefined;
  }
  return n;
}

function checkString(s: StringSpec, v: string, at: Segment[], report: Report): string | undefined {
  const key = String(last(at));
  const fail = (code: string, message: string, hint?: string): undefined => {
    report({ severity: 'error', code, message, path: at, at: 'value', hint });
    return undefined;
  };
  if (s.maxLength !== undefined && v.length > s.maxLength)
    return fail('config/range', `${key} must be at most ${s.maxLength} characters, got ${v.length}`);
  if (s.pattern && !new RegExp(s.pattern.regex).test(v))
    return fail('config/pattern', `${key} must be ${s.pattern.what}, got ${describeValue(v)}`, s.pattern.hint);
  return v;
}

function checkList(s: StringListSpec, v: unknown[], at: Segment[], report: Report): string[] | undefined {
  const key = String(last(at));
  const items: string[] = [];
  let ok = true;
  v.forEach((item, i) => {
    if (typeof item === 'string' && item !== '') items.push(item);
    else if (typeof item === 'number' && Number.isFinite(item))
      items.push(String(item)); // labels: [0, 1]
    else {
      ok = false;
      report({
        severity: 'error',
        code: 'config/type',
        message: `${key}[${i}] must be a non-empty string, got ${describeValue(item)}`,
        path: [...at, i],
        at: 'value',
      });
    }
  });
  if (s.minItems && v.length < s.minItems) {
    report({
      severity: 'error',
      code: 'config/range',
      message: `${key} must have at least ${s.minItems} ${s.minItems === 1 ? 'entry' : 'entries'}, got ${v.length}`,
      path: at,
      at: 'value',
    });
    ok = false;
  }
  const seen = new Set<string>();
  const dup = items.find((x) => seen.size === seen.add(x).size); // a Set: lists can be long
  if (dup !== undefined) {
    const unique = [...new Set(items)];
    report({
      severity: 'error',
      code: 'config/duplicate',
      message: `${key} lists '${dup}' more than once`,
      path: at,
      at: 'value',
      ...(ok ? { fix: { kind: 'setValue', title: `Remove the repeated '${dup}'`, value: unique } } : {}),
    });
    ok = false;
  }
  return ok ? items : undefined;
}

function emptyString(key: string, at: Segment[], report: Report): undefined {
  report({ severity: 'error', code: 'config/type', message: `${key} must not be empty`, path: at, at: 'value' });
  return undefined;
}

/** Resolves against the config folder (and `~`), then checks the file or folder is what the key needs. */
function checkPath(s: PathSpec, v: string, at: Segment[], ctx: Ctx, report: Report): string | undefined {
  if (s.names?.includes(v)) return v;
  const bad = v.includes('\0')
    ? 'contains a NUL character'
    : v.length > PATH_MAX
      ? `is ${v.length} characters long`
      : '';
  if (bad) {
    const message = `${String(last(at))} ${bad}, which no file system accepts in a path`;
    report({ severity: 'error', code: 'config/bad-path', message, path: at, at: 'value' });
    return undefined;
  }
  const expanded = v === '~' || v.startsWith('~/') ? path.join(os.homedir(), v.slice(1)) : v;
  let abs = path.resolve(ctx.configDir, expanded);
  if (s.hub && ctx.resolveModel && ctx.checkPaths !== false) {
    try {
      abs = ctx.resolveModel(v, ctx.configDir) ?? abs;
    } catch (err) {
      if (!(err instanceof LoraPlusError)) throw err;
      report({
        severity: 'error',
        code: err.code,
        message: err.info.message,
        path: at,
        at: 'value',
        hint: err.info.hint,
      });
      return undefined;
    }
  }
  if (!s.exists || ctx.checkPaths === false) return abs;
  const { type, contains, what } = s.exists;
  const relHint = path.isAbsolute(expanded)
    ? undefined
    : `Relative paths resolve against the config file's folder (${ctx.configDir}).`;
  const fail = (code: string, message: string, hint = relHint): string => {
    report({ severity: 'error', code, message, path: at, at: 'value', hint });
    return abs;
  };
  let stat: fs.Stats;
  try {
    stat = fs.statSync(abs);
  } catch {
    return fail('config/not-found', `${what} not found: ${abs}`);
  }
  if (type === 'dir' && !stat.isDirectory()) {
    return fail(
      'config/not-a-folder',
      `${what} must be a folder, but ${abs} is a file`,
      contains ? `Point ${String(last(at))} at the folder that holds ${contains}.` : undefined,
    );
  }
  if (type === 'file' && !stat.isFile())
    return fail('config/not-a-file', `${what} must be a file, but ${abs} is a folder`, undefined);
  if (contains && !fs.existsSync(path.join(abs, contains))) {
    return fail('config/incomplete-folder', `${abs} is not a ${what}: it has no ${contains}`, s.description);
  }
  return abs;
}

// ---- Small helpers ----

function last(at: Segment[]): Segment {
  return at.length ? at[at.length - 1] : 'config';
}

/** How a wrong value is quoted back: `the string 'fast'`, `a list`, `nothing (null)`. */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (typeof v === 'string') return `the string '${quote(v)}'`;
  if (Array.isArray(v)) return 'a list';
  if (ArrayBuffer.isView(v)) return 'binary data';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
