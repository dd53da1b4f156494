// The CLI, run in-process: validate, train, eval (with and without the trained adapter), generate, info.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { readMetrics } from '../../src/engine/runs/writer';
import { SST2, STORIES, tempDir, useBackend } from '../helpers/shared';
import { runCli } from '../helpers/cli';

const CONFIG = `# a small LoRA+ run
model: ${STORIES}
task: causal-lm
device: wasm
output_dir: runs
run_name: cli
data:
  train: ${path.join(SST2, 'dev.tsv')}
  eval: ${path.join(SST2, 'dev.tsv')}
  text_field: sentence
  max_length: 32
  max_train_samples: 64
  max_eval_samples: 48
lora:
  r: 4
  lora_alpha: 8
training:
  learning_rate: 3.0e-3
  loraplus_lr_ratio: 16
  batch_size: 8
  max_steps: 8
  eval_every: 4
`;

describe('loraplus CLI', () => {
  before(() => useBackend());

  it('validate: a typo is reported as file:line:col with a did-you-mean, and exits 1', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.lora.yaml');
    fs.writeFileSync(file, CONFIG.replace('  loraplus_lr_ratio: 16', '  loraplus_lr_raito: 16'));
    const r = await runCli(['validate', file]);
    assert.equal(r.code, 1);
    assert.match(
      r.out,
      new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:19:3: error: .*loraplus_lr_raito.*loraplus_lr_ratio`),
    );
  });

  it('train refuses a bad config before anything runs (no run folder)', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'bad.lora.yaml');
    fs.writeFileSync(file, CONFIG.replace('loraplus_lr_ratio: 16', 'loraplus_lr_ratio: 0.5'));
    const r = await runCli(['train', file]);
    assert.equal(r.code, 1);
    assert.match(r.err, /loraplus_lr_ratio/);
    assert.ok(!fs.existsSync(path.join(dir, 'runs')), 'no run folder was created');
  });

  it('train, then eval with the adapter reproduces the run’s last eval and beats the base model', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'ok.lora.yaml');
    fs.writeFileSync(file, CONFIG);
    const trained = await runCli(['train', file]);
    assert.equal(trained.code, 0, trained.err);
    const runDir = path.join(dir, 'runs', 'cli');
    const evals = readMetrics(runDir).filter((e) => e.type === 'eval');
    assert.deepEqual(
      evals.map((e) => e.step),
      [0, 4, 8],
    );
    const last = evals.at(-1)!;
    const first = evals[0];
    assert.ok(
      last.type === 'eval' && first.type === 'eval' && last.loss < first.loss - 0.05,
      `eval loss ${first.type === 'eval' && first.loss} → ${last.type === 'eval' && last.loss}`,
    );

    const base = JSON.parse((await runCli(['eval', file, '--json'])).out);
    const tuned = JSON.parse((await runCli(['eval', file, '--json', '--adapter', path.join(runDir, 'final')])).out);
    assert.ok(
      Math.abs(base.loss - (first.type === 'eval' ? first.loss : NaN)) < 1e-5,
      'eval without adapter = the run’s step-0 eval',
    );
    assert.ok(
      Math.abs(tuned.loss - (last.type === 'eval' ? last.loss : NaN)) < 1e-5,
      'eval with the final adapter = the run’s last eval',
    );
    assert.ok(tuned.perplexity < base.perplexity);

    const gen = await runCli([
      'generate',
      STORIES,
      '--prompt',
      'Once upon a time',
      '--max-new-tokens',
      '12',
      '--device',
      'wasm',
    ]);
    assert.equal(gen.code, 0, gen.err);
    assert.match(gen.out, /^Once upon a time/);
    const genA = await runCli([
      'generate',
      STORIES,
      '--prompt',
      'Once upon a time',
      '--max-new-tokens',
      '12',
      '--adapter',
      path.join(runDir, 'final'),
      '--device',
      'wasm',
    ]);
    assert.equal(genA.code, 0, genA.err);
  });

  it('info lists the Linear modules LoRA can target', async () => {
    const r = await runCli(['info', STORIES, '--json', '--device', 'wasm']);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assert.equal(info.model_type, 'llama');
    assert.equal(info.parameters, 260032);
    assert.deepEqual(info.target_module_names, [
      'q_proj',
      'k_proj',
      'v_proj',
      'o_proj',
      'gate_proj',
      'up_proj',
      'down_proj',
      'lm_head',
    ]);
    assert.deepEqual(info.default_target_modules, ['q_proj', 'v_proj']);
  });

  it('an unknown command prints the usage and exits 2', async () => {
    const r = await runCli(['trian']);
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown command 'trian'/);
  });
});
