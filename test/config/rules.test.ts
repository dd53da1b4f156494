// Rules between keys (rules.ts): LoRA+'s λ, the adapter's scale, evaluation without data, settings with no effect.
// Each names its severity, YAML path and position, so the editor can underline the right text.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load';
import type { LocatedProblem } from '../../src/config/load';

const root = mkdtempSync(join(tmpdir(), 'loraplus-rules-'));
mkdirSync(join(root, 'model'));
writeFileSync(join(root, 'model', 'config.json'), '{}');
writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = 'model: ./model\ndata:\n  train: train.jsonl\n';
const problems = (text: string): LocatedProblem[] => parseConfigText(`${BASE}${text}`, root).problems;
/** [severity, code, yamlPath, line, col, message] of every problem. */
const brief = (text: string): (string | number)[][] =>
  problems(text).map((p) => [p.severity, p.code, p.yamlPath, p.line, p.col, p.message]);

describe('LoRA+ ratio λ', () => {
  test('2^0 < λ ≤ 2^8 is quiet; exactly 256 too', () => {
    for (const r of [1.5, 2, 16, 256]) assert.deepEqual(brief(`training:\n  loraplus_lr_ratio: ${r}\n`), [], String(r));
  });
  test("λ above 2^8 is a warning that names lora_B's learning rate", () => {
    assert.deepEqual(brief('training:\n  loraplus_lr_ratio: 257\n'), [
      [
        'warning',
        'config/loraplus-ratio-unusual',
        'training.loraplus_lr_ratio',
        5,
        22,
        "loraplus_lr_ratio λ = 257 is outside the usual range [1, 256]; lora_B's learning rate would be 0.0514",
      ],
    ]);
  });
});

describe('the adapter: r and lora_alpha', () => {
  test('a scale lora_alpha / r far from 1–2 is a warning at what was written', () => {
    assert.deepEqual(brief('lora:\n  r: 4\n  lora_alpha: 64\n'), [
      [
        'warning',
        'config/adapter-scale-unusual',
        'lora.lora_alpha',
        6,
        15,
        'lora_alpha / r = 64 / 4 = 16 scales the update up far from the usual 1 to 2',
      ],
    ]);
    // Only r written: the default lora_alpha (16) is what is off, but r is what to point at.
    const [p] = problems('lora:\n  r: 256\n');
    assert.deepEqual([p.code, p.yamlPath, p.line, p.col], ['config/adapter-scale-unusual', 'lora.r', 5, 6]);
    assert.match(p.message, /= 16 \/ 256 = 0\.063 scales the update down/);
    assert.equal(
      p.hint,
      'The usual choice is lora_alpha = 2·r (512 here); the scale multiplies the update like a learning rate.',
    );
  });
  test('with use_rslora the scale is lora_alpha / √r', () => {
    assert.deepEqual(brief('lora:\n  r: 64\n  lora_alpha: 16\n  use_rslora: true\n'), []); // 16 / 8 = 2
    const [p] = problems('lora:\n  r: 64\n  lora_alpha: 128\n  use_rslora: true\n');
    assert.equal(p.message, 'lora_alpha / √r = 128 / √64 = 16 scales the update up far from the usual 1 to 2');
    assert.deepEqual(p.fix, { kind: 'setValue', title: 'Set lora_alpha to 16', value: 16 });
  });
  test('a rank above 256 is unusual', () => {
    const codes = problems('lora:\n  r: 512\n  lora_alpha: 1024\n').map((p) => [p.severity, p.code, p.line]);
    assert.deepEqual(codes, [['warning', 'config/rank-unusual', 5]]);
  });
});

describe('evaluation and settings without effect', () => {
  test('eval_every with no evaluation data is a warning; eval or eval_fraction silences it', () => {
    assert.deepEqual(brief('training:\n  eval_every: 50\n'), [
      [
        'warning',
        'config/no-eval-data',
        'training.eval_every',
        5,
        15,
        'eval_every is 50 but there is no evaluation data: data.eval is not set and data.eval_fraction is 0',
      ],
    ]);
    assert.deepEqual(brief('  eval_fraction: 0.1\ntraining:\n  eval_every: 50\n'), []);
    assert.deepEqual(brief('  eval: train.jsonl\ntraining:\n  eval_every: 50\n'), []);
  });
  test('loraplus_lr_embedding without an embedding target is a hint on the key', () => {
    assert.deepEqual(brief('training:\n  loraplus_lr_embedding: 1e-5\n'), [
      [
        'hint',
        'config/embedding-lr-unused',
        'training.loraplus_lr_embedding',
        5,
        3,
        'loraplus_lr_embedding has no effect: no target module is an embedding layer',
      ],
    ]);
    // Naming an embedding layer is the engine's business (it adapts Linear layers only): no hint here.
    assert.deepEqual(
      brief('lora:\n  target_modules: [q_proj, embed_tokens]\ntraining:\n  loraplus_lr_embedding: 1e-5\n'),
      [],
    );
  });
  test('warnings and hints keep the config; errors do not', () => {
    assert.ok(parseConfigText(`${BASE}training:\n  eval_every: 5\n  loraplus_lr_ratio: 1\n`, root).config);
    assert.equal(parseConfigText(`${BASE}training:\n  loraplus_lr_ratio: 0.9\n`, root).config, null);
  });
});

describe("one task's keys in another task's config", () => {
  test('sft keys are ignored for causal-lm and classification: a warning at the key, a fix deletes it', () => {
    const sftKeys = '  format: messages\n  chat_template: chatml\n  assistant_only_loss: true\n  packing: true\n';
    for (const task of ['causal-lm', 'sequence-classification']) {
      const found = parseConfigText(`task: ${task}\n${BASE}${sftKeys}`, root).problems;
      assert.deepEqual(
        found.map((p) => [p.severity, p.code, p.yamlPath, p.at, p.message]),
        ['format', 'chat_template', 'assistant_only_loss', 'packing'].map((k) => [
          'warning',
          'config/ignored-for-task',
          `data.${k}`,
          'key',
          `${k} is ignored for task ${task}`,
        ]),
      );
      assert.match(found[0].hint!, /task: sft/);
      assert.deepEqual(found[0].fix, { kind: 'removeKey', title: 'Delete format' });
    }
    // Values that change nothing under sft (the defaults) are not reported.
    const quiet = '  format: auto\n  chat_template: null\n  completion_only_loss: null\n  packing: false\n';
    assert.deepEqual(brief(quiet), []);
  });

  test("a classifier's keys are ignored for sft; label_field only when written", () => {
    // causal-lm (the default) ignores them too
    assert.equal(problems('  labels: [neg, pos]\n  text_pair_field: b\n  label_field: y\n').length, 3);
    const sft = parseConfigText(`task: sft\n${BASE}  labels: [neg, pos]\n  label_field: y\n`, root).problems;
    assert.deepEqual(
      sft.map((p) => [p.code, p.yamlPath, p.message]),
      [
        ['config/ignored-for-task', 'data.labels', 'labels is ignored for task sft'],
        ['config/ignored-for-task', 'data.label_field', 'label_field is ignored for task sft'],
      ],
    );
    assert.deepEqual(parseConfigText(`task: sft\n${BASE}`, root).problems, []);
  });
});
