// The training engine on an encoder classifier: tiny-random-bert with LoRA+ on query/value and its `classifier` head
// trained in full, against the LoRA+ reference trajectory of an independent PyTorch implementation.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors, loadAdapter, makeAdapterConfig, saveAdapter } from '../../../src/adapters/peft';
import { readSafetensors, type HostTensor } from '../../../src/adapters/safetensors';
import { configFromObject } from '../../../src/config/load';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import { maxAbsDiff, readJson, REFERENCE, SHARED, tempDir, useBackend } from '../../helpers/shared';

interface Trajectory {
  r: number;
  lora_alpha: number;
  learning_rate: number;
  loraplus_lr_ratio: number;
  steps: number;
  target_modules: string[];
  batch: { input_ids: number[][]; attention_mask: number[][]; labels: number[] };
  losses: number[];
}

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');

describe('train() on tiny-random-bert (sequence classification)', () => {
  before(() => useBackend());

  it('reproduces the LoRA+ reference trajectory (losses within 1e-4 relative, final adapter and head within 1e-4)', async () => {
    const ref = readJson<Trajectory>(path.join(REFERENCE, 'loraplus_bert_cls.json'));
    const dir = tempDir();
    // The reference's batch as pre-tokenized rows; the engine re-pads them (to a multiple of 8: masked, no effect).
    const rows = ref.batch.input_ids.map((ids, i) =>
      JSON.stringify({ input_ids: ids, attention_mask: ref.batch.attention_mask[i], label: ref.batch.labels[i] }),
    );
    fs.writeFileSync(path.join(dir, 'batch.jsonl'), rows.join('\n'));
    // The reference's starting adapter, as a PEFT folder; the head starts from the checkpoint's `classifier`.
    const init = adapterWeightsFromSafetensors(
      readSafetensors(path.join(REFERENCE, 'loraplus_bert_cls.init_adapter.safetensors')).tensors,
      'init',
    );
    saveAdapter(path.join(dir, 'init'), {
      ...init,
      config: makeAdapterConfig({ r: ref.r, lora_alpha: ref.lora_alpha, target_modules: ['query', 'value'] }),
    });
    const config = configFromObject(
      {
        model: BERT,
        task: 'sequence-classification',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'reference',
        data: { train: 'batch.jsonl', max_length: 64, labels: ['0', '1'] },
        lora: { r: ref.r, lora_alpha: ref.lora_alpha, lora_dropout: 0, init_adapter: 'init' },
        training: {
          learning_rate: ref.learning_rate,
          loraplus_lr_ratio: ref.loraplus_lr_ratio,
          weight_decay: 0,
          batch_size: 8,
          max_steps: ref.steps,
          lr_scheduler: 'constant',
          max_grad_norm: 0,
          shuffle: false,
        },
      },
      dir,
    );
    const events: EngineEvent[] = [];
    const result = await train(config, (e) => events.push(e));
    assert.equal(result.status, 'finished');

    const start = events.find((e) => e.type === 'run_start');
    assert.ok(start && start.type === 'run_start');
    // PEFT's groups: classifier.weight with lora_A at lr; classifier.bias (1-D) with lora_B at lr·ratio.
    const group = (name: string) => start.groups.find((g) => g.params.includes(name))?.name;
    assert.equal(group('classifier.weight'), 'A');
    assert.equal(group('classifier.bias'), 'B_no_decay');

    const losses = events.filter((e): e is StepEvent => e.type === 'step').map((e) => e.loss);
    assert.equal(losses.length, ref.steps);
    losses.forEach((l, i) =>
      assert.ok(Math.abs(l - ref.losses[i]) / ref.losses[i] < 1e-4, `step ${i + 1}: ${l} vs ${ref.losses[i]}`),
    );

    const final = loadAdapter(result.finalAdapter!);
    assert.deepEqual(final.config.modules_to_save, ['classifier']);
    assert.deepEqual([...final.lora.keys()].sort(), [...ref.target_modules].sort());
    const expected = adapterWeightsFromSafetensors(
      readSafetensors(path.join(REFERENCE, 'loraplus_bert_cls.final_adapter.safetensors')).tensors,
      'final',
    );
    const close = (name: string, got: HostTensor | undefined, want: HostTensor) => {
      assert.ok(got, `missing ${name}`);
      assert.deepEqual(got.shape, want.shape, name);
      const d = maxAbsDiff(got.data, want.data);
      assert.ok(d < 1e-4, `${name}: max |Δ| ${d}`);
    };
    for (const [module, pair] of expected.lora) {
      close(`${module}.lora_A`, final.lora.get(module)?.A, pair.A);
      close(`${module}.lora_B`, final.lora.get(module)?.B, pair.B);
    }
    const head = readSafetensors(path.join(REFERENCE, 'loraplus_bert_cls.final_head.safetensors')).tensors;
    assert.equal(head.size, 2);
    for (const [name, t] of head) close(name, final.modulesToSave.get(name), t);
  });
});
