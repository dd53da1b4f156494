// The config corpus: good files fill defaults and resolve paths; each bad file yields the expected message, YAML path
// and line/column, so the CLI's `file:line:col` output and the editor's squiggles point at the right text.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import { configFromObject, formatProblem, loadConfigFile, requireValidConfig } from '../../src/config/load';
import type { LoadResult, LocatedProblem } from '../../src/config/load';
import { configKeys, specAt } from '../../src/config/keys';
import { defaults, schema } from '../../src/config/schema';
import type { TrainConfig } from '../../src/config/schema';
import { distance, validateConfig } from '../../src/config/validate';
import { LoraPlusError } from '../../src/protocol/errors';

// A fake model folder and data file, so existence checks pass without real weights.
const root = mkdtempSync(join(tmpdir(), 'loraplus-config-'));
mkdirSync(join(root, 'model'));
writeFileSync(join(root, 'model', 'config.json'), '{}');
mkdirSync(join(root, 'data'));
writeFileSync(join(root, 'data', 'train.jsonl'), '{"text": "hello"}\n');
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = 'model: ./model\ndata:\n  train: data/train.jsonl\n';
let n = 0;
function write(text: string, name = `c${n++}.yaml`): string {
  const file = join(root, name);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
  return file;
}
const load = (text: string): LoadResult => loadConfigFile(write(text));

/** The one problem with this code (fails when there are none or several). */
function one(r: LoadResult, code: string): LocatedProblem {
  const found = r.problems.filter((p) => p.code === code);
  assert.equal(found.length, 1, `expected one ${code}, got: ${JSON.stringify(r.problems, null, 1)}`);
  return found[0];
}
/** [line, col, endLine, endCol] of a problem. */
const span = (p: LocatedProblem): number[] => [p.line, p.col, p.endLine, p.endCol];

describe('good configs', () => {
  test('a minimal config gets every default, absolute paths and one epoch', () => {
    const r = load(BASE);
    assert.deepEqual(r.problems, []);
    const c = r.config;
    assert.ok(c);
    assert.equal(c.model, join(root, 'model'));
    assert.equal(c.data.train, join(root, 'data', 'train.jsonl'));
    assert.equal(c.output_dir, join(root, 'runs'));
    assert.equal(c.task, 'causal-lm');
    assert.equal(c.device, 'auto');
    assert.equal(c.run_name, null);
    assert.deepEqual(c.lora, defaults.lora);
    assert.deepEqual({ ...c.data, train: undefined }, { ...defaults.data, train: undefined });
    assert.deepEqual({ ...c.training, epochs: null }, defaults.training);
    assert.equal(c.training.loraplus_lr_ratio, 16);
    assert.equal(c.training.learning_rate, 2e-4);
    assert.equal(c.training.max_steps, null);
    assert.equal(c.training.epochs, 1);
  });

  test('the TrainConfig type follows the schema', () => {
    const c = configFromObject({ model: './model', data: { train: 'data/train.jsonl' } }, root);
    const ratio: number = c.training.loraplus_lr_ratio; // compile-time: a number, not number | null
    const task: 'causal-lm' | 'sequence-classification' | 'sft' = c.task;
    const modules: string[] | 'all-linear' | null = c.lora.target_modules;
    // @ts-expect-error -- markers are accepted in the file but are not part of TrainConfig
    void c.loraplus;
    // @ts-expect-error -- unknown keys are not in the type either
    void c.training.loraplus_lr_raito;
    const exact: Equal<TrainConfig['training']['max_steps'], number | null> = true;
    assert.deepEqual([ratio, task, modules, exact], [16, 'causal-lm', null, true]);
  });

  test('2e-4 and 1e-3 are numbers, quoted or not', () => {
    const r = load(`${BASE}training:\n  learning_rate: 2e-4\n  adam_epsilon: "1e-3"\n  loraplus_lr_embedding: 1e-6\n`);
    // The only note: no target is an embedding layer, so loraplus_lr_embedding does nothing.
    assert.deepEqual(
      r.problems.map((p) => [p.severity, p.code]),
      [['hint', 'config/embedding-lr-unused']],
    );
    assert.equal(r.config?.training.learning_rate, 0.0002);
    assert.equal(r.config?.training.adam_epsilon, 0.001);
    assert.equal(r.config?.training.loraplus_lr_embedding, 1e-6);
  });

  test('relative paths resolve against the config file, not the working directory', () => {
    const r = loadConfigFile(
      write('model: ../model\ndata:\n  train: ../data/train.jsonl\noutput_dir: out\n', 'sub/run.yaml'),
    );
    assert.deepEqual(r.problems, []);
    assert.equal(r.config?.model, join(root, 'model'));
    assert.equal(r.config?.data.train, join(root, 'data', 'train.jsonl'));
    assert.equal(r.config?.output_dir, join(root, 'sub', 'out'));
  });

  const shared = '/work/shared/models/stories260k';
  const sst2 = '/work/shared/data/glue-sst2/train.tsv';
  test(
    'a classification config over the shared model and SST-2',
    { skip: !existsSync(shared) || !existsSync(sst2) },
    () => {
      const yaml =
        `loraplus: 1\nmodel: ${shared}\ntask: sequence-classification\n` +
        `data:\n  train: ${sst2}\n  text_field: sentence\n  labels: [0, 1]\n` +
        'lora:\n  target_modules: all-linear\ntraining:\n  max_steps: 20\n';
      const r = load(yaml);
      assert.deepEqual(r.problems, []);
      assert.equal(r.config?.model, shared);
      assert.deepEqual(r.config?.data.labels, ['0', '1']); // YAML numbers as label names
      assert.equal(r.config?.lora.target_modules, 'all-linear');
      assert.equal(r.config?.training.max_steps, 20);
      assert.equal(r.config?.training.epochs, null);
    },
  );

  test('max_steps wins over epochs (with a warning); epochs alone is kept', () => {
    const both = load(`${BASE}training:\n  max_steps: 50\n  epochs: 3\n`);
    const w = one(both, 'config/epochs-ignored');
    assert.equal(w.severity, 'warning');
    assert.equal(w.yamlPath, 'training.epochs');
    assert.deepEqual(span(w), [6, 11, 6, 12]);
    assert.equal(both.config?.training.max_steps, 50);
    assert.equal(both.config?.training.epochs, null);
    assert.equal(load(`${BASE}training:\n  epochs: 2.5\n`).config?.training.epochs, 2.5);
  });
});

describe('bad configs', () => {
  test('a typo in a key suggests the closest key (Damerau-Levenshtein)', () => {
    const r = load(`${BASE}training:\n  loraplus_lr_raito: 16\n`);
    const p = one(r, 'config/unknown-key');
    assert.equal(p.severity, 'error');
    assert.equal(p.message, "unknown key 'loraplus_lr_raito'; did you mean 'loraplus_lr_ratio'?");
    assert.equal(p.yamlPath, 'training.loraplus_lr_raito');
    assert.deepEqual(p.path, ['training', 'loraplus_lr_raito']);
    assert.deepEqual(span(p), [5, 3, 5, 20]); // the key itself
    assert.deepEqual(p.suggestions, ['loraplus_lr_ratio']);
    assert.equal(r.config, null);
    assert.equal(distance('loraplus_lr_raito', 'loraplus_lr_ratio'), 1);
  });

  test('a Hugging Face name is recognised as an alias', () => {
    const p = one(load(`${BASE}training:\n  num_train_epochs: 3\n`), 'config/unknown-key');
    assert.equal(p.message, "unknown key 'num_train_epochs'; did you mean 'epochs'?");
  });

  test('a key at the wrong level points to where it belongs', () => {
    const p = one(load(`${BASE}learning_rate: 1e-4\n`), 'config/wrong-level');
    assert.equal(p.message, "unknown key 'learning_rate' at the top level; did you mean training.learning_rate?");
    assert.equal(p.hint, 'Move it under training.');
    assert.equal(p.yamlPath, 'learning_rate');
    assert.deepEqual(span(p), [4, 1, 4, 14]);
    const nested = one(load(`${BASE}lora:\n  epochs: 2\n`), 'config/wrong-level');
    assert.equal(nested.message, "unknown key 'epochs' in lora; did you mean training.epochs?");
    assert.deepEqual(nested.suggestions, ['training.epochs']);
  });

  test('an unknown key with nothing close lists the known keys', () => {
    const p = one(load(`${BASE}data_augmentation: true\n`), 'config/unknown-key');
    assert.equal(p.message, "unknown key 'data_augmentation' at the top level");
    assert.match(
      p.hint ?? '',
      /^Known keys here: loraplus, model, task, device, output_dir, run_name, data, lora, training, eval\.$/,
    );
  });

  test('a value of the wrong type', () => {
    const p = one(load(`${BASE}training:\n  learning_rate: fast\n`), 'config/type');
    assert.equal(p.message, "learning_rate must be a number > 0, got the string 'fast'");
    assert.equal(p.yamlPath, 'training.learning_rate');
    assert.deepEqual(span(p), [5, 18, 5, 22]); // the value
    const b = one(load(`${BASE}lora:\n  use_rslora: yes\n`), 'config/type');
    assert.equal(b.hint, "YAML 1.2 reads 'yes' as a string; write true or false.");
    const i = one(load(`${BASE}training:\n  batch_size: 2.5\n`), 'config/type');
    assert.equal(i.message, 'batch_size must be an integer, got 2.5');
  });

  test('a wrong list item is reported at its index', () => {
    const r = validateConfig(
      { model: 'model', data: { train: 'data/train.jsonl' }, lora: { target_modules: ['q_proj', { v: 1 }] } },
      { configDir: root },
    );
    assert.equal(r.config, null);
    assert.equal(r.problems.length, 1);
    assert.deepEqual(r.problems[0].path, ['lora', 'target_modules', 1]);
    assert.equal(r.problems[0].yamlPath, 'lora.target_modules[1]');
    assert.equal(r.problems[0].message, 'target_modules[1] must be a non-empty string, got a mapping');
  });

  test('out-of-range values name the allowed range', () => {
    const r = load(`${BASE}lora:\n  r: 0\n  lora_dropout: 1\n`);
    const ranges = r.problems.filter((p) => p.code === 'config/range');
    assert.deepEqual(
      ranges.map((p) => [p.message, p.yamlPath, p.line, p.col]),
      [
        ['r must be ≥ 1, got 0', 'lora.r', 5, 6],
        ['lora_dropout must be in [0, 1), got 1', 'lora.lora_dropout', 6, 17],
      ],
    );
    assert.equal(
      one(load(`${BASE}  eval_fraction: 0.9\n`), 'config/range').message,
      'eval_fraction must be in [0, 0.5], got 0.9',
    );
  });

  test('a bad enum value lists the allowed values and the closest one', () => {
    const p = one(load(`${BASE}training:\n  lr_scheduler: cosin\n`), 'config/enum');
    assert.equal(
      p.message,
      "lr_scheduler must be one of 'constant', 'linear', 'cosine', got the string 'cosin'; did you mean 'cosine'?",
    );
    assert.equal(p.yamlPath, 'training.lr_scheduler');
    assert.deepEqual(span(p), [5, 17, 5, 22]);
    assert.deepEqual(p.suggestions, ['cosine', 'constant', 'linear']);
  });

  test('a missing required key points at its parent mapping', () => {
    const r = load('model: ./model\ndata:\n  text_field: sentence\n');
    const p = one(r, 'config/missing-key');
    assert.equal(p.message, "missing required key 'train'");
    assert.equal(p.yamlPath, 'data.train');
    assert.deepEqual(span(p), [2, 1, 2, 5]); // `data`
    const top = one(load('data:\n  train: data/train.jsonl\n'), 'config/missing-key');
    assert.equal(top.yamlPath, 'model');
    assert.deepEqual([top.line, top.col], [1, 1]);
    const empty = load('');
    assert.deepEqual(
      empty.problems.map((q) => q.yamlPath),
      ['model', 'data.train'],
    );
  });

  test('loraplus_lr_ratio below 1 is an error, 1 is a hint (plain LoRA), above 256 a warning', () => {
    const low = load(`${BASE}training:\n  loraplus_lr_ratio: 0.5\n`);
    const e = one(low, 'config/loraplus-ratio-below-1');
    assert.equal(e.severity, 'error');
    assert.match(e.message, /^loraplus_lr_ratio λ = 0\.5 is below 1: lora_B would learn slower than lora_A/);
    assert.deepEqual(span(e), [5, 22, 5, 25]);
    assert.equal(low.config, null);

    const plain = load(`${BASE}training:\n  loraplus_lr_ratio: 1\n`);
    const h = one(plain, 'config/plain-lora');
    assert.equal(h.severity, 'hint');
    assert.match(h.message, /this is plain LoRA/);
    assert.equal(plain.config?.training.loraplus_lr_ratio, 1);

    const high = load(`${BASE}training:\n  learning_rate: 1e-4\n  loraplus_lr_ratio: 1000\n`);
    const w = one(high, 'config/loraplus-ratio-unusual');
    assert.equal(w.severity, 'warning');
    assert.equal(
      w.message,
      "loraplus_lr_ratio λ = 1000 is outside the usual range [1, 256]; lora_B's learning rate would be 0.1",
    );
    assert.ok(high.config);
  });

  test('YAML syntax errors carry their position', () => {
    const r = load('model: ./model\ndata:\n  train: data/train.jsonl\n training:\n  seed: 1\n');
    assert.equal(r.config, null);
    const p = one(r, 'config/yaml-syntax');
    assert.equal(p.message, 'YAML: All mapping items must start at the same column');
    assert.deepEqual([p.line, p.col], [4, 1]);
    const dup = one(load(`${BASE}model: ./other\n`), 'config/duplicate-key');
    assert.deepEqual([dup.line, dup.col], [4, 1]);
  });

  test('a missing model folder, a folder without config.json, a file instead of a folder', () => {
    const missing = one(load('model: ./nope\ndata:\n  train: data/train.jsonl\n'), 'config/not-found');
    assert.equal(missing.message, `model folder not found: ${join(root, 'nope')}`);
    assert.equal(missing.yamlPath, 'model');
    assert.deepEqual(span(missing), [1, 8, 1, 14]);
    assert.equal(missing.hint, `Relative paths resolve against the config file's folder (${root}).`);

    const noConfig = one(load('model: ./data\ndata:\n  train: data/train.jsonl\n'), 'config/incomplete-folder');
    assert.equal(noConfig.message, `${join(root, 'data')} is not a model folder: it has no config.json`);
    const file = one(load('model: ./model/config.json\ndata:\n  train: data/train.jsonl\n'), 'config/not-a-folder');
    assert.equal(file.hint, 'Point model at the folder that holds config.json.');

    const r = load(`${BASE}  eval: data/missing.jsonl\nlora:\n  init_adapter: ./model\n`);
    assert.deepEqual(
      r.problems.map((p) => [p.code, p.yamlPath, p.line]),
      [
        ['config/not-found', 'data.eval', 4],
        ['config/incomplete-folder', 'lora.init_adapter', 6],
      ],
    );
  });

  test('a document that is not a mapping', () => {
    const p = one(load('- model\n- data\n'), 'config/not-a-mapping');
    assert.equal(p.message, 'a config must be a mapping of keys to values, got a list');
  });
});

describe('throwing forms and formatting', () => {
  test('formatProblem prints file:line:col: severity: message (at path) hint', () => {
    const file = write(`${BASE}training:\n  loraplus_lr_ratio: 1\n`);
    const [p] = loadConfigFile(file).problems;
    assert.equal(
      formatProblem(file, p),
      `${file}:5:22: hint: loraplus_lr_ratio λ = 1: this is plain LoRA (lora_A and lora_B share one learning rate) ` +
        '(at training.loraplus_lr_ratio) LoRA+ uses λ > 1; 16 is the usual start.',
    );
  });

  test('requireValidConfig throws config/invalid listing every error, and returns the config otherwise', () => {
    const bad = write(
      'model: ./nope\ndata:\n  train: data/train.jsonl\ntraining:\n  lr_scheduler: cosin\n  loraplus_lr_raito: 2\n',
    );
    assert.throws(
      () => requireValidConfig(bad),
      (err: unknown) => {
        assert.ok(err instanceof LoraPlusError);
        assert.equal(err.code, 'config/invalid');
        assert.match(err.message, /invalid config \(3 errors\):/);
        assert.ok(err.message.includes(`${bad}:1:8: error: model folder not found`));
        assert.ok(err.message.includes(`${bad}:5:17: error: lr_scheduler must be one of`));
        assert.ok(err.message.includes(`${bad}:6:3: error: unknown key 'loraplus_lr_raito'`));
        return true;
      },
    );
    assert.equal(requireValidConfig(write(BASE)).training.batch_size, 8);
    assert.throws(() => requireValidConfig(join(root, 'absent.yaml')), /cannot read the config file/);
  });

  test('configFromObject validates an object and throws the same way', () => {
    const c = configFromObject(
      { model: 'model', data: { train: 'data/train.jsonl' }, training: { loraplus_lr_ratio: 8 } },
      root,
    );
    assert.equal(c.training.loraplus_lr_ratio, 8);
    assert.throws(
      () =>
        configFromObject(
          { model: 'model', data: { train: 'data/train.jsonl' }, training: { loraplus_lr_ratio: 0.25 } },
          root,
        ),
      /<config object>: error: loraplus_lr_ratio λ = 0.25 is below 1.*\(at training\.loraplus_lr_ratio\)/,
    );
  });
});

describe('schema', () => {
  test('configKeys lists every key with its dotted path', () => {
    const keys = configKeys();
    const paths = keys.map((k) => k.path);
    for (const p of [
      'model',
      'data.train',
      'lora.target_modules',
      'training.loraplus_lr_ratio',
      'training.save_total_limit',
    ])
      assert.ok(paths.includes(p), p);
    for (const k of keys) assert.ok(k.spec.description.length > 20, `${k.path} needs a description`);
    assert.equal(specAt(['training', 'loraplus_lr_ratio']), schema.keys.training.keys.loraplus_lr_ratio);
    assert.match(specAt(['training', 'loraplus_lr_ratio'])?.description ?? '', /Hayou et al\. 2024/);
  });
});

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
