// The exported job on sft (tiny-random-qwen3, chat-rendered rows with answer-only labels, right-padded batches of
// unequal answer counts): 2 processes against 1, and both stacks against each other; and with data.packing, whose
// blocks keep their examples apart in both stacks. Runs when a Python with torch,
// transformers, peft and accelerate is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { requireValidConfig } from '../../src/config/load';
import { train } from '../../src/engine/train/train';
import type { EngineEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { EXPORT_MODULES, launch, losses, maxDeviation, twoProcesses } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { REFERENCE, SHARED, tempDir, useBackend } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);

/** tiny-random-qwen3 on the SST-2 chat rows from the reference's init adapter, with these data and training fields. */
function writeSftConfig(file: string, data: string, training: string): void {
  const chat = path.join(SHARED, 'data', 'sst2-chat');
  fs.writeFileSync(
    file,
    `model: ${path.join(SHARED, 'models', 'tiny-random-qwen3')}
task: sft
device: wasm
data: {train: ${chat}/messages.train.jsonl, eval: ${chat}/messages.dev.jsonl, ${data}, max_eval_samples: 8}
lora: {r: 8, lora_alpha: 16, target_modules: all-linear, init_adapter: ${REFERENCE}/loraplus_qwen3_sft.init_adapter}
training: {learning_rate: 1.0e-3, loraplus_lr_ratio: 16, ${training}, save_every: 0}
`,
  );
}

describe('loraplus export --to accelerate, sft', { skip: python ? false : noPython(EXPORT_MODULES) }, () => {
  const dir = tempDir();
  const file = path.join(dir, 'sft.lora.yaml');
  let one: EngineEvent[] = [];
  let two: EngineEvent[] = [];

  before(async () => {
    await useBackend();
    writeSftConfig(
      file,
      'max_length: 128, max_train_samples: 32',
      'batch_size: 4, gradient_accumulation_steps: 2, max_steps: 8, lr_scheduler: cosine, warmup_steps: 2,\n' +
        '           max_grad_norm: 1.0, eval_every: 4',
    );
    const exported = await runCli(['export', file, '--out', path.join(dir, 'job')]);
    assert.equal(exported.code, 0, exported.err);
    one = launch(python!, path.join(dir, 'job'), path.join(dir, 'one'), ['--cpu', '--num_processes', '1']);
    two = launch(python!, path.join(dir, 'job'), path.join(dir, 'two'), await twoProcesses());
  });

  it('2 processes give the losses of 1 (answer tokens counted over the global batch), within 1e-5', () => {
    assert.equal(losses(one, 'step').length, 8);
    for (const type of ['step', 'eval'] as const) {
      const d = maxDeviation(losses(one, type), losses(two, type));
      assert.ok(d < 1e-5, `${type}: max |Δloss| ${d} (measured 9.5e-7)`);
    }
  });

  it('equals our TF.js engine within 1e-4 relative', async () => {
    const ours: EngineEvent[] = [];
    await train(requireValidConfig(file), (e) => ours.push(e), undefined, { runDir: path.join(dir, 'ours') });
    for (const type of ['step', 'eval'] as const) {
      const d = maxDeviation(losses(ours, type), losses(one, type), true);
      assert.ok(d < 1e-4, `${type}: max relative |Δloss| ${d} (measured 9.3e-8)`);
    }
  });
});

describe(
  'loraplus export --to accelerate, sft with packing',
  { skip: python ? false : noPython(EXPORT_MODULES) },
  () => {
    it('packed blocks (examples kept apart, positions restarting) train as in our TF.js engine, within 1e-4', async () => {
      await useBackend();
      const dir = tempDir();
      const file = path.join(dir, 'packed.lora.yaml');
      writeSftConfig(
        file,
        'max_length: 256, packing: true, max_train_samples: 48',
        'batch_size: 2, max_steps: 6, log_every: 1, eval_every: 3',
      );
      const exported = await runCli(['export', file, '--out', path.join(dir, 'job')]);
      assert.equal(exported.code, 0, exported.err);
      const rows = fs
        .readFileSync(path.join(dir, 'job', 'data', 'train.jsonl'), 'utf8')
        .trim()
        .split('\n');
      const first = JSON.parse(rows[0]) as { position_ids: number[] };
      assert.ok(first.position_ids.filter((p) => p === 0).length > 1, 'a block holds several examples');
      const theirs = launch(python!, path.join(dir, 'job'), path.join(dir, 'torch'), ['--cpu', '--num_processes', '1']);
      const ours: EngineEvent[] = [];
      await train(requireValidConfig(file), (e) => ours.push(e), undefined, { runDir: path.join(dir, 'ours') });
      for (const type of ['step', 'eval'] as const) {
        const d = maxDeviation(losses(ours, type), losses(theirs, type), true);
        assert.ok(d < 1e-4, `${type}: max relative |Δloss| ${d}`);
      }
    });
  },
);
