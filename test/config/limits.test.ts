// Configs that used to pass `validate` and then fail or hang (issue 14): every number has the limits past which the
// engine breaks, in the schema (so the JSON Schema and the hovers show them); the rules bound the products of keys;
// run_name is a folder name; YAML the parser throws on or chokes on is a problem with a line and a YAML path; and
// a divergence names the setting that is out of range. Each case gives exactly one problem.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { divergenceCause } from '../../src/config/diverged';
import { docsFor } from '../../src/config/docs';
import { toJsonSchema } from '../../src/config/jsonschema';
import { configKeys } from '../../src/config/keys';
import { configFromObject, parseConfigText } from '../../src/config/load';
import type { LocatedProblem } from '../../src/config/load';
import type { NumberSpec } from '../../src/config/schema';
import { runCli } from '../helpers/cli';

const root = mkdtempSync(join(tmpdir(), 'loraplus-limits-'));
mkdirSync(join(root, 'model'));
writeFileSync(join(root, 'model', 'config.json'), '{}');
writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = 'model: ./model\ndata:\n  train: train.jsonl\n';
const problems = (text: string, base = BASE): LocatedProblem[] => parseConfigText(`${base}${text}`, root).problems;
/** The one problem of a config (fails when there are none or several). */
function one(text: string, base = BASE): LocatedProblem {
  const ps = problems(text, base);
  assert.equal(ps.length, 1, `expected one problem, got ${JSON.stringify(ps, null, 1)}`);
  return ps[0];
}
const numbers = configKeys().filter((k) => k.spec.kind === 'number' || k.spec.kind === 'integer');
/** `section:\n  key: value\n` for a dotted key (top-level keys need no section). */
const yamlOf = (segments: string[], value: string): string =>
  segments.length === 1 ? `${segments[0]}: ${value}\n` : `${segments[0]}:\n  ${segments[1]}: ${value}\n`;

describe('limits of every number, in the schema', () => {
  test('each limit lies inside its bounds, and the default inside the limit', () => {
    for (const k of numbers) {
      const s = k.spec as NumberSpec;
      if (!s.limit) continue;
      const { min, max, why } = s.limit;
      assert.ok(why.length > 40, `${k.path}: say why`);
      if (min !== undefined) assert.ok(s.min === undefined || min >= s.min, k.path);
      if (max !== undefined) assert.ok(s.max === undefined || max <= s.max, k.path);
      if (typeof s.default === 'number') {
        assert.ok(min === undefined || s.default >= min, `${k.path}: default below the limit`);
        assert.ok(max === undefined || s.default <= max, `${k.path}: default above the limit`);
      }
    }
  });

  test('a value past a limit is one error at the value, with why and the default as its fix', () => {
    const cases: [string, string, string][] = [
      ['lora.r', '1000000', 'r must be ≤ 16384, got 1000000'],
      ['lora.r', '2147483648', 'r must be ≤ 16384, got 2147483648'],
      ['lora.lora_alpha', '1e6', 'lora_alpha must be ≤ 65536, got 1000000'],
      ['lora.lora_dropout', '0.95', 'lora_dropout must be ≤ 0.9, got 0.95'],
      ['training.adam_epsilon', '1e-46', 'adam_epsilon must be in [1e-16, 1], got 1e-46'],
      ['training.adam_epsilon', '10', 'adam_epsilon must be in [1e-16, 1], got 10'],
      ['training.weight_decay', '5', 'weight_decay must be ≤ 1, got 5'],
      ['training.learning_rate', '1e38', 'learning_rate must be in [1e-9, 1], got 1e+38'],
      ['training.learning_rate', '1e-12', 'learning_rate must be in [1e-9, 1], got 1e-12'],
      ['training.loraplus_lr_embedding', '3', 'loraplus_lr_embedding must be ≤ 1, got 3'],
      ['training.batch_size', '2147483648', 'batch_size must be ≤ 65536, got 2147483648'],
      ['training.gradient_accumulation_steps', '1e9', 'gradient_accumulation_steps must be ≤ 65536, got 1000000000'],
      ['training.max_steps', '1e15', 'max_steps must be ≤ 1000000000, got 1000000000000000'],
      ['training.epochs', '1e308', 'epochs must be ≤ 1000000, got 1e+308'],
      ['training.warmup_steps', '1e12', 'warmup_steps must be ≤ 1000000000, got 1000000000000'],
      ['training.seed', '-1', 'seed must be in [0, 4294967295], got -1'],
      ['training.seed', '1e300', 'seed must be in [0, 4294967295], got 1e+300'],
      ['data.max_length', '2147483648', 'max_length must be ≤ 131072, got 2147483648'],
    ];
    for (const [dotted, value, message] of cases) {
      const segments = dotted.split('.');
      const p = one(dotted.startsWith('data.') ? `  ${segments[1]}: ${value}\n` : yamlOf(segments, value));
      assert.deepEqual([p.severity, p.code, p.yamlPath, p.message], ['error', 'config/range', dotted, message]);
      const s = numbers.find((k) => k.path === dotted)!.spec as NumberSpec;
      assert.equal(p.hint, s.limit!.why, dotted);
      if (typeof s.default === 'number') assert.deepEqual(p.fix && 'value' in p.fix && p.fix.value, s.default);
      assert.ok(p.line > 1 && p.col > 1, `${dotted}: at the value`);
    }
  });

  test('the JSON Schema states the tighter bound, and the hover says why', () => {
    const js = toJsonSchema() as {
      properties: Record<string, { properties: Record<string, Record<string, unknown>> }>;
    };
    const lora = js.properties.lora.properties;
    const t = js.properties.training.properties;
    assert.deepEqual([lora.r.minimum, lora.r.maximum], [1, 16384]);
    assert.deepEqual(
      [t.adam_epsilon.minimum, t.adam_epsilon.maximum, t.adam_epsilon.exclusiveMinimum],
      [1e-16, 1, undefined],
    );
    assert.deepEqual([lora.lora_dropout.minimum, lora.lora_dropout.maximum], [0, 0.9]);
    assert.deepEqual([t.learning_rate.minimum, t.learning_rate.maximum], [1e-9, 1]);
    const runName = (js.properties as unknown as Record<string, Record<string, unknown>>).run_name;
    assert.deepEqual([runName.maxLength, runName.pattern], [100, '^[A-Za-z0-9][A-Za-z0-9._-]*$']);
    assert.match(docsFor(['lora', 'r'])!.markdown, /Limit: ≤ 16384\. A rank above min\(in, out\)/);
    assert.match(docsFor(['training', 'adam_epsilon'])!.markdown, /Limit: in \[1e-16, 1\]\. .*1\.2e-38/);
    assert.match(docsFor(['run_name'])!.markdown, /Must be a folder name .* at most 100 characters\./);
  });
});

describe('limits between keys (rules)', () => {
  test("lora_B's learning rate learning_rate·λ past 1 is one error, at the factor out of its usual range", () => {
    const lr = one('training:\n  learning_rate: 0.1\n');
    assert.deepEqual(
      [lr.code, lr.yamlPath, lr.line, lr.col],
      ['config/loraplus-lr-too-large', 'training.learning_rate', 5, 18],
    );
    assert.match(lr.message, /learning_rate·λ = 0\.1 × 16 = 1\.6 is more than 1/);
    const ratio = one('training:\n  learning_rate: 0.01\n  loraplus_lr_ratio: 1000\n'); // not also "unusual λ"
    assert.deepEqual([ratio.code, ratio.yamlPath], ['config/loraplus-lr-too-large', 'training.loraplus_lr_ratio']);
  });

  test('weight decay that zeroes or flips the weights; a clip norm that stalls training', () => {
    const wd = one('training:\n  learning_rate: 0.05\n  loraplus_lr_ratio: 20\n  weight_decay: 1\n');
    assert.deepEqual(
      [wd.severity, wd.code, wd.yamlPath],
      ['error', 'config/weight-decay-too-large', 'training.weight_decay'],
    );
    assert.deepEqual(problems('training:\n  weight_decay: 1\n'), []); // lr_B 3.2e-3: decays by 0.3% a step
    const clip = one('training:\n  max_grad_norm: 1e-46\n');
    assert.deepEqual(
      [clip.severity, clip.code, clip.yamlPath],
      ['warning', 'config/clip-too-small', 'training.max_grad_norm'],
    );
    assert.deepEqual(problems('training:\n  max_grad_norm: 0\n'), []);
  });

  test('a scale lora_alpha / r past 256 is an error (instead of the warning), at lora_alpha', () => {
    const p = one('lora:\n  r: 8\n  lora_alpha: 4096\n');
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/adapter-scale-too-large', 'lora.lora_alpha']);
    assert.match(p.message, /= 4096 \/ 8 = 512 scales the update up more than 256×/);
    assert.equal(one('lora:\n  r: 8\n  lora_alpha: 2048\n').severity, 'warning'); // 256 itself: unusual only
  });
});

describe('run_name is one folder name; paths have no NUL', () => {
  test('a NUL, a slash, `..`, a flag, 300 characters: one problem at run_name each', () => {
    for (const [value, code] of [
      ['"a\\0b"', 'config/pattern'],
      ['a/b', 'config/pattern'],
      ['..', 'config/pattern'],
      ['-rf', 'config/pattern'],
      ['x'.repeat(300), 'config/range'],
    ]) {
      const p = one(`run_name: ${value}\n`);
      assert.deepEqual([p.code, p.yamlPath, p.line, p.col], [code, 'run_name', 4, 11], value);
      assert.doesNotMatch(p.message, /\0/);
    }
    assert.match(one('run_name: "a\\0b"\n').message, /got the string 'a\\u0000b'/);
    assert.deepEqual(problems('run_name: 20260101-lora_r8.v2\n'), []);
  });

  test('a NUL in a path is a problem at its key, not a "not found"', () => {
    const p = one('output_dir: "runs\\0x"\n');
    assert.deepEqual(
      [p.code, p.yamlPath, p.message],
      ['config/bad-path', 'output_dir', 'output_dir contains a NUL character, which no file system accepts in a path'],
    );
  });
});

describe('YAML the parser throws or chokes on: a problem with a line and a YAML path', () => {
  const bomb = [
    'a: &a [x, x, x, x, x, x, x, x, x]',
    ...'bcdefgh'.split('').map((c, i) => {
      const prev = 'abcdefgh'[i];
      return `${c}: &${c} [${Array(9).fill(`*${prev}`).join(', ')}]`;
    }),
  ].join('\n');

  test('an alias bomb (billion laughs) is one problem at the first nested alias, quickly', () => {
    const t0 = Date.now();
    const p = one(`${bomb}\n`, '');
    assert.ok(Date.now() - t0 < 2000);
    assert.deepEqual([p.code, p.line, p.col, p.yamlPath], ['config/yaml-alias', 3, 8, 'c[0]']);
    assert.match(p.message, /alias bomb/);
  });

  test('an undefined alias and an alias inside its own anchor', () => {
    const u = one('lora:\n  r: *rank\n');
    assert.deepEqual(
      [u.code, u.yamlPath, u.line, u.col, u.message],
      ['config/yaml-alias', 'lora.r', 5, 6, 'YAML: alias *rank has no anchor &rank before it'],
    );
    const loop = one('lora: &l\n  r: *l\n');
    assert.deepEqual([loop.code, loop.yamlPath], ['config/yaml-alias', 'lora.r']);
  });

  test('nesting 100 and 3000 levels deep: one problem, no stack overflow', () => {
    const hundred = one(`lora: ${'['.repeat(100)}${']'.repeat(100)}\n`);
    assert.deepEqual([hundred.code, hundred.line], ['config/yaml-too-deep', 4]);
    assert.ok(hundred.yamlPath.startsWith('lora[0][0]'));
    const block = one(`lora:\n${Array.from({ length: 100 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} 1\n`);
    assert.deepEqual([block.code, block.line, block.col], ['config/yaml-too-deep', 68, 65]); // level 65
    assert.ok(block.yamlPath.startsWith('lora.k0.k1.k2'), block.yamlPath);
    const deep = one(`lora: ${'{k: '.repeat(3000)}1${'}'.repeat(3000)}\n`);
    assert.equal(deep.code, 'config/yaml-too-deep');
    assert.ok(
      deep.line === 4 && deep.col > 100 && deep.yamlPath.startsWith('lora.k.k'),
      `${deep.col} ${deep.yamlPath}`,
    );
  });

  test('duplicate keys, and a mapping of 10000 keys, in linear time', () => {
    const dup = one('model: ./other\n');
    assert.deepEqual([dup.code, dup.line, dup.col, dup.yamlPath], ['config/duplicate-key', 4, 1, 'model']);
    const keys = Array.from({ length: 10000 }, (_, i) => `  k${i}: 1`).join('\n');
    const t0 = Date.now();
    const big = one(`lora:\n${keys}\n  k7: 2\n`);
    assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
    assert.equal(big.code, 'config/yaml-too-large');
    const d = one(`lora:\n  r: 4\n  q: 1\n  r: 8\n`);
    assert.deepEqual([d.code, d.yamlPath, d.line], ['config/duplicate-key', 'lora.r', 7]);
  });

  test('a list as a key, two documents, a 2 MB file, a 200 KB key', () => {
    assert.equal(one('? [a, b]\n: 1\n').code, 'config/yaml-key');
    const two = one('---\nx: 1\n');
    assert.deepEqual(
      [two.code, two.line, two.message],
      ['config/yaml-syntax', 4, "YAML: a config is one document, but '---' starts another here"],
    );
    const big = one('#'.repeat(2 << 20));
    assert.deepEqual([big.code, big.line, big.col], ['config/too-large', 1, 1]);
    const key = one(`${'k'.repeat(200_000)}: 1\n`);
    assert.ok(key.message.length < 200 && key.yamlPath.length < 50, key.message.slice(0, 200));
  });

  test('loraplus validate prints file:line:col and the YAML path for them', async () => {
    const file = join(root, 'bomb.yaml');
    writeFileSync(file, `${bomb}\n`);
    const r = await runCli(['validate', file]);
    assert.equal(r.code, 1);
    assert.match(r.out, new RegExp(`^${file}:3:8: error: YAML: .*alias bomb.* \\(at c\\[0\\]\\)`, 'm'));
  });
});

describe('divergence names the setting that is out of range', () => {
  const cfg = (lora: object, training: object) =>
    configFromObject({ model: './model', data: { train: 'train.jsonl' }, lora, training }, root);
  const withTraining = (c: ReturnType<typeof cfg>, t: object) => ({ ...c, training: { ...c.training, ...t } });

  test('the adapter scale, lora_B’s learning rate (or λ), the clip norm; else learning_rate', () => {
    const base = cfg({}, {});
    assert.deepEqual(divergenceCause(base).yamlPath, 'training.learning_rate');
    const scale = divergenceCause({ ...base, lora: { ...base.lora, r: 4, lora_alpha: 256 } });
    assert.equal(scale.yamlPath, 'lora.lora_alpha');
    assert.match(scale.hint, /lora_alpha \/ r = 64 scales every update 64× .*set lora_alpha to 8\./);
    const lrB = divergenceCause(withTraining(base, { learning_rate: 5e-3 })); // lr_B 0.08
    assert.equal(lrB.yamlPath, 'training.learning_rate');
    assert.match(
      lrB.hint,
      /learning_rate·λ = 0\.08, far above the usual 0\.001 to 0\.002: lower learning_rate to 0\.000125/,
    );
    const ratio = divergenceCause(withTraining(base, { loraplus_lr_ratio: 1000 })); // lr_B 0.2
    assert.equal(ratio.yamlPath, 'training.loraplus_lr_ratio');
    assert.equal(divergenceCause(withTraining(base, { max_grad_norm: 0 })).yamlPath, 'training.max_grad_norm');
    // Both off: the one further out wins (scale 32 = 4× past 8; lr_B 1.6 = 80× past 0.02).
    const both = { ...withTraining(base, { learning_rate: 0.1 }), lora: { ...base.lora, lora_alpha: 256 } };
    assert.equal(divergenceCause(both).yamlPath, 'training.learning_rate');
  });
});
