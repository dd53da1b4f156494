// The config "LoRA+: New Training Config" writes: for every shared model family it must validate with every check
// (model folder, targets, positions, data columns) and no errors or warnings, with paths relative to its folder.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { configTemplate, relativePath } from '../../src/config/template';
import { checkConfigFile, checkConfigText } from '../../src/engine/checks/config';
import { describeModel, planConfig } from '../../src/vscode/editor/new-config-plan';
import type { DataChoices } from '../../src/vscode/editor/new-config-plan';
import { SHARED, SST2, tempDir } from '../helpers/shared';

const TRAIN = path.join(SST2, 'train.tsv');
const DEV = path.join(SST2, 'dev.tsv');

function model(name: string) {
  const m = describeModel(path.join(SHARED, 'models', name));
  assert.ok(m.ok, `${name}: ${m.ok ? '' : m.problem.message}`);
  return m.value;
}

const CASES: [string, 'causal-lm' | 'sequence-classification'][] = [
  ['stories260k', 'causal-lm'],
  ['stories260k', 'sequence-classification'],
  ['tiny-random-gpt2', 'causal-lm'],
  ['tiny-random-bert', 'sequence-classification'],
  ['tiny-random-roberta', 'sequence-classification'],
];

describe('config template', () => {
  for (const [name, task] of CASES) {
    test(`${name} ${task}: validates with no errors or warnings against the real model and SST-2`, () => {
      const dir = tempDir();
      const m = model(name);
      const data: DataChoices = {
        train: TRAIN,
        eval: DEV,
        evalFraction: 0,
        textField: 'sentence',
        labelField: 'label',
      };
      const text = configTemplate(planConfig(dir, m, task, data));
      const { config, problems } = checkConfigText(text, dir);
      assert.deepEqual(
        problems
          .filter((p) => p.severity === 'error' || p.severity === 'warning')
          .map((p) => `${p.line}: ${p.message}`),
        [],
        text,
      );
      assert.ok(config);
      assert.equal(config.model, m.dir);
      assert.equal(config.task, task);
      assert.deepEqual(config.lora.target_modules, m.summary.family.defaultTargets);
      assert.equal(config.training.loraplus_lr_ratio, 16);
      assert.ok(config.data.max_length <= (m.maxPositions ?? Infinity), 'max_length fits the model');
      // Written relative to the config's folder, so the folder can move with its data.
      const raw = parse(text) as { model: string; data: { train: string } };
      assert.equal(raw.model, relativePath(dir, m.dir));
      assert.ok(!path.isAbsolute(raw.model) && raw.data.train.endsWith('glue-sst2/train.tsv'));
      if (task === 'causal-lm') assert.ok(!/label_field/.test(text), 'no label for a causal LM');
    });
  }

  test('explains λ next to loraplus_lr_ratio, and every written line parses back as the config it says', () => {
    const dir = tempDir();
    const text = configTemplate(
      planConfig(dir, model('stories260k'), 'causal-lm', {
        train: TRAIN,
        eval: null,
        evalFraction: 0,
        textField: 'sentence',
      }),
    );
    const lines = text.split('\n');
    const ratio = lines.findIndex((l) => l.trim().startsWith('loraplus_lr_ratio: 16'));
    assert.ok(ratio > 0);
    assert.match(lines.slice(ratio - 2, ratio + 1).join('\n'), /λ = 2\^4 = 16 is the usual/);
    assert.match(lines[ratio], /# λ: lora_B's learning rate is 0\.0032/);
    // No evaluation data: no eval_every (it would warn), and the file as written on disk checks clean too.
    assert.ok(!/eval_every/.test(text));
    const file = path.join(dir, 'stories260k.lora.yaml');
    fs.writeFileSync(file, text);
    assert.deepEqual(
      checkConfigFile(file).problems.filter((p) => p.severity !== 'hint' && p.severity !== 'info'),
      [],
    );
  });

  test('eval_fraction when there is no eval file; max_length capped at the model positions', () => {
    const dir = tempDir();
    const gpt2 = model('tiny-random-gpt2');
    const text = configTemplate(
      planConfig(dir, gpt2, 'causal-lm', { train: TRAIN, eval: null, evalFraction: 0.05, textField: 'sentence' }),
    );
    const { config, problems } = checkConfigText(text, dir);
    assert.deepEqual(
      problems.filter((p) => p.severity === 'error' || p.severity === 'warning'),
      [],
    );
    assert.equal(config!.data.eval_fraction, 0.05);
    assert.equal(config!.training.eval_every, 100);
    assert.equal(config!.data.max_length, gpt2.maxPositions); // n_positions 64 < the usual 128
  });
});
