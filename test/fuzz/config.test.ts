// Config files that pass or fail `loraplus validate` but must never crash it, hang it, or let a config through that
// breaks the engine (issue 14). Starting from the corpus (test/config/corpus/) and the New Config template, each case
// applies 1–3 mutations: renamed keys, swapped types, extreme numbers (0, -1, 1e308, NaN, Infinity, 2^31, 1e-46),
// wrong nesting, YAML anchors/aliases/bombs, deep nesting, huge strings, NUL and control bytes, odd paths, broken
// syntax. Each goes through checkConfigFile and checkConfigText (what `loraplus validate` and the editor run) and
// requireCheckedConfig (what `loraplus train` runs). "Anything else" must be 0: every problem has a line, a column
// and a YAML path (empty only for the document as a whole), no raw exception escapes, no case takes seconds, the
// three entry points agree, and a config that passes is within every bound of the schema and the rules.
//   LORAPLUS_FUZZ_N=1000 node --import tsx --test test/fuzz/config.test.ts   (prints the counts)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configKeys } from '../../src/config/keys';
import type { LocatedProblem } from '../../src/config/load';
import { LR_LIMIT, SCALE_LIMIT } from '../../src/config/rules';
import type { NumberSpec, StringSpec, TrainConfig } from '../../src/config/schema';
import { configTemplate } from '../../src/config/template';
import { checkConfigFile, checkConfigText, requireCheckedConfig } from '../../src/engine/checks/config';
import type { LoraPlusError } from '../../src/protocol/errors';
import { SHARED, SST2, STORIES } from '../helpers/shared';
import { cases, failures, fuzz, int, pick } from './harness';

const CORPUS = path.resolve(__dirname, '..', 'config', 'corpus');
/** Codes of problems about the document as a whole, which have no YAML path below the top. */
const WHOLE = new Set([
  'config/too-large',
  'config/unreadable',
  'config/yaml-syntax',
  'config/yaml-key',
  'config/yaml-alias',
  'config/yaml-too-deep',
  'config/yaml-too-large',
  'config/not-a-mapping',
]);
const SLOW_MS = 5000;

let root: string;
let bases: string[] = [];
let good: string[] = []; // the corpus files without errors, and the template
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'loraplus-fuzz-config-'));
  fs.writeFileSync(path.join(root, 'a-file'), 'x');
  // The corpus with its paths made absolute (the cases live in a temp folder), and the template.
  bases = fs
    .readdirSync(CORPUS)
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => fs.readFileSync(path.join(CORPUS, f), 'utf8').replaceAll('../../../../shared', SHARED));
  good = bases.filter((t) => !/^# expect .* error /m.test(t));
  good.push(
    configTemplate({
      configDir: root,
      model: STORIES,
      modelType: 'llama',
      family: 'llama',
      task: 'sequence-classification',
      targets: ['q_proj', 'v_proj'],
      train: path.join(SST2, 'dev.tsv'),
      evalFraction: 0.1,
      textField: 'sentence',
      labelField: 'label',
      maxLength: 64,
    }),
  );
  bases.push(good[good.length - 1]);
});
after(() => fs.rmSync(root, { recursive: true, force: true }));

// ---- mutations ------------------------------------------------------------------------------------------------

const KEYS = configKeys().map((k) => k.key);
const NUMBERS = ['0', '-1', '1e308', '-1e308', '.nan', '.inf', '-.inf', '2147483648', '4294967296', '1e-46', '1e400'];
const ODD = [
  ...NUMBERS,
  '1e-12',
  '0.5',
  '9007199254740993',
  '65537',
  '16385',
  '1e6',
  '0x10',
  '"2e-4"',
  'null',
  '~',
  'true',
  'yes',
  '[]',
  '{}',
  '[1, 2]',
  '{a: 1}',
  '""',
  '"a\\0b"',
  '!!binary aGVsbG8=',
  '!custom x',
  '*nope',
];
const PATHS = [
  '/proc/no-such',
  '/proc/no-such/x',
  '/sys/x/y',
  '/proc',
  '/dev/null',
  '""',
  '~',
  '../../../../../..',
  '"C:\\\\runs"',
  '"runs\\0x"',
  '/',
  '.',
  `${'d/'.repeat(3000)}x`,
];
const NAMES = ['..', '.', 'a/b', '"a\\0b"', '-rf', 'x'.repeat(300), '"tab\\there"', 'run-1', 'ümlaut', '"a\\nb"'];

type Mutate = (text: string, r: () => number) => [string, string];

const lineIndex = (lines: string[], r: () => number, match: RegExp): number => {
  const hits = lines.map((l, i) => (match.test(l) ? i : -1)).filter((i) => i >= 0);
  return hits.length ? pick(r, hits) : -1;
};
/** Replace the value of a random `key: value` line. */
const setValue =
  (values: (r: () => number) => string, keyMatch = /^\s*[\w-]+:\s*\S/): Mutate =>
  (text, r) => {
    const lines = text.split('\n');
    const i = lineIndex(lines, r, keyMatch);
    if (i < 0) return [text, 'no line'];
    const v = values(r);
    lines[i] = lines[i].replace(/^(\s*[\w-]+:)\s*.*$/, `$1 ${v}`);
    return [lines.join('\n'), `${lines[i].trim().slice(0, 60)}`];
  };
/** Set a top-level key: replace its line, or add one. */
const setTop = (text: string, key: string, value: string): [string, string] => {
  const re = new RegExp(`^${key}:.*$`, 'm');
  return [
    re.test(text) ? text.replace(re, `${key}: ${value}`) : `${text}\n${key}: ${value}\n`,
    `${key}: ${value.slice(0, 40)}`,
  ];
};
const keyLine = (keys: string[]) => new RegExp(`^\\s*(${keys.join('|')}):`);

const NUMERIC = keyLine(
  configKeys()
    .filter((k) => k.spec.kind === 'number' || k.spec.kind === 'integer')
    .map((k) => k.key),
);
/** Any magnitude from 1e-25 to 1e25, sometimes negative, sometimes whole: inside a key's bounds or past them. */
const magnitude = (r: () => number): string => {
  const v = 10 ** (int(r, -50, 50) / 2) * (r() < 0.1 ? -1 : 1);
  return String(r() < 0.5 ? Math.round(v) : v);
};

const MUTATIONS: Mutate[] = [
  setValue(magnitude, NUMERIC), // twice as likely: what the bounds are about
  setValue(magnitude, NUMERIC),
  // a renamed key: a typo, a random name, or another known key (a duplicate or the wrong level)
  (text, r) => {
    const lines = text.split('\n');
    const i = lineIndex(lines, r, /^\s*[\w-]+:/);
    if (i < 0) return [text, 'no key'];
    const [, indent, key] = /^(\s*)([\w-]+):/.exec(lines[i])!;
    const k = int(r, 0, key.length - 1);
    const to = pick(r, [key.slice(0, k) + key.slice(k + 1), `${key}x`, pick(r, KEYS), `k${int(r, 0, 99)}`, '<<']);
    lines[i] = lines[i].replace(/^\s*[\w-]+:/, `${indent}${to}:`);
    return [lines.join('\n'), `rename ${key} → ${to}`];
  },
  setValue((r) => pick(r, ODD)), // a type swap or an extreme value anywhere
  setValue((r) => pick(r, NUMBERS), NUMERIC),
  setValue((r) => pick(r, PATHS), keyLine(['model', 'output_dir', 'train', 'eval', 'init_adapter'])),
  (text, r) => setTop(text, 'run_name', pick(r, NAMES)),
  (text, r) =>
    setTop(text, 'output_dir', pick(r, [...PATHS, path.join(root, 'a-file'), path.join(root, 'a-file', 'x')])),
  // wrong nesting: indent or dedent a line
  (text, r) => {
    const lines = text.split('\n');
    const i = int(r, 0, lines.length - 1);
    lines[i] = r() < 0.5 ? `  ${lines[i]}` : lines[i].replace(/^ {2}/, '');
    return [lines.join('\n'), `nesting of line ${i + 1}`];
  },
  // anchors and aliases: a reuse, an undefined alias, an alias inside its anchor, a bomb
  (text, r) => {
    const kind = int(r, 0, 3);
    if (kind === 0) return [`base: &b {r: 4}\n${text}\nlora2: *b\n`, 'alias reuse'];
    if (kind === 1) return [text.replace(/(\n\s*\w+:) \S.*/, '$1 *missing'), 'undefined alias'];
    if (kind === 2) return [`${text}\nloop: &l\n  x: *l\n`, 'alias loop'];
    const depth = int(r, 3, 9);
    const bomb = ['l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]'];
    for (let d = 1; d < depth; d++)
      bomb.push(
        `l${d}: &l${d} [${Array(9)
          .fill(`*l${d - 1}`)
          .join(', ')}]`,
      );
    return [`${bomb.join('\n')}\n${text}`, `alias bomb ${depth}`];
  },
  // deep nesting: flow lists or mappings as a value, or a block section indented level by level
  (text, r) => {
    const n = pick(r, [10, 70, 500, 700, 3000, 20000]);
    if (n <= 700 && r() < 0.4) {
      const block = Array.from({ length: n }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n');
      return [`${text}\n${block} 1\n`, `block nesting ${n}`];
    }
    const deep = r() < 0.5 ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{a: '.repeat(n)}1${'}'.repeat(n)}`;
    return [setValue(() => deep)(text, r)[0], `nesting ${n}`];
  },
  // a huge string or a huge list
  (text, r) => {
    const n = pick(r, [1000, 100_000, 2_000_000]);
    const v = r() < 0.5 ? `"${'x'.repeat(n)}"` : `[${Array(Math.min(n, 200_000)).fill('q_proj').join(', ')}]`;
    return [setValue(() => v)(text, r)[0], `huge value ${n}`];
  },
  // NUL and control bytes in a key, a value or the syntax
  (text, r) => {
    const i = int(r, 0, text.length);
    const c = pick(r, ['\0', '\x01', '\x7f', '\t', '\r', '\uFEFF', '\u2028', '\uD800']);
    return [text.slice(0, i) + c + text.slice(i), `byte ${JSON.stringify(c)} at ${i}`];
  },
  // broken syntax: a deleted or duplicated span, a stray quote, bracket or colon
  (text, r) => {
    const i = int(r, 0, text.length);
    const j = Math.min(text.length, i + int(r, 1, 40));
    const what = int(r, 0, 2);
    if (what === 0) return [text.slice(0, i) + text.slice(j), `delete ${i}..${j}`];
    if (what === 1) return [text.slice(0, j) + text.slice(i, j) + text.slice(j), `duplicate ${i}..${j}`];
    return [
      text.slice(0, i) + pick(r, ['"', "'", '[', '{', ': ', '- ', '&', '*', '!', '%', '---\n', '? ']) + text.slice(i),
      `insert at ${i}`,
    ];
  },
  // a whole document that is not a mapping
  (_text, r) => [pick(r, ['', '- a\n- b\n', '42\n', '"text"\n', '~\n', '%YAML 1.1\n---\nmodel: x\n']), 'not a mapping'],
];

// ---- what must hold ---------------------------------------------------------------------------------------------

/** Why a problem is malformed, or null: it has a code, a message, a line and column in the text, a YAML path. */
function malformed(p: LocatedProblem, text: string): string | null {
  const lines = text.split(/\r\n|\r|\n/).length;
  if (!/^[a-z-]+\/[a-z0-9-]+$/.test(p.code)) return `code ${p.code}`;
  if (!p.message || /\bat \S+:\d+:\d+\)?$|ReferenceError|TypeError|RangeError|call stack/m.test(p.message))
    return `message ${p.message.slice(0, 120)}`;
  // Paths are quoted in full (they are the user's own and point somewhere); any other text is cut short.
  const words = p.message.replace(/\/\S+/g, '/…');
  if (words.length > 600) return `a message of ${words.length} characters without its paths`;
  if (!(p.line >= 1 && p.col >= 1 && p.line <= lines + 1)) return `position ${p.line}:${p.col} of ${lines} lines`;
  if (typeof p.yamlPath !== 'string' || (p.yamlPath === '' && !WHOLE.has(p.code) && p.path.length)) return 'yamlPath';
  if (p.path.length === 0 && !WHOLE.has(p.code)) return `${p.code} has no YAML path`;
  return null;
}

/** Why a config that passed is out of bounds, or null: every number within its bounds and limits, the rules. */
function outOfBounds(c: TrainConfig): string | null {
  for (const k of configKeys()) {
    const v = k.segments.reduce<unknown>((o, s) => (o as Record<string, unknown>)?.[s], c);
    const s = k.spec;
    if ((s.kind === 'number' || s.kind === 'integer') && v !== null) {
      const n = s as NumberSpec;
      if (typeof v !== 'number' || !Number.isFinite(v)) return `${k.path} = ${String(v)}`;
      const lo = Math.max(n.min ?? -Infinity, n.limit?.min ?? -Infinity);
      const hi = Math.min(n.max ?? Infinity, n.limit?.max ?? Infinity);
      if (v < lo || v > hi || (n.exclusiveMin && v === n.min) || (n.exclusiveMax && v === n.max))
        return `${k.path} = ${v}`;
    }
    if (s.kind === 'string' && typeof v === 'string') {
      const st = s as StringSpec;
      if ((st.maxLength && v.length > st.maxLength) || (st.pattern && !new RegExp(st.pattern.regex).test(v)))
        return `${k.path} = ${JSON.stringify(v).slice(0, 60)}`;
    }
    if (s.kind === 'path' && typeof v === 'string' && (v.includes('\0') || !path.isAbsolute(v))) return k.path;
  }
  const t = c.training;
  if (t.learning_rate * t.loraplus_lr_ratio > LR_LIMIT) return 'learning_rate·λ';
  const scale = c.lora.lora_alpha / (c.lora.use_rslora ? Math.sqrt(c.lora.r) : c.lora.r);
  if (scale > SCALE_LIMIT) return `scale ${scale}`;
  if (t.weight_decay * Math.max(t.learning_rate, t.learning_rate * t.loraplus_lr_ratio) >= 1) return 'decay';
  return null;
}

interface Case {
  file: string;
  text: string;
}
interface Result {
  config: TrainConfig | null;
  ms: number;
}

let made = 0;
const firstCodes: Record<string, number> = {}; // the first error of each failing case, for the report
function run({ file, text }: Case): Result {
  const t0 = Date.now();
  fs.writeFileSync(file, text);
  const fromFile = checkConfigFile(file);
  const fromText = checkConfigText(text, path.dirname(file));
  for (const p of [...fromFile.problems, ...fromText.problems]) {
    const why = malformed(p, text);
    if (why) throw new Error(`malformed problem (${why}): ${JSON.stringify(p).slice(0, 300)}`);
  }
  const codes = (ps: LocatedProblem[]) => ps.map((p) => `${p.line}:${p.col} ${p.code}`).join(', ');
  if (codes(fromFile.problems) !== codes(fromText.problems))
    throw new Error(`file and text disagree: ${codes(fromFile.problems)} | ${codes(fromText.problems)}`);
  const firstError = fromFile.problems.find((p) => p.severity === 'error');
  if (firstError) firstCodes[firstError.code] = (firstCodes[firstError.code] ?? 0) + 1;
  const hasError = firstError !== undefined;
  if (hasError === (fromFile.config !== null)) throw new Error('config and errors disagree');
  const config = requireCheckedConfig(file); // throws config/invalid when there are errors
  if (hasError) throw new Error('requireCheckedConfig passed a config with errors');
  return { config, ms: Date.now() - t0 };
}

describe('config files through validate and train', () => {
  it('give a config within bounds or problems with line, column and YAML path; nothing escapes', async () => {
    const report = await fuzz<Case>({
      n: cases(300),
      make: (r, seed) => {
        // Mostly configs that pass before the mutation, so that passing after it happens often enough to check.
        let text = r() < 0.7 ? pick(r, good) : pick(r, bases);
        const labels: string[] = [];
        for (let k = r() < 0.6 ? 1 : int(r, 2, 3); k > 0; k--) {
          const [next, label] = pick(r, MUTATIONS)(text, r);
          text = next;
          labels.push(label);
        }
        return { input: { file: path.join(root, `c${seed}-${made++}.yaml`), text }, label: labels.join('; ') };
      },
      run: (c) => run(c),
      check: (_c, result) => {
        const { config, ms } = result as Result;
        if (ms > SLOW_MS) return `took ${ms} ms`;
        return config ? outOfBounds(config) : 'no config';
      },
      where: (e: LoraPlusError, c) => {
        const errors = e.info.message.split('\n').slice(1);
        return (
          e.code === 'config/invalid' &&
          e.info.file === c.file &&
          errors.length > 0 &&
          errors.every((l) => l.startsWith(`  ${c.file}:`) && /^ {2}.*?:\d+:\d+: error: /.test(l))
        );
      },
    });
    if (process.env.LORAPLUS_FUZZ_N) console.log(JSON.stringify(firstCodes));
    assert.equal(report.counts['anything else'], 0, failures(report));
    assert.ok(report.counts.success > 0 && report.counts['clean error'] > 0, JSON.stringify(report.counts));
  });
});
