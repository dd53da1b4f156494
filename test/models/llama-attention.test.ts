// Llama attention as written for speed (RoPE as a matmul, GQA without repeat_kv, fused softmax gradient) against the
// plain formulation it replaced (split/concat rotate_half, Tile repeat_kv, scaled scores + bias, autodiff softmax).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { attentionBias, halfRotation } from '../../src/models/layers';
import { disposeRope, groupedAttention, ropeTables, type AttentionDims } from '../../src/models/llama/attention';
import { maxAbsDiff, useBackend, values } from '../helpers/shared';
import { invFreq, ropeParams } from '../../src/models/rope';

const THETA = 10000;

/** The previous formulation, straight from HF's modeling_llama: [N, n·hd] projections in, [N, nh·hd] out. */
function reference(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, mask: tf.Tensor2D, d: AttentionDims): tf.Tensor {
  const { b, t, nh, nkv, hd } = d;
  const inv = Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(THETA, (2 * i) / hd));
  const ang = Array.from({ length: t }, (_, p) => [...inv, ...inv].map((f) => p * f)).flat();
  const cos = tf.tensor2d(ang.map(Math.cos), [t, hd]);
  const sin = tf.tensor2d(ang.map(Math.sin), [t, hd]);
  const heads = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]);
  const rope = (x: tf.Tensor) => {
    const [x1, x2] = tf.split(x, 2, -1);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
  };
  const repeatKv = (x: tf.Tensor) =>
    tf.reshape(tf.tile(tf.reshape(x, [b, nkv, 1, t * hd]), [1, 1, nh / nkv, 1]), [b, nh, t, hd]);
  const qh = rope(heads(q, nh));
  const kh = repeatKv(rope(heads(k, nkv)));
  const vh = repeatKv(heads(v, nkv));
  const scores = tf.add(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(hd)), attentionBias(mask, true));
  const out = tf.matMul(tf.softmax(scores), vh);
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]);
}

describe('llama attention (RoPE as a matmul, GQA without Tile)', () => {
  before(() => useBackend());

  const cases: [string, AttentionDims][] = [
    ['GQA rep 2 (stories260k: 8 heads, 4 KV heads)', { b: 2, t: 7, nh: 8, nkv: 4, hd: 8 }],
    ['MHA rep 1', { b: 2, t: 5, nh: 3, nkv: 3, hd: 4 }],
    ['GQA rep 3, one KV head (Qwen2/Mistral-like)', { b: 1, t: 6, nh: 3, nkv: 1, hd: 6 }],
  ];
  for (const [name, d] of cases) {
    it(`${name}: output and gradients of q, k, v within 1e-5 of the previous formulation`, async () => {
      const { b, t, nh, nkv, hd } = d;
      const q = tf.randomNormal([b * t, nh * hd], 0, 1, 'float32', 1);
      const k = tf.randomNormal([b * t, nkv * hd], 0, 1, 'float32', 2);
      const v = tf.randomNormal([b * t, nkv * hd], 0, 1, 'float32', 3);
      const r = tf.randomNormal([b * t, nh * hd], 0, 1, 'float32', 4); // a random cotangent
      const mask = tf.tensor2d(
        Array.from({ length: b * t }, (_, i) => (i >= t && i % t >= t - 2 ? 0 : 1)),
        [b, t],
        'int32',
      ); // row 2 right-padded
      const tables = ropeTables(d, invFreq(ropeParams({ rope_theta: THETA }, 'config.json'), hd, t));
      const rot = halfRotation(hd);
      const before = tf.memory().numTensors;
      const ours = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
        const bias = attentionBias(mask, true, nh / nkv);
        return tf.sum(
          tf.mul(groupedAttention(qq as tf.Tensor2D, kk as tf.Tensor2D, vv as tf.Tensor2D, d, tables, rot, bias), r),
        );
      });
      const plain = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(tf.mul(reference(qq, kk, vv, mask, d), r)),
      );
      const gOurs = ours([q, k, v]);
      assert.equal(tf.memory().numTensors, before + 3, 'only the three gradients are left');
      const gPlain = plain([q, k, v]);
      const bias = attentionBias(mask, true, nh / nkv);
      const yOurs = await values(
        groupedAttention(q as tf.Tensor2D, k as tf.Tensor2D, v as tf.Tensor2D, d, tables, rot, bias),
      );
      const yPlain = await values(reference(q, k, v, mask, d));
      assert.ok(maxAbsDiff(yOurs, yPlain) <= 1e-5, `output: ${maxAbsDiff(yOurs, yPlain)}`);
      for (const [i, what] of ['q', 'k', 'v'].entries()) {
        const diff = maxAbsDiff(await values(gOurs[i]), await values(gPlain[i]));
        assert.ok(diff <= 1e-5, `∂/∂${what}: ${diff}`);
      }
      disposeRope(tables);
      tf.dispose([q, k, v, r, mask, rot.r, rot.rT, bias, ...gOurs, ...gPlain]);
    });
  }

  it('rotate_half as x·R: R is the signed permutation [−x₂, x₁]', async () => {
    const rot = halfRotation(4);
    assert.deepEqual(await values(tf.matMul(tf.tensor2d([[1, 2, 3, 4]]), rot.r)), [-3, -4, 1, 2]);
    tf.dispose([rot.r, rot.rT]);
  });
});
