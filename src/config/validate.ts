// Checks a parsed config document against the schema and returns the filled-in `TrainConfig` together with every
// problem found (not just the first), so the CLI can list them all and the editor can underline them all.
// Positions are not known here: each problem says what it points at (`at`) and load.ts maps that onto the YAML.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { configKeys, describeBounds, describeType, schema } from './schema';
import type { KeyInfo, NumberSpec, ObjectSpec, PathSpec, Spec, StringListSpec, TrainConfig } from './schema';

export type Severity = 'error' | 'warning' | 'info' | 'hint';
export type Segment = string | number;

export interface Problem {
  severity: Severity;
  code: string; // stable, e.g. 'config/unknown-key'
  message: string;
  path: Segment[]; // e.g. ['lora', 'target_modules', 2]
  yamlPath: string; // the same as text: `lora.target_modules[2]`
  hint?: string;
  at: 'key' | 'value' | 'parent'; // what to underline: the key, its value, or (missing key) the enclosing mapping
  suggestions?: string[]; // quick-fix candidates: a key name, a dotted path for a key at the wrong level, allowed values
}

export interface ValidateContext {
  configDir?: string; // relative paths resolve against it (default: the working directory)
  checkPaths?: boolean; // check that model/data/adapter paths exist (default true)
}

export interface ValidateResult {
  config: TrainConfig | null; // null whenever any problem is an error
  problems: Problem[];
}

type Report = (p: Omit<Problem, 'yamlPath'>) => void;
type Obj = Record<string, unknown>;

export function validateConfig(doc: unknown, ctx: ValidateContext = {}): ValidateResult {
  const problems: Problem[] = [];
  const report: Report = (p) => problems.push({ ...p, yamlPath: toYamlPath(p.path) });
  if (doc !== null && doc !== undefined && !isObj(doc)) {
    report({ severity: 'error', code: 'config/not-a-mapping', message: `a config must be a mapping of keys to values, got ${describeValue(doc)}`, path: [], at: 'value' });
    return { config: null, problems };
  }
  const out = checkObject(schema, doc, [], { ...ctx, configDir: path.resolve(ctx.configDir ?? '.') }, report);
  crossChecks(out, report);
  const ok = !problems.some((p) => p.severity === 'error');
  return { config: ok ? (out as unknown as TrainConfig) : null, problems };
}

/** `['lora', 'target_modules', 2]` → `lora.target_modules[2]`. */
export function toYamlPath(segments: readonly Segment[]): string {
  return segments.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : seg), '');
}

// ---- Walking the schema ----

type Ctx = Required<Pick<ValidateContext, 'configDir'>> & ValidateContext;

function checkObject(spec: ObjectSpec, value: unknown, at: Segment[], ctx: Ctx, report: Report): Obj {
  // `data:` with nothing under it parses as null; treat it like an empty section.
  const given: Obj = value === undefined || value === null ? {} : isObj(value) ? value : {};
  if (value !== undefined && value !== null && !isObj(value)) {
    report({ severity: 'error', code: 'config/type', message: `${last(at)} must be a mapping of keys, got ${describeValue(value)}`, path: at, at: 'value' });
  }
  for (const key of Object.keys(given)) if (!Object.hasOwn(spec.keys, key)) unknownKey(key, at, spec, report);

  const out: Obj = {};
  for (const [key, s] of Object.entries(spec.keys)) {
    const here = [...at, key];
    const v = given[key];
    if (s.kind === 'marker') {
      if (v !== undefined && v !== s.value) {
        report({ severity: 'warning', code: 'config/marker', message: `${key}: ${s.value} is the only known format version, got ${describeValue(v)}`, path: here, at: 'value' });
      }
    } else if (s.kind === 'object') {
      out[key] = checkObject(s, v, here, ctx, report);
    } else if (v === undefined) {
      if (s.required) {
        report({ severity: 'error', code: 'config/missing-key', message: `missing required key '${key}'`, path: here, at: 'parent', hint: s.description });
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
  const wrongType = (hint?: string): undefined => {
    report({ severity: 'error', code: 'config/type', message: `${key} must be ${describeType(s)}, got ${describeValue(v)}`, path: at, at: 'value', hint });
    return undefined;
  };
  if (v === null) {
    if (s.nullable) return null;
    const dflt = 'default' in s && s.default !== undefined ? ` (${s.default})` : '';
    return wrongType(s.required ? 'Write a value after the colon.' : `Write a value after the colon, or delete the line to use the default${dflt}.`);
  }
  switch (s.kind) {
    case 'number':
    case 'integer':
      return checkNumber(s, v, at, report);
    case 'boolean':
      if (typeof v === 'boolean') return v;
      return wrongType(typeof v === 'string' && /^(yes|no|on|off|y|n)$/i.test(v) ? `YAML 1.2 reads '${v}' as a string; write true or false.` : undefined);
    case 'string':
      // A bare `0` or `2024` in YAML is a number; as a name or a column it means the text.
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      if (typeof v !== 'string') return wrongType();
      return v === '' ? emptyString(key, at, report) : v;
    case 'path':
      if (typeof v !== 'string') return wrongType();
      return v === '' ? emptyString(key, at, report) : checkPath(s, v, at, ctx, report);
    case 'enum': {
      if (typeof v === 'string' && s.values.includes(v)) return v;
      const close = typeof v === 'string' ? closest(v, s.values) : undefined;
      report({
        severity: 'error',
        code: 'config/enum',
        message: `${key} must be one of ${s.values.map((x) => `'${x}'`).join(', ')}, got ${describeValue(v)}${close ? `; did you mean '${close}'?` : ''}`,
        path: at,
        at: 'value',
        suggestions: close ? [close, ...s.values.filter((x) => x !== close)] : [...s.values],
      });
      return undefined;
    }
    case 'string-list':
      if (typeof v === 'string' && s.also?.includes(v)) return v;
      if (!Array.isArray(v)) return wrongType(typeof v === 'string' ? `Write a list: [${v}].` : undefined);
      return checkList(s, v, at, report);
  }
}

function checkNumber(s: NumberSpec, v: unknown, at: Segment[], report: Report): number | undefined {
  const key = String(last(at));
  // YAML 1.2 reads 2e-4 as a number already; this also accepts "2e-4" written in quotes (or from JSON).
  const n = typeof v === 'string' && /^\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?\s*$/i.test(v) ? Number(v) : v;
  const fail = (code: string, message: string): undefined => {
    report({ severity: 'error', code, message, path: at, at: 'value' });
    return undefined;
  };
  if (typeof n !== 'number') return fail('config/type', `${key} must be ${describeType(s)}, got ${describeValue(v)}`);
  if (!Number.isFinite(n)) return fail('config/range', `${key} must be a finite number, got ${n}`);
  if (s.kind === 'integer' && !Number.isInteger(n)) return fail('config/type', `${key} must be an integer, got ${n}`);
  const below = s.min !== undefined && (s.exclusiveMin ? n <= s.min : n < s.min);
  const above = s.max !== undefined && (s.exclusiveMax ? n >= s.max : n > s.max);
  if (below || above) return fail('config/range', `${key} must be${describeBounds(s)}, got ${n}`);
  return n;
}

function checkList(s: StringListSpec, v: unknown[], at: Segment[], report: Report): string[] | undefined {
  const key = String(last(at));
  const items: string[] = [];
  let ok = true;
  v.forEach((item, i) => {
    if (typeof item === 'string' && item !== '') items.push(item);
    else if (typeof item === 'number' && Number.isFinite(item)) items.push(String(item)); // labels: [0, 1]
    else {
      ok = false;
      report({ severity: 'error', code: 'config/type', message: `${key}[${i}] must be a non-empty string, got ${describeValue(item)}`, path: [...at, i], at: 'value' });
    }
  });
  if (s.minItems && v.length < s.minItems) {
    report({ severity: 'error', code: 'config/range', message: `${key} must have at least ${s.minItems} ${s.minItems === 1 ? 'entry' : 'entries'}, got ${v.length}`, path: at, at: 'value' });
    ok = false;
  }
  const dup = items.find((x, i) => items.indexOf(x) !== i);
  if (dup !== undefined) {
    report({ severity: 'error', code: 'config/duplicate', message: `${key} lists '${dup}' more than once`, path: at, at: 'value' });
    ok = false;
  }
  return ok ? items : undefined;
}

function emptyString(key: string, at: Segment[], report: Report): undefined {
  report({ severity: 'error', code: 'config/type', message: `${key} must not be empty`, path: at, at: 'value' });
  return undefined;
}

/** Resolves against the config folder (and `~`), then checks the file or folder is what the key needs. */
function checkPath(s: PathSpec, v: string, at: Segment[], ctx: Ctx, report: Report): string {
  const expanded = v === '~' || v.startsWith('~/') ? path.join(os.homedir(), v.slice(1)) : v;
  const abs = path.resolve(ctx.configDir, expanded);
  if (!s.exists || ctx.checkPaths === false) return abs;
  const { type, contains, what } = s.exists;
  const relHint = path.isAbsolute(expanded) ? undefined : `Relative paths resolve against the config file's folder (${ctx.configDir}).`;
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
    return fail('config/not-a-folder', `${what} must be a folder, but ${abs} is a file`, contains ? `Point ${String(last(at))} at the folder that holds ${contains}.` : undefined);
  }
  if (type === 'file' && !stat.isFile()) return fail('config/not-a-file', `${what} must be a file, but ${abs} is a folder`, undefined);
  if (contains && !fs.existsSync(path.join(abs, contains))) {
    return fail('config/incomplete-folder', `${abs} is not a ${what}: it has no ${contains}`, s.description);
  }
  return abs;
}

// ---- Unknown keys: did you mean? ----

let allKeys: KeyInfo[] | undefined;

/** Suggests a sibling with a close name, or the same (or close) name elsewhere in the schema: the key at the wrong level. */
function unknownKey(key: string, parent: Segment[], spec: ObjectSpec, report: Report): void {
  allKeys ??= configKeys();
  const here = [...parent, key];
  const where = parent.length ? `in ${toYamlPath(parent)}` : 'at the top level';
  const limit = key.length <= 3 ? 0 : Math.min(3, Math.max(1, Math.floor(key.length / 4)));
  let best: { info: KeyInfo; score: number; sibling: boolean } | undefined;
  for (const info of allKeys) {
    const sibling = toYamlPath(info.segments.slice(0, -1)) === toYamlPath(parent);
    const d = Math.min(...[info.key, ...(info.spec.aliases ?? [])].map((n) => distance(norm(key), norm(n))));
    const score = d + (sibling ? 0 : 0.5); // a close sibling beats a far-away key, an exact name elsewhere beats a typo here
    if (d <= limit && (!best || score < best.score)) best = { info, score, sibling };
  }
  if (best?.sibling) {
    report({ severity: 'error', code: 'config/unknown-key', message: `unknown key '${key}'; did you mean '${best.info.key}'?`, path: here, at: 'key', suggestions: [best.info.key] });
  } else if (best) {
    report({
      severity: 'error',
      code: 'config/wrong-level',
      message: `unknown key '${key}' ${where}; did you mean ${best.info.path}?`,
      path: here,
      at: 'key',
      hint: `Move it under ${toYamlPath(best.info.segments.slice(0, -1)) || 'the top level'}${best.info.key === key ? '' : ` as ${best.info.key}`}.`,
      suggestions: [best.info.path],
    });
  } else {
    report({ severity: 'error', code: 'config/unknown-key', message: `unknown key '${key}' ${where}`, path: here, at: 'key', hint: `Known keys here: ${Object.keys(spec.keys).join(', ')}.` });
  }
}

function closest(word: string, options: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: { o: string; d: number } | undefined;
  for (const o of options) {
    const d = distance(norm(word), norm(o));
    if (d <= limit && (!best || d < best.d)) best = { o, d };
  }
  return best?.o;
}

const norm = (s: string): string => s.toLowerCase().replace(/-/g, '_');

/** Damerau-Levenshtein distance (optimal string alignment: a swap of two neighbours costs 1). */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

// ---- Rules that span keys ----

function crossChecks(out: Obj, report: Report): void {
  const data = out.data as Obj;
  const training = out.training as Obj;
  const num = (o: Obj, k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : undefined);
  const lr = num(training, 'learning_rate');
  const ratio = num(training, 'loraplus_lr_ratio');
  const ratioAt = ['training', 'loraplus_lr_ratio'];
  if (ratio !== undefined && ratio < 1) {
    report({
      severity: 'error',
      code: 'config/loraplus-ratio-below-1',
      message: `loraplus_lr_ratio λ = ${ratio} is below 1: lora_B would learn slower than lora_A, the opposite of LoRA+`,
      path: ratioAt,
      at: 'value',
      hint: 'Use λ ≥ 1; 16 is the usual start (1 is plain LoRA).',
    });
  } else if (ratio === 1) {
    report({ severity: 'hint', code: 'config/plain-lora', message: 'loraplus_lr_ratio λ = 1: this is plain LoRA (lora_A and lora_B share one learning rate)', path: ratioAt, at: 'value', hint: 'LoRA+ uses λ > 1; 16 is the usual start.' });
  } else if (ratio !== undefined && ratio > 256) {
    const lrB = lr !== undefined ? `; lora_B's learning rate would be ${lr * ratio}` : '';
    report({ severity: 'warning', code: 'config/loraplus-ratio-unusual', message: `loraplus_lr_ratio λ = ${ratio} is outside the usual range [1, 256]${lrB}`, path: ratioAt, at: 'value', hint: 'LoRA+ suggests λ ≈ 16; lower it unless you have measured that this trains well.' });
  }

  // max_steps wins over epochs; with neither, train one epoch. Consumers then read exactly one of them.
  if (training.max_steps !== null && training.max_steps !== undefined) {
    if (num(training, 'epochs') !== undefined) {
      report({ severity: 'warning', code: 'config/epochs-ignored', message: `epochs is ignored because max_steps (${training.max_steps}) is set`, path: ['training', 'epochs'], at: 'value', hint: 'Delete one of the two.' });
    }
    training.epochs = null;
    const warmup = num(training, 'warmup_steps');
    if (warmup !== undefined && warmup >= (training.max_steps as number)) {
      report({ severity: 'warning', code: 'config/warmup-too-long', message: `warmup_steps (${warmup}) is not below max_steps (${training.max_steps}): the learning rate never finishes warming up`, path: ['training', 'warmup_steps'], at: 'value' });
    }
  } else if (training.epochs === null) {
    training.epochs = 1;
  }

  if (typeof data.eval === 'string' && (num(data, 'eval_fraction') ?? 0) > 0) {
    report({ severity: 'warning', code: 'config/eval-fraction-ignored', message: 'eval_fraction is ignored because data.eval is set', path: ['data', 'eval_fraction'], at: 'value' });
  }
  if (out.task === 'causal-lm') {
    for (const k of ['labels', 'text_pair_field'] as const) {
      if (data[k] !== null && data[k] !== undefined) {
        report({ severity: 'warning', code: 'config/ignored-for-task', message: `${k} is ignored for task causal-lm`, path: ['data', k], at: 'key', hint: 'Set task: sequence-classification to train a classifier.' });
      }
    }
  }
}

// ---- Small helpers ----

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function last(at: Segment[]): Segment {
  return at.length ? at[at.length - 1] : 'config';
}

/** How a wrong value is quoted back: `the string 'fast'`, `a list`, `nothing (null)`. */
function describeValue(v: unknown): string {
  if (v === null || v === undefined) return 'nothing (null)';
  if (typeof v === 'string') return `the string '${v.length > 40 ? `${v.slice(0, 40)}…` : v}'`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}
