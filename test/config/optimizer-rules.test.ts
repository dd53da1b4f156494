// training.optimizer and optimizer_args in the validator (optimizer-rules.ts, the schema): settings the chosen PEFT
// optimizer ignores are warnings at their key, PEFT's parameter names outside optimizer_args point to the config's
// own keys, and λ's rules see the one learning rate riemannian and lorafa train at.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { parseConfigText } from '../../src/config/load';
import type { LocatedProblem } from '../../src/config/load';

const root = mkdtempSync(join(tmpdir(), 'loraplus-optimizer-rules-'));
mkdirSync(join(root, 'model'));
writeFileSync(join(root, 'model', 'config.json'), '{}');
writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = 'model: ./model\ndata:\n  train: train.jsonl\n';
const parse = (training: string) => parseConfigText(`${BASE}training:\n${training}`, root);
const problems = (training: string): LocatedProblem[] => parse(training).problems;
/** [severity, code, yamlPath, line, col] of every problem. */
const brief = (training: string) => problems(training).map((p) => [p.severity, p.code, p.yamlPath, p.line, p.col]);

describe('training.optimizer', () => {
  test('adamw by default; riemannian with reg from optimizer_args', () => {
    assert.equal(parse('  learning_rate: 1e-3\n').config?.training.optimizer, 'adamw');
    const c = parse('  optimizer: riemannian\n  optimizer_args:\n    reg: 0.1\n').config!;
    assert.equal(c.training.optimizer, 'riemannian');
    assert.deepEqual(c.training.optimizer_args, { reg: 0.1 });
    assert.deepEqual(parse('  optimizer: lorafa\n').config?.training.optimizer_args, { reg: 1e-2 });
  });

  test('a misspelt optimizer is an error with the close name as its fix', () => {
    const [p] = problems('  optimizer: riemanian\n');
    assert.equal(p.code, 'config/enum');
    assert.match(
      p.message,
      /one of 'adamw', 'riemannian', 'lorafa', got the string 'riemanian'; did you mean 'riemannian'/,
    );
    assert.deepEqual(p.fix, { kind: 'setValue', title: 'Change to riemannian', value: 'riemannian' });
  });

  test('loraplus_lr_ratio with riemannian or lorafa is a warning at the key; λ 1 (one rate) and adamw are quiet', () => {
    assert.deepEqual(brief('  optimizer: riemannian\n  loraplus_lr_ratio: 16\n'), [
      ['warning', 'config/ignored-by-optimizer', 'training.loraplus_lr_ratio', 6, 3],
    ]);
    const [p] = problems('  optimizer: lorafa\n  loraplus_lr_ratio: auto\n');
    assert.equal(
      p.message,
      "loraplus_lr_ratio is ignored with optimizer lorafa: PEFT's create_lorafa_optimizer trains lora_A and lora_B " +
        'at learning_rate alone (there is no λ)',
    );
    assert.equal(p.hint, 'Delete it, or set optimizer: adamw to use it.');
    assert.deepEqual(p.fix, { kind: 'removeKey', title: 'Delete loraplus_lr_ratio' });
    assert.deepEqual(brief('  optimizer: riemannian\n  loraplus_lr_ratio: 1\n'), []);
    assert.deepEqual(brief('  optimizer: adamw\n  loraplus_lr_ratio: 16\n'), []);
  });

  test("λ's rules see one learning rate: lr 0.5 × λ 16 is an error for adamw only", () => {
    const lr = '  learning_rate: 0.5\n  loraplus_lr_ratio: 16\n';
    assert.ok(problems(`  optimizer: adamw\n${lr}`).some((p) => p.code === 'config/loraplus-lr-too-large'));
    assert.deepEqual(
      problems(`  optimizer: riemannian\n${lr}`).map((p) => p.code),
      ['config/ignored-by-optimizer'],
    );
  });

  test('optimizer_args.reg with an optimizer that takes none is a warning; its default is quiet', () => {
    assert.deepEqual(brief('  optimizer: lorafa\n  optimizer_args:\n    reg: 0.1\n'), [
      ['warning', 'config/ignored-by-optimizer', 'training.optimizer_args.reg', 7, 5],
    ]);
    const [p] = problems('  optimizer: adamw\n  optimizer_args: {reg: 0.5}\n');
    assert.match(p.message, /^reg is ignored with optimizer adamw: only riemannian takes it/);
    assert.equal(p.hint, 'Delete it, or set optimizer: riemannian to use it.');
    assert.deepEqual(brief('  optimizer: adamw\n  optimizer_args: {reg: 0.01}\n'), []);
  });

  test("PEFT's other parameters in optimizer_args point to the config's keys; unknown ones list reg", () => {
    const at = (key: string) => problems(`  optimizer: riemannian\n  optimizer_args:\n    ${key}: 1\n`)[0];
    for (const [key, target] of [
      ['lr', 'training.learning_rate'],
      ['weight_decay', 'training.weight_decay'],
      ['lora_alpha', 'lora.lora_alpha'],
      ['use_rslora', 'lora.use_rslora'],
      ['eps', 'training.adam_epsilon'],
    ]) {
      const p = at(key);
      assert.equal(p.code, 'config/wrong-level', key);
      assert.equal(p.yamlPath, `training.optimizer_args.${key}`);
      assert.match(p.message, new RegExp(`did you mean ${target.replace('.', '\\.')}\\?$`), key);
    }
    const p = at('betas');
    assert.equal(p.code, 'config/unknown-key');
    assert.match(p.hint ?? '', /Known keys here: reg\./);
  });

  test("lorafa: adam_beta1/2 and adam_epsilon other than PEFT's fixed ones are warnings", () => {
    assert.deepEqual(brief('  optimizer: lorafa\n  adam_epsilon: 1.0e-7\n  adam_beta2: 0.99\n'), [
      ['warning', 'config/ignored-by-optimizer', 'training.adam_epsilon', 6, 3],
      ['warning', 'config/ignored-by-optimizer', 'training.adam_beta2', 7, 3],
    ]);
    const [p] = problems('  optimizer: lorafa\n  adam_epsilon: 1.0e-7\n');
    assert.match(p.message, /fixes AdamW's betas at \(0\.9, 0\.999\) and ε at 1e-6$/);
    // PEFT's own values, or the defaults a run's config.yaml writes out, say nothing.
    assert.deepEqual(brief('  optimizer: lorafa\n  adam_epsilon: 1.0e-6\n  adam_beta1: 0.9\n'), []);
    assert.deepEqual(brief('  optimizer: lorafa\n  adam_epsilon: 1.0e-8\n'), []);
    assert.deepEqual(brief('  optimizer: riemannian\n  adam_epsilon: 1.0e-7\n'), []);
  });
});
