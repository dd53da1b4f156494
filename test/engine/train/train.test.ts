// The training engine end to end on the real stories260k checkpoint: the LoRA+ reference trajectory, resume,
// tensor leaks, the run folder's files, and a run that diverges.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { adapterWeightsFromSafetensors, loadAdapter, makeAdapterConfig, saveAdapter } from '../../../src/adapters/peft';
import { readSafetensors } from '../../../src/adapters/safetensors';
import { configFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import {
  maxAbsDiff,
  readJson,
  REFERENCE,
  SST2,
  STORIES,
  tempDir,
  useBackend,
  withLearningRate,
} from '../../helpers/shared';

interface Trajectory {
  r: number;
  lora_alpha: number;
  learning_rate: number;
  loraplus_lr_ratio: number;
  steps: number;
  batch: { input_ids: number[][] };
  losses: number[];
  target_modules: string[];
}

const steps = (events: EngineEvent[]) => events.filter((e): e is StepEvent => e.type === 'step');

/** A small causal-LM run on SST-2 sentences (shuffled, with dropout, so resume must restore the RNG streams). */
function smallConfig(dir: string, training: Record<string, unknown> = {}) {
  return configFromObject(
    {
      model: STORIES,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 96 },
      lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'] },
      training: {
        learning_rate: 2e-3,
        loraplus_lr_ratio: 16,
        batch_size: 4,
        max_steps: 6,
        lr_scheduler: 'linear',
        warmup_steps: 2,
        seed: 3,
        ...training,
      },
    },
    dir,
  );
}

describe('train()', () => {
  before(() => useBackend());

  it('reproduces the LoRA+ reference trajectory (losses within 1e-4 relative, final adapter)', async () => {
    const ref = readJson<Trajectory>(path.join(REFERENCE, 'loraplus_llama.json'));
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'batch.jsonl'),
      ref.batch.input_ids.map((ids) => JSON.stringify({ input_ids: ids })).join('\n'),
    );
    // The reference's starting adapter, as a PEFT folder (init_adapter).
    const init = adapterWeightsFromSafetensors(
      readSafetensors(path.join(REFERENCE, 'loraplus_llama.init_adapter.safetensors')).tensors,
      'init',
    );
    saveAdapter(path.join(dir, 'init'), {
      ...init,
      config: makeAdapterConfig({ r: ref.r, lora_alpha: ref.lora_alpha, target_modules: ['q_proj', 'v_proj'] }),
    });
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'reference',
        data: { train: 'batch.jsonl', max_length: 32 },
        lora: { r: ref.r, lora_alpha: ref.lora_alpha, lora_dropout: 0, init_adapter: 'init' },
        training: {
          learning_rate: ref.learning_rate,
          loraplus_lr_ratio: ref.loraplus_lr_ratio,
          weight_decay: 0,
          batch_size: 4,
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
    const losses = steps(events).map((e) => e.loss);
    assert.equal(losses.length, ref.steps);
    losses.forEach((l, i) =>
      assert.ok(Math.abs(l - ref.losses[i]) / ref.losses[i] < 1e-4, `step ${i + 1}: ${l} vs ${ref.losses[i]}`),
    );

    // Final adapter: each tensor within 1e-4 relative (Frobenius); elementwise within 2e-4 (Adam divides by √v, so a
    // near-zero gradient entry turns float32 rounding into up to ~1e-4 of update on that one entry).
    const final = loadAdapter(result.finalAdapter!);
    const expected = adapterWeightsFromSafetensors(
      readSafetensors(path.join(REFERENCE, 'loraplus_llama.final_adapter.safetensors')).tensors,
      'final',
    );
    assert.deepEqual([...final.lora.keys()].sort(), [...ref.target_modules].sort());
    for (const [module, pair] of expected.lora) {
      for (const k of ['A', 'B'] as const) {
        const got = final.lora.get(module)![k].data;
        const want = pair[k].data;
        let num = 0;
        let den = 0;
        for (let i = 0; i < want.length; i++) {
          num += (got[i] - want[i]) ** 2;
          den += want[i] ** 2;
        }
        assert.ok(Math.sqrt(num / den) < 1e-4, `${module}.lora_${k}: relative error ${Math.sqrt(num / den)}`);
        assert.ok(maxAbsDiff(got, want) < 2e-4, `${module}.lora_${k}: max |Δ| ${maxAbsDiff(got, want)}`);
      }
    }
    assert.equal(final.loraplus?.loraplus_lr_ratio, 16); // loraplus.json, beside PEFT's adapter_config.json
    assert.equal(final.config.loraplus_lr_ratio, undefined);
    assert.equal(final.config.peft_type, 'LORA');
  });

  it('a stopped run resumed from its checkpoint gives the same losses as an uninterrupted run', async () => {
    const dir = tempDir();
    const whole: EngineEvent[] = [];
    await train(smallConfig(dir), (e) => whole.push(e), undefined, { runDir: path.join(dir, 'whole') });

    const stop = new AbortController();
    const first = await train(smallConfig(dir), (e) => e.type === 'step' && e.step === 3 && stop.abort(), stop.signal, {
      runDir: path.join(dir, 'split'),
    });
    assert.equal(first.status, 'stopped');
    assert.ok(
      fs.existsSync(path.join(dir, 'split', 'checkpoints', 'step-3', 'adapter_model.safetensors')),
      'a stop leaves a checkpoint',
    );
    const resumed: EngineEvent[] = [];
    const second = await train(smallConfig(dir), (e) => resumed.push(e), undefined, {
      runDir: path.join(dir, 'split'),
      resume: true,
    });
    assert.equal(second.status, 'finished');
    assert.deepEqual(
      steps(resumed).map((e) => e.step),
      [4, 5, 6],
    );
    const a = steps(whole).map((e) => e.loss);
    const b = steps(readMetrics(path.join(dir, 'split'))).map((e) => e.loss);
    assert.equal(b.length, 6, 'metrics.jsonl reads as one run');
    b.forEach((l, i) => assert.ok(Math.abs(l - a[i]) < 1e-5, `step ${i + 1}: resumed ${l} vs uninterrupted ${a[i]}`));
  });

  it('leaks no tensors across training steps', async () => {
    const dir = tempDir();
    const counts: number[] = [];
    await train(
      smallConfig(dir, { max_steps: 5, gradient_accumulation_steps: 2 }),
      (e) => e.type === 'step' && counts.push(tf.memory().numTensors),
    );
    assert.equal(counts.length, 5);
    assert.deepEqual(counts.slice(1), Array(4).fill(counts[1]), `tensors after each step: ${counts}`);
  });

  it('writes a run folder: config.yaml, metrics.jsonl with the A/B figures, PEFT checkpoints pruned to the limit', async () => {
    const dir = tempDir();
    const r = await train(smallConfig(dir, { save_every: 2, save_total_limit: 1, log_every: 1 }), () => {});
    const files = fs.readdirSync(r.runDir).sort();
    assert.deepEqual(files, ['checkpoints', 'config.yaml', 'final', 'metrics.jsonl']);
    assert.deepEqual(
      fs.readdirSync(path.join(r.runDir, 'checkpoints')),
      ['step-4'],
      'save_total_limit: 1 keeps the newest',
    );
    assert.deepEqual(fs.readdirSync(path.join(r.runDir, 'final')).sort(), [
      'adapter_config.json',
      'adapter_model.safetensors',
      'loraplus.json', // λ and the optimizer, beside PEFT's own files
    ]);
    const events = readMetrics(r.runDir);
    const start = events[0];
    assert.equal(start.type, 'run_start');
    if (start.type === 'run_start') {
      assert.equal(start.backend, 'wasm');
      assert.deepEqual(
        start.groups.map((g) => g.name),
        ['A', 'B'],
      );
      assert.ok(Math.abs(start.groups[1].lr / start.groups[0].lr - 16) < 1e-9);
      assert.equal(start.params.lora, 5 * (4 * 64 + 64 * 4) + 5 * (4 * 64 + 32 * 4));
    }
    const s = steps(events);
    assert.equal(s.length, 6);
    assert.equal(s[0].modules.length, 10);
    for (const m of s.at(-1)!.modules) {
      for (const k of ['grad_A', 'grad_B', 'delta_A', 'delta_B'] as const)
        assert.ok(Number.isFinite(m[k]) && m[k] > 0, `${m.module} ${k} = ${m[k]}`);
    }
    assert.equal(events.at(-1)!.type, 'end');
    const saved = [...readSafetensors(path.join(r.runDir, 'final', 'adapter_model.safetensors')).tensors.keys()];
    assert.ok(saved.includes('base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight'));
  });

  it('stops a diverging run with a clear error and keeps the last good checkpoint', async () => {
    // lr·λ overflows float32 once warmup lifts it past 3.4e38 (step 2): lora_B's update becomes infinite.
    const dir = tempDir();
    const events: EngineEvent[] = [];
    await assert.rejects(
      train(
        withLearningRate(
          smallConfig(dir, { loraplus_lr_ratio: 16, warmup_steps: 4, save_every: 1, max_steps: 6, max_grad_norm: 0 }),
          1e38,
        ),
        (e) => events.push(e),
      ),
      /(the loss|the update of .*lora_B\.weight) became (NaN|Infinity|-Infinity) at step 2/,
    );
    const err = events.find((e) => e.type === 'error');
    assert.ok(err && err.type === 'error' && err.error.code === 'train/non-finite');
    const end = events.at(-1)!;
    assert.ok(
      end.type === 'end' &&
        end.status === 'failed' &&
        end.last_checkpoint?.endsWith('step-1') &&
        fs.existsSync(end.last_checkpoint),
    );
    const kept = loadAdapter(end.last_checkpoint!);
    for (const { B } of kept.lora.values()) assert.ok(B.data.every(Number.isFinite), 'the kept checkpoint is finite');
  });
});
