// The GPU code path: one LoRA+ training step on the WebGPU backend (Mesa lavapipe on CPU-only machines) gives the
// same loss and gradients as on wasm. Kept tiny: lavapipe does about 3 GFLOP/s.
// Skipped when no WebGPU adapter exists, unless LORAPLUS_REQUIRE_WEBGPU=1 (CI), where it must run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../src/engine/backend/select';
import { Rng } from '../../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../../src/engine/train/inputs';
import { Trainables } from '../../../src/engine/train/trainables';
import { maxAbsDiff, STORIES } from '../../helpers/shared';

async function oneStep(): Promise<{ loss: number; grads: number[][] }> {
  const folder = openModelFolder(STORIES);
  const rng = new Rng(5);
  const model = buildModel(folder, 'sequence-classification', 2, rng);
  const weights = new Trainables(
    model,
    { r: 2, lora_alpha: 4, lora_dropout: 0, use_rslora: false, target_modules: 'all-linear', modules_to_save: null },
    folder.family,
    () => rng.next(),
    null,
  );
  for (const l of weights.lora.values()) l.B.assign(tf.fill(l.B.shape, 0.01)); // non-zero B so ∇A is not zero
  const ids = tf.tensor2d(
    [
      [1, 403, 407, 261, 378, 432],
      [1, 312, 410, 439, 0, 0],
    ],
    undefined,
    'int32',
  );
  const mask = tf.tensor2d(
    [
      [1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0, 0],
    ],
    undefined,
    'int32',
  );
  const labels = tf.tensor1d([1, 0], 'int32');
  const params = weights.params();
  const { value, grads } = tf.variableGrads(
    () => model.loss({ inputIds: ids, attentionMask: mask, typeIds: null, labels }, weights),
    params.map((p) => p.variable),
  );
  const out = {
    loss: (await value.data())[0],
    grads: await Promise.all(params.map(async (p) => Array.from(await grads[p.variable.name].data()))),
  };
  tf.dispose([ids, mask, labels, value, ...Object.values(grads)]);
  weights.dispose();
  model.dispose();
  return out;
}

describe('webgpu backend', () => {
  it('one training step (Llama, all-linear LoRA, classification head) matches wasm to 1e-4', async (t) => {
    await selectBackend('wasm');
    const ref = await oneStep();
    try {
      const info = await selectBackend('webgpu');
      t.diagnostic(`webgpu device: ${info.name}`);
    } catch (err) {
      if (process.env.LORAPLUS_REQUIRE_WEBGPU === '1') throw err;
      t.skip(`no WebGPU adapter here: ${(err as Error).message}`);
      return;
    }
    const gpu = await oneStep();
    assert.ok(Math.abs(gpu.loss - ref.loss) < 1e-4, `loss ${gpu.loss} vs ${ref.loss}`);
    gpu.grads.forEach((g, i) =>
      assert.ok(maxAbsDiff(g, ref.grads[i]) < 1e-4, `gradient ${i}: ${maxAbsDiff(g, ref.grads[i])}`),
    );
    assert.ok(
      ref.grads.some((g) => g.some((v) => Math.abs(v) > 1e-6)),
      'gradients are not all zero',
    );
  });
});
