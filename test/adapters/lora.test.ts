// LoRA math: the custom gradients against autodiff and finite differences, and merge equivalence.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import {
  disposeFrozen,
  frozenLinear,
  frozenLinearFromTransposed,
  frozenW,
  initLoraWeights,
  LoraModule,
  loraLinear,
  linear,
  tiedLinear,
} from '../../src/adapters/lora';
import { mergeWeight } from '../../src/adapters/merge';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { Rng } from '../../src/engine/data/rng';
import { openModelFolder } from '../../src/engine/train/inputs';
import { Trainables } from '../../src/engine/train/trainables';
import { LlamaModel } from '../../src/models/llama/model';
import { crossEntropy } from '../../src/models/layers';
import { NO_ADAPTERS } from '../../src/models/types';
import { maxAbsDiff, STORIES, useBackend, values } from '../helpers/shared';

const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

describe('LoRA linear', () => {
  before(() => useBackend());

  it('custom gradients equal autodiff of the plain formula (x, A, B)', async () => {
    const w = rnd([6, 5], 1) as tf.Tensor2D;
    const base = frozenLinear(tf.clone(w), rnd([6], 2) as tf.Tensor1D); // it takes ownership: keeps Wᵀ only
    const lora = new LoraModule('m', rnd([3, 5], 3) as tf.Tensor2D, rnd([6, 3], 4) as tf.Tensor2D, 2.5, 0);
    const x = rnd([4, 5], 5) as tf.Tensor2D;
    const r = rnd([4, 6], 6);
    // tf.grads hands f the very tensors it differentiates by, so lora.A and lora.B are the A and B here.
    const ours = tf.grads((xx: tf.Tensor) => tf.sum(tf.mul(loraLinear(xx as tf.Tensor2D, base, lora, null), r)))([
      x,
      lora.A,
      lora.B,
    ]);
    const plain = tf.grads((xx: tf.Tensor, A: tf.Tensor, B: tf.Tensor) => {
      const y = tf.add(
        tf.add(tf.matMul(xx, w, false, true), base.bias!),
        tf.mul(tf.matMul(tf.matMul(xx, A, false, true), B, false, true), 2.5),
      );
      return tf.sum(tf.mul(y, r));
    })([x, lora.A, lora.B]);
    for (let i = 0; i < 3; i++)
      assert.ok(maxAbsDiff(await values(ours[i]), await values(plain[i])) < 1e-5, `gradient ${i}`);
    lora.dispose();
  });

  it('stores a frozen weight once (Wᵀ) and still gives dx = dy·W: from W, from Wᵀ, tied, with and without LoRA', async () => {
    const w = rnd([6, 5], 31) as tf.Tensor2D;
    const bias = rnd([6], 32) as tf.Tensor1D;
    const lora = new LoraModule('m', rnd([3, 5], 35) as tf.Tensor2D, rnd([6, 3], 36) as tf.Tensor2D, 0.5, 0);
    const bases = {
      'frozenLinear(W)': frozenLinear(tf.clone(w), tf.clone(bias)),
      'frozenLinearFromTransposed(Wᵀ)': frozenLinearFromTransposed(tf.transpose(w), tf.clone(bias)),
      'tiedLinear(E)': { ...tiedLinear(w), bias: tf.clone(bias) },
    };
    assert.deepEqual(
      Object.keys(bases['frozenLinear(W)']).sort(),
      ['bias', 'fanInFanOut', 'inFeatures', 'outFeatures', 'wT'],
      'W itself is not kept',
    );
    assert.deepEqual(
      [
        bases['frozenLinear(W)'].fanInFanOut,
        bases['frozenLinearFromTransposed(Wᵀ)'].fanInFanOut,
        bases['tiedLinear(E)'].fanInFanOut,
      ],
      [false, true, false],
    );
    // 1 row: dx = (Wᵀ·dyᵀ)ᵀ (N·(in + out) < in·out); 4 rows: dx = dy·W with a transient W.
    for (const rows of [1, 4]) {
      const x = rnd([rows, 5], 33) as tf.Tensor2D;
      const r = rnd([rows, 6], 34);
      const plain = (withLora: boolean) =>
        tf.grad((xx: tf.Tensor) => {
          let y = tf.add(tf.matMul(xx, w, false, true), bias);
          if (withLora) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(xx, lora.A, false, true), lora.B, false, true), 0.5));
          return tf.sum(tf.mul(y, r));
        })(x);
      for (const [name, base] of Object.entries(bases)) {
        assert.deepEqual([base.inFeatures, base.outFeatures, ...base.wT.shape], [5, 6, 5, 6], name);
        for (const withLora of [false, true]) {
          const before = tf.memory().numTensors;
          const dx = tf.grad((xx: tf.Tensor) =>
            tf.sum(
              tf.mul(withLora ? loraLinear(xx as tf.Tensor2D, base, lora, null) : linear(xx as tf.Tensor2D, base), r),
            ),
          )(x);
          assert.equal(tf.memory().numTensors, before + 1, `${name}: only dx is left (no transient W)`);
          const diff = maxAbsDiff(await values(dx), await values(plain(withLora)));
          assert.ok(diff < 1e-5, `${name}${withLora ? ' + LoRA' : ''}, ${rows} rows: dx differs by ${diff}`);
        }
      }
    }
    for (const [name, base] of Object.entries(bases)) {
      const back = frozenW(base);
      assert.ok(maxAbsDiff(await values(back), await values(w)) === 0, `${name}: frozenW gives W back`);
      tf.dispose(back);
      disposeFrozen(base);
    }
    lora.dispose();
  });

  it('gradients of A and B match central finite differences of a cross-entropy loss', async () => {
    const base = frozenLinear(rnd([7, 4], 11) as tf.Tensor2D, null);
    const A0 = await values(rnd([2, 4], 12));
    const B0 = await values(rnd([7, 2], 13));
    const x = rnd([5, 4], 14) as tf.Tensor2D;
    const labels = tf.tensor1d([0, 3, 6, 2, 1], 'int32');
    const ones = tf.ones([5]) as tf.Tensor1D;
    const lossAt = (a: number[], b: number[]) =>
      tf
        .tidy(() => {
          const l = new LoraModule('fd', tf.tensor2d(a, [2, 4]), tf.tensor2d(b, [7, 2]), 0.5, 0);
          const v = crossEntropy(loraLinear(x, base, l, null), labels, ones);
          const out = v.dataSync()[0];
          l.dispose();
          return tf.scalar(out);
        })
        .dataSync()[0];
    const lora = new LoraModule('fd', tf.tensor2d(A0, [2, 4]), tf.tensor2d(B0, [7, 2]), 0.5, 0);
    const { grads } = tf.variableGrads(
      () => crossEntropy(loraLinear(x, base, lora, null), labels, ones),
      [lora.A, lora.B],
    );
    const gA = await values(grads[lora.A.name]);
    const gB = await values(grads[lora.B.name]);
    const eps = 1e-2;
    for (const [which, p0, g] of [
      ['A', A0, gA],
      ['B', B0, gB],
    ] as const) {
      for (let i = 0; i < p0.length; i++) {
        const plus = [...p0];
        const minus = [...p0];
        plus[i] += eps;
        minus[i] -= eps;
        const fd =
          which === 'A'
            ? (lossAt(plus, B0) - lossAt(minus, B0)) / (2 * eps)
            : (lossAt(A0, plus) - lossAt(A0, minus)) / (2 * eps);
        assert.ok(
          Math.abs(fd - g[i]) < 2e-3 + 2e-2 * Math.abs(fd),
          `∂L/∂${which}[${i}]: autodiff ${g[i]} vs finite difference ${fd}`,
        );
      }
    }
    lora.dispose();
  });

  it('with B = 0 (PEFT init) the adapted layer equals the base layer', async () => {
    const base = frozenLinear(rnd([6, 5], 21) as tf.Tensor2D, null);
    const rng = new Rng(3);
    const { A, B } = initLoraWeights(4, 5, 6, () => rng.next());
    const bound = 1 / Math.sqrt(5);
    assert.ok(
      (await values(A)).every((v) => Math.abs(v) <= bound),
      'A ~ U(-1/√in, 1/√in)',
    );
    const lora = new LoraModule('z', A, B, 2, 0);
    const x = rnd([3, 5], 22) as tf.Tensor2D;
    assert.ok(maxAbsDiff(await values(loraLinear(x, base, lora, null)), await values(linear(x, base))) === 0);
    lora.dispose();
  });
});

describe('merge', () => {
  before(() => useBackend());

  it('a model with W + scaling·B·A merged in gives the adapter model’s logits (≤ 1e-4)', async () => {
    const folder = openModelFolder(STORIES);
    const weights = loadModelWeights(STORIES);
    const opts = { task: 'causal-lm' as const, numLabels: 0, normal: Math.random, dir: STORIES };
    const model = new LlamaModel(folder.config, weights, opts);
    const rng = new Rng(7);
    const adapter = new Trainables(
      model,
      { r: 4, lora_alpha: 8, lora_dropout: 0, use_rslora: false, target_modules: 'all-linear', modules_to_save: null },
      folder.family,
      () => rng.next(),
      null,
    );
    for (const l of adapter.lora.values()) l.B.assign(tf.mul(tf.randomNormal(l.B.shape, 0, 1, 'float32', 9), 0.05)); // non-zero B
    const saved = await adapter.toAdapter(STORIES, 'CAUSAL_LM', {});
    const merged = new Map<string, HostTensor>(weights);
    for (const [module, { A, B }] of saved.lora) {
      merged.set(
        `${module}.weight`,
        mergeWeight(weights.get(`${module}.weight`)!, A, B, adapter.lora.get(module)!.scaling),
      );
    }
    const mergedModel = new LlamaModel(folder.config, merged, opts);
    const ids = tf.tensor2d([[1, 403, 407, 261, 378, 432, 383, 286, 261, 376]], undefined, 'int32');
    const batch = { inputIds: ids, attentionMask: tf.onesLike(ids), typeIds: null, labels: null };
    const withAdapter = await values(model.logits(batch, adapter));
    const base = await values(model.logits(batch, NO_ADAPTERS));
    const mergedLogits = await values(mergedModel.logits(batch, NO_ADAPTERS));
    assert.ok(maxAbsDiff(withAdapter, base) > 1e-2, 'the adapter changes the outputs');
    assert.ok(
      maxAbsDiff(withAdapter, mergedLogits) <= 1e-4,
      `merged vs adapter: ${maxAbsDiff(withAdapter, mergedLogits)}`,
    );
    adapter.dispose();
    model.dispose();
    mergedModel.dispose();
  });
});
