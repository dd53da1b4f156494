// LoRA+ instruction tuning against real PEFT + TRL (../shared/reference/loraplus_qwen3_sft.*): tiny-random-qwen3,
// LoRA r 8 on all linear layers, λ 16, ten steps on one right-padded batch of the first four rows of
// sst2-chat/messages.train.jsonl with the loss on the assistant's answers, started from the reference's init adapter.
// Run through `loraplus train` as a user would: the batch it builds is the reference's, and the losses and final
// adapter match.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { loadAdapter } from '../../../src/adapters/peft';
import { readMetrics } from '../../../src/engine/runs/writer';
import type { StepEvent } from '../../../src/protocol/events';
import { runCli } from '../../helpers/cli';
import { readJson, REFERENCE, SHARED, tempDir } from '../../helpers/shared';

interface Reference {
  losses: number[];
  steps: number;
  batch: string; // Python repr of the padded batch
}

describe('LoRA+ SFT against PEFT + TRL', () => {
  it('ten steps through `loraplus train`: losses within 1e-4 relative, final adapter within 1e-4', async () => {
    const ref = readJson<Reference>(path.join(REFERENCE, 'loraplus_qwen3_sft.json'));
    const dir = tempDir();
    const file = path.join(dir, 'sft.lora.yaml');
    fs.writeFileSync(
      file,
      stringify({
        model: path.join(SHARED, 'models', 'tiny-random-qwen3'),
        task: 'sft',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'parity',
        data: {
          train: path.join(SHARED, 'data', 'sst2-chat', 'messages.train.jsonl'),
          max_train_samples: 4,
          max_length: 128,
        },
        lora: {
          r: 8,
          lora_alpha: 16,
          lora_dropout: 0,
          target_modules: 'all-linear',
          init_adapter: path.join(REFERENCE, 'loraplus_qwen3_sft.init_adapter'),
        },
        training: {
          learning_rate: 1e-3,
          loraplus_lr_ratio: 16,
          weight_decay: 0,
          adam_epsilon: 1e-8,
          max_grad_norm: 0,
          lr_scheduler: 'constant',
          warmup_steps: 0,
          batch_size: 4,
          shuffle: false,
          max_steps: ref.steps,
          log_every: 1,
          save_every: 0,
        },
      }),
    );
    const r = await runCli(['train', file]);
    assert.equal(r.code, 0, r.err);
    const runDir = path.join(dir, 'runs', 'parity');
    const losses = readMetrics(runDir)
      .filter((e): e is StepEvent => e.type === 'step')
      .map((e) => e.loss);
    assert.equal(losses.length, ref.losses.length);
    losses.forEach((l, i) =>
      assert.ok(Math.abs(l - ref.losses[i]) / ref.losses[i] <= 1e-4, `step ${i + 1}: ${l} vs ${ref.losses[i]}`),
    );

    const ours = loadAdapter(path.join(runDir, 'final'));
    const theirs = loadAdapter(path.join(REFERENCE, 'loraplus_qwen3_sft.final_adapter'));
    assert.deepEqual([...ours.lora.keys()].sort(), [...theirs.lora.keys()].sort());
    for (const [module, pair] of theirs.lora) {
      for (const k of ['A', 'B'] as const) {
        const [a, b] = [ours.lora.get(module)![k].data, pair[k].data];
        let [num, den] = [0, 0];
        for (let i = 0; i < b.length; i++) [num, den] = [num + (a[i] - b[i]) ** 2, den + b[i] ** 2];
        assert.ok(Math.sqrt(num / den) < 1e-4, `${module}.lora_${k}: relative error ${Math.sqrt(num / den)}`);
      }
    }
  });
});
