// "Train with these settings" (src/vscode/tune-config.ts): the tuned config's name next to the original, and its text:
// the winner's numbers in place of `auto`, the user's comments and other keys kept, a run_name that does not collide
// with the tune's folder, and a config that validates without `auto`.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { autoKeys } from '../../src/config/auto';
import { checkConfigText } from '../../src/engine/checks/config';
import type { TuneWinner } from '../../src/protocol/tune';
import { tunedConfigPath, tunedConfigText } from '../../src/vscode/tune-config';
import { SST2, STORIES, tempDir } from '../helpers/shared';

const winner = (lr: number, ratio: number, optimizer = 'adamw'): TuneWinner => ({
  trial: 'lr5e-4-ratio4',
  settings: { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer },
  run_dir: '/w/runs/sst2/trials/lr5e-4-ratio4',
  final_adapter: '/w/runs/sst2/trials/lr5e-4-ratio4/final',
  metric: 0.61,
  eval: { loss: 0.66, accuracy: 0.585, examples: 872 },
});

const CONFIG = `# SST-2 sentiment on stories260k
model: ${STORIES}
task: sequence-classification
run_name: sst2
data:
  train: ${path.join(SST2, 'dev.tsv')}
  eval_fraction: 0.25
  text_field: sentence
  max_length: 32
lora:
  r: 4
training:
  learning_rate: auto   # lr of lora_A: the tuner picks it
  loraplus_lr_ratio: auto
  batch_size: 8         # what fits
  max_steps: 9
`;

describe('the tuned config', () => {
  it('goes next to the original, with a name the extension recognises as a config', () => {
    assert.equal(tunedConfigPath('/w/sst2.lora.yaml'), '/w/sst2.tuned.lora.yaml');
    assert.equal(tunedConfigPath('/w/a.loraplus.yaml'), '/w/a.tuned.loraplus.yaml');
    assert.equal(tunedConfigPath('/w/loraplus.yaml'), '/w/loraplus.tuned.lora.yaml');
    assert.equal(tunedConfigPath('/w/exp.yml'), '/w/exp.tuned.lora.yaml');
  });

  it("has the winner's numbers for auto, keeps comments and keys, renames the run, and validates", () => {
    const text = tunedConfigText(CONFIG, 'sst2', winner(5e-4, 4));
    const doc = parse(text) as { run_name: string; training: Record<string, unknown> };
    assert.equal(doc.training.learning_rate, 5e-4);
    assert.equal(doc.training.loraplus_lr_ratio, 4);
    assert.equal(doc.training.batch_size, 8);
    assert.equal(doc.run_name, 'sst2-tuned', 'the tune took the name sst2 for its folder');
    assert.ok(!('optimizer' in doc.training), 'AdamW, the default, is not written into a config that did not say it');
    assert.match(text, /learning_rate: 5e-4 +# lr of lora_A: the tuner picks it/);
    assert.match(text, /batch_size: 8 +# what fits/);
    assert.match(text, /# SST-2 sentiment on stories260k/);
    assert.match(text, /^# Tuned by LoRA\+ \(tune sst2\): lr_A 5e-4, λ 4 \(lr_B 2e-3\), adamw;/);
    assert.match(text, /accuracy 58\.5% on 872 eval examples/);
    const checked = checkConfigText(text, tempDir());
    assert.deepEqual(
      checked.problems.filter((p) => p.severity === 'error').map((p) => p.message),
      [],
    );
    assert.deepEqual(autoKeys(checked.config!), []);
  });

  it('adds keys a config left to their defaults, and the optimizer when the winner is not AdamW', () => {
    const text = tunedConfigText('model: m\n', 't', winner(0.02, 16, 'riemannian'));
    const doc = parse(text) as { run_name?: string; training: Record<string, unknown> };
    assert.deepEqual(doc.training, { learning_rate: 0.02, loraplus_lr_ratio: 16, optimizer: 'riemannian' });
    assert.equal(doc.run_name, undefined, 'no run_name: the default never collides');
  });
});
