// training.optimizer riemannian and lorafa on the real stories260k checkpoint: each reproduces a real PEFT 0.21
// trajectory (create_riemannian_optimizer, create_lorafa_optimizer; losses and final adapter within 1e-4, from the
// reference's init adapter), lorafa keeps lora_A frozen and saves it, the run says which optimizer trained, a stop
// and resume continues exactly, and no tensor leaks across steps.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter } from '../../../src/adapters/peft';
import { configFromObject } from '../../../src/config/load';
import { optimizerText } from '../../../src/engine/runs/render';
import { summarizeRun } from '../../../src/engine/runs/summary';
import { readMetrics } from '../../../src/engine/runs/writer';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import { maxAbsDiff, readJson, REFERENCE, SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

interface PeftTrajectory {
  lora: { r: number; lora_alpha: number; target_modules: string[] };
  optimizer: string; // the PEFT call that made it
  steps: number;
  losses: number[];
}

const steps = (events: EngineEvent[]) => events.filter((e): e is StepEvent => e.type === 'step');

/** ‖got − want‖ / ‖want‖ (Frobenius). */
function relativeError(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < want.length; i++) {
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** Trains `name`'s reference setup (its batch, lr 2e-3, constant, no clipping) from its init adapter. */
async function trainReference(name: string, training: Record<string, unknown>) {
  const ref = readJson<PeftTrajectory>(path.join(REFERENCE, `${name}.json`));
  const batch = readJson<{ batch: { input_ids: number[][] } }>(path.join(REFERENCE, 'loraplus_llama.json')).batch;
  const dir = tempDir();
  const rows = batch.input_ids.map((ids) => JSON.stringify({ input_ids: ids }));
  fs.writeFileSync(path.join(dir, 'batch.jsonl'), rows.join('\n'));
  const config = configFromObject(
    {
      model: STORIES,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: 'runs',
      run_name: name,
      data: { train: 'batch.jsonl', max_length: 32 },
      lora: {
        r: ref.lora.r,
        lora_alpha: ref.lora.lora_alpha,
        lora_dropout: 0,
        init_adapter: path.join(REFERENCE, `${name}.init_adapter`),
      },
      training: {
        learning_rate: 2e-3,
        weight_decay: 0,
        batch_size: batch.input_ids.length,
        max_steps: ref.steps,
        lr_scheduler: 'constant',
        max_grad_norm: 0,
        shuffle: false,
        ...training,
      },
    },
    dir,
  );
  const events: EngineEvent[] = [];
  const result = await train(config, (e) => events.push(e));
  assert.equal(result.status, 'finished');
  return { ref, events, final: loadAdapter(result.finalAdapter!), runDir: result.runDir };
}

/** Losses within 1e-4 relative; every final tensor within 1e-4 relative (Frobenius) and 2e-4 elementwise. */
function assertFollows(
  name: string,
  ref: PeftTrajectory,
  events: EngineEvent[],
  final: ReturnType<typeof loadAdapter>,
) {
  const losses = steps(events).map((e) => e.loss);
  assert.equal(losses.length, ref.steps);
  losses.forEach((l, i) =>
    assert.ok(Math.abs(l - ref.losses[i]) / ref.losses[i] < 1e-4, `step ${i + 1}: ${l} vs ${ref.losses[i]}`),
  );
  const expected = loadAdapter(path.join(REFERENCE, `${name}.final_adapter`));
  assert.deepEqual([...final.lora.keys()].sort(), [...ref.lora.target_modules].sort());
  for (const [module, pair] of expected.lora) {
    for (const k of ['A', 'B'] as const) {
      const [got, want] = [final.lora.get(module)![k].data, pair[k].data];
      const rel = relativeError(got, want);
      assert.ok(rel < 1e-4, `${module}.lora_${k}: relative error ${rel}`);
      assert.ok(maxAbsDiff(got, want) < 2e-4, `${module}.lora_${k}: max |Δ| ${maxAbsDiff(got, want)}`);
    }
  }
  assert.equal(final.config.peft_type, 'LORA');
}

describe('PEFT optimizers (training.optimizer)', () => {
  before(() => useBackend());

  it('riemannian reproduces PEFT create_riemannian_optimizer (reg 1e-2): losses and final adapter within 1e-4', async () => {
    const { ref, events, final, runDir } = await trainReference('riemannian_llama', {
      optimizer: 'riemannian',
      optimizer_args: { reg: 1e-2 },
    });
    assert.match(ref.optimizer, /create_riemannian_optimizer\(.*reg=0\.01/);
    assertFollows('riemannian_llama', ref, events, final);
    const start = events.find((e) => e.type === 'run_start');
    assert.ok(start?.type === 'run_start');
    assert.equal(start.optimizer, 'riemannian');
    assert.deepEqual(start.optimizer_args, { reg: 1e-2 });
    assert.equal(start.loraplus_lr_ratio, 1, 'one learning rate: λ as applied is 1');
    assert.equal(optimizerText(start), 'riemannian (reg 0.01)', 'the CLI says what trained');
    const settings = summarizeRun(runDir, false).settings; // what the dashboard's header and the runs tree show
    assert.deepEqual([settings.optimizer, settings.ratio, settings.lrA, settings.lrB], ['riemannian', 1, 2e-3, 2e-3]);
    assert.deepEqual(
      start.groups.map((g) => [g.name, g.lr]),
      [
        ['A', 2e-3],
        ['B', 2e-3],
      ],
    );
  });

  it('lorafa reproduces PEFT create_lorafa_optimizer: lora_A frozen and saved, losses and final adapter within 1e-4', async () => {
    const { ref, events, final } = await trainReference('lorafa_llama', { optimizer: 'lorafa' });
    assert.match(ref.optimizer, /create_lorafa_optimizer\(/);
    assertFollows('lorafa_llama', ref, events, final);
    const init = loadAdapter(path.join(REFERENCE, 'lorafa_llama.init_adapter'));
    for (const [module, pair] of init.lora)
      assert.deepEqual(final.lora.get(module)!.A.data, pair.A.data, `${module}.lora_A is saved as it started`);
    const start = events.find((e) => e.type === 'run_start');
    assert.ok(start?.type === 'run_start');
    assert.equal(start.optimizer, 'lorafa');
    assert.equal(optimizerText(start), 'lorafa (lora_A frozen)');
    assert.deepEqual(
      start.groups.map((g) => g.name),
      ['B'],
      'lora_A is in no group: frozen',
    );
    assert.equal(start.params.trainable, 5 * (64 * 4 + 32 * 4), 'lora_B of q_proj [64, 4] and v_proj [32, 4] only');
    for (const m of steps(events).at(-1)!.modules) {
      assert.equal(m.delta_A, 0);
      assert.equal(m.grad_A, 0);
      assert.ok(m.delta_B > 0);
    }
  });

  for (const optimizer of ['riemannian', 'lorafa']) {
    it(`${optimizer}: a stopped and resumed run gives the uninterrupted losses, and leaks no tensors`, async () => {
      const dir = tempDir();
      const config = () =>
        configFromObject(
          {
            model: STORIES,
            task: 'causal-lm',
            device: 'wasm',
            output_dir: path.join(dir, 'runs'),
            data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 48 },
            lora: { r: 4, lora_alpha: 8, lora_dropout: 0.1, target_modules: ['q_proj', 'v_proj'] },
            training: { optimizer, learning_rate: 2e-3, batch_size: 4, max_steps: 5, warmup_steps: 1, seed: 3 },
          },
          dir,
        );
      const whole: EngineEvent[] = [];
      const counts: number[] = [];
      await train(
        config(),
        (e) => {
          whole.push(e);
          if (e.type === 'step') counts.push(tf.memory().numTensors);
        },
        undefined,
        { runDir: path.join(dir, 'whole') },
      );
      assert.deepEqual(counts.slice(1), Array(4).fill(counts[1]), `tensors after each step: ${counts}`);

      const stop = new AbortController();
      const runDir = path.join(dir, 'split');
      await train(config(), (e) => e.type === 'step' && e.step === 2 && stop.abort(), stop.signal, { runDir });
      const second = await train(config(), () => {}, undefined, { runDir, resume: true });
      assert.equal(second.status, 'finished');
      const a = steps(whole).map((e) => e.loss);
      const b = steps(readMetrics(runDir)).map((e) => e.loss);
      assert.equal(b.length, 5);
      b.forEach((l, i) => assert.ok(Math.abs(l - a[i]) < 1e-5, `step ${i + 1}: resumed ${l} vs uninterrupted ${a[i]}`));
    });
  }
});
