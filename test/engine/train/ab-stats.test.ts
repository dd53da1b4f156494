// The A/B figures a step event carries for each LoRA module (the dashboard's A/B view), against a direct computation
// from the adapters the run saved before and after that step.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadAdapter } from '../../../src/adapters/peft';
import type { HostTensor } from '../../../src/adapters/safetensors';
import { configFromObject } from '../../../src/config/load';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

/** ‖X·Y‖_F in float64, X [m, k], Y [k, n]. */
function frobProduct(x: HostTensor, y: HostTensor): number {
  const [m, k] = x.shape;
  const n = y.shape[1];
  let sum = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let t = 0; t < k; t++) v += x.data[i * k + t] * y.data[t * n + j];
      sum += v * v;
    }
  }
  return Math.sqrt(sum);
}

const minus = (a: HostTensor, b: HostTensor): HostTensor => ({
  ...a,
  data: Float32Array.from(a.data, (v, i) => v - b.data[i]),
});
const norm = (a: HostTensor) => Math.sqrt(Array.from(a.data).reduce((s, v) => s + v * v, 0));

describe('A/B statistics of a step', () => {
  before(() => useBackend());

  it('reports ‖ΔA‖, ‖ΔB‖, ‖s·B·ΔA‖ and ‖s·ΔB·A‖ as the saved adapters give them', async () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'ab',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 32 },
        lora: { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: ['q_proj', 'v_proj'] },
        training: {
          learning_rate: 2e-3,
          loraplus_lr_ratio: 16,
          batch_size: 4,
          max_steps: 3,
          lr_scheduler: 'constant',
          weight_decay: 0,
          save_every: 1,
          log_every: 1,
          seed: 1,
        },
      },
      dir,
    );
    const events: EngineEvent[] = [];
    const result = await train(config, (e) => events.push(e));
    const steps = events.filter((e): e is StepEvent => e.type === 'step');
    assert.equal(steps.length, 3);
    // Step 1 starts from B = 0: A's update cannot change the output yet, B's does.
    for (const m of steps[0].modules) {
      assert.equal(m.out_A, 0);
      assert.ok(m.out_B! > 0, `${m.module}: out_B ${m.out_B}`);
    }
    const before1 = loadAdapter(path.join(result.runDir, 'checkpoints', 'step-1'));
    const after2 = loadAdapter(path.join(result.runDir, 'checkpoints', 'step-2'));
    const scaling = 8 / 4;
    for (const m of steps[1].modules) {
      const [a1, a2] = [before1.lora.get(m.module)!, after2.lora.get(m.module)!];
      const [dA, dB] = [minus(a2.A, a1.A), minus(a2.B, a1.B)];
      const close = (got: number | undefined, want: number, what: string) =>
        assert.ok(Math.abs(got! - want) <= 1e-4 * want + 1e-9, `${m.module} ${what}: ${got} vs ${want}`);
      close(m.delta_A, norm(dA), '‖ΔA‖');
      close(m.delta_B, norm(dB), '‖ΔB‖');
      close(m.out_A, scaling * frobProduct(a1.B, dA), '‖s·B·ΔA‖');
      close(m.out_B, scaling * frobProduct(dB, a1.A), '‖s·ΔB·A‖');
    }
  });
});
