// Gemma 3's new pieces, values and gradients: RMSNorm with (1 + w), tanh soft-capping and gelu_pytorch_tanh against
// float64 computations and tf autodiff; the sliding-window mask against transformers' rule; the attention as written
// for speed (q/k norm, RoPE as a matmul, GQA without repeat_kv, fused softmax with soft-capping) against HF's plain
// formulation by autodiff; and the whole model's LoRA gradients against finite differences.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights } from '../../src/adapters/safetensors';
import { openModelFolder } from '../../src/engine/train/inputs';
import { Trainables } from '../../src/engine/train/trainables';
import { gemmaAttention, gemmaRopeTables, headNorm } from '../../src/models/gemma3/attention';
import { geluTanh, rmsNorm1p, softcap } from '../../src/models/gemma3/layers';
import { Gemma3Model } from '../../src/models/gemma3/model';
import { attention, attentionBias, geluTanh as geluTanhAutodiff, halfRotation } from '../../src/models/layers';
import { disposeRope, type AttentionDims } from '../../src/models/llama/attention';
import { FAMILIES } from '../../src/models/registry';
import { invFreq, ropeParams } from '../../src/models/rope';
import type { HFConfig } from '../../src/models/types';
import { Rng } from '../../src/engine/data/rng';
import { maxAbsDiff, SHARED, useBackend, values } from '../helpers/shared';

const GEMMA3 = path.join(SHARED, 'models', 'tiny-random-gemma3');
const EPS = 1e-6;

/** Values and the gradient (for a fixed random cotangent r) of f at x, through tf.grad. */
async function valueAndGrad(f: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, r: tf.Tensor): Promise<[number[], number[]]> {
  const g = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(f(xx), r)))(x);
  const out = [await values(f(x)), await values(g)] as [number[], number[]];
  tf.dispose(g);
  return out;
}

describe('gemma3 elementwise pieces', () => {
  before(() => useBackend());

  it('RMSNorm x·rsqrt(mean(x²)+eps)·(1+w): float64 values, and dx within 1e-5 of autodiff', async () => {
    const x = tf.randomNormal([6, 8], 0, 2, 'float32', 1);
    const w = tf.randomNormal([8], 0, 0.5, 'float32', 2);
    const r = tf.randomNormal([6, 8], 0, 1, 'float32', 3);
    const onePlus = tf.add(w, 1) as tf.Tensor1D;
    const plain = (xx: tf.Tensor) =>
      tf.mul(tf.mul(xx, tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), EPS))), tf.add(1, w));
    const [y, dx] = await valueAndGrad((xx) => rmsNorm1p(xx, onePlus, EPS), x, r);
    const [yPlain, dxPlain] = await valueAndGrad(plain, x, r);
    const [xs, ws] = [await values(x), await values(w)];
    const want = xs.map((v, i) => {
      const row = xs.slice(i - (i % 8), i - (i % 8) + 8);
      const ms = row.reduce((s, z) => s + z * z, 0) / 8;
      return (v / Math.sqrt(ms + EPS)) * (1 + ws[i % 8]);
    });
    assert.ok(maxAbsDiff(y, want) <= 1e-5, `values vs float64: ${maxAbsDiff(y, want)}`);
    assert.ok(maxAbsDiff(y, yPlain) <= 1e-6);
    assert.ok(maxAbsDiff(dx, dxPlain) <= 1e-5, `dx: ${maxAbsDiff(dx, dxPlain)}`);
    tf.dispose([x, w, r, onePlus]);
  });

  it('soft-capping tanh(x/c)·c: float64 values and gradient 1 − tanh²', async () => {
    const x = tf.tensor1d([-80, -31, -3.5, -0.2, 0, 0.7, 4, 29.9, 55, 200]);
    const r = tf.randomNormal([10], 0, 1, 'float32', 4);
    const cap = 30;
    const [y, dx] = await valueAndGrad((xx) => softcap(xx, cap), x, r);
    const [xs, rs] = [await values(x), await values(r)];
    assert.ok(
      maxAbsDiff(
        y,
        xs.map((v) => Math.tanh(v / cap) * cap),
      ) <= 1e-5,
    );
    assert.ok(
      maxAbsDiff(
        dx,
        xs.map((v, i) => rs[i] * (1 - Math.tanh(v / cap) ** 2)),
      ) <= 1e-6,
    );
    const [, dxAuto] = await valueAndGrad((xx) => tf.mul(tf.tanh(tf.div(xx, cap)), cap), x, r);
    assert.ok(maxAbsDiff(dx, dxAuto) <= 1e-6);
    tf.dispose([x, r]);
  });

  it('gelu_pytorch_tanh: float64 values, and its custom gradient within 1e-5 of autodiff', async () => {
    const x = tf.tensor1d([-9, -4, -2.5, -1, -0.3, 0, 0.1, 0.9, 1.7, 3, 6]);
    const r = tf.randomNormal([11], 0, 1, 'float32', 5);
    const [y, dx] = await valueAndGrad(geluTanh, x, r);
    const [, dxAuto] = await valueAndGrad(geluTanhAutodiff, x, r);
    const k = Math.sqrt(2 / Math.PI);
    const want = (await values(x)).map((v) => 0.5 * v * (1 + Math.tanh(k * (v + 0.044715 * v ** 3))));
    assert.ok(maxAbsDiff(y, want) <= 1e-5, `values: ${maxAbsDiff(y, want)}`);
    assert.ok(maxAbsDiff(dx, dxAuto) <= 1e-5, `dx: ${maxAbsDiff(dx, dxAuto)}`);
    tf.dispose([x, r]);
  });
});

/** transformers' sliding-window causal mask: query i sees key j when j ≤ i, j > i − window and j is no padding. */
function hfMask(mask: number[][], window: number | null): tf.Tensor4D {
  const [b, t] = [mask.length, mask[0].length];
  const out = new Float32Array(b * t * t);
  for (let n = 0; n < b; n++)
    for (let i = 0; i < t; i++)
      for (let j = 0; j < t; j++) {
        const seen = mask[n][j] === 1 && j <= i && (window === null || j > i - window);
        out[(n * t + i) * t + j] = seen ? 0 : -1e9;
      }
  return tf.tensor4d(out, [b, 1, t, t]);
}

describe('gemma3 sliding-window mask', () => {
  before(() => useBackend());

  it('a sliding layer sees `window` keys, its own included, and never padding; rows repeat for GQA', async () => {
    const mask = [
      [1, 1, 1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 1, 0, 0, 0],
    ];
    const m = tf.tensor2d(mask, undefined, 'int32');
    const seen = async (x: tf.Tensor) => (await values(x)).map((v) => v === 0); // 0 (or −0): may attend
    for (const window of [1, 3, 5]) {
      const ours = await seen(attentionBias(m, true, 1, window));
      assert.deepEqual(ours, await seen(hfMask(mask, window)), `window ${window}`);
      const last = ours.slice(7 * 8, 8 * 8).filter(Boolean).length;
      assert.equal(last, window, 'the last query of row 1 sees exactly `window` keys');
    }
    const grouped = await seen(attentionBias(m, true, 3, 5)); // [2, 1, 3·8, 8]
    const single = await seen(hfMask(mask, 5));
    for (let n = 0; n < 2; n++)
      for (let g = 0; g < 3; g++)
        assert.deepEqual(
          grouped.slice((n * 24 + g * 8) * 8, (n * 24 + g * 8 + 8) * 8),
          single.slice(n * 64, (n + 1) * 64),
        );
    assert.deepEqual(await seen(attentionBias(m, true)), await seen(hfMask(mask, null)), 'no window: causal');
    m.dispose();
  });
});

/** HF's Gemma3Attention core, plainly: per-head q/k norm, split/concat rotate_half, Tile repeat_kv, scores·scale,
 *  soft-capping, the mask, softmax, by autodiff. Projections [N, n·hd] in, [N, nh·hd] out. */
function reference(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  d: AttentionDims & { theta: number; scale: number; window: number | null; cap: number | null },
  mask: number[][],
  qw: tf.Tensor1D,
  kw: tf.Tensor1D,
): tf.Tensor {
  const { b, t, nh, nkv, hd } = d;
  const inv = Array.from({ length: hd / 2 }, (_, i) => 1 / Math.pow(d.theta, (2 * i) / hd));
  const ang = Array.from({ length: t }, (_, p) => [...inv, ...inv].map((f) => p * f)).flat();
  const cos = tf.tensor2d(ang.map(Math.cos), [t, hd]);
  const sin = tf.tensor2d(ang.map(Math.sin), [t, hd]);
  const heads = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]);
  const norm = (x: tf.Tensor, w: tf.Tensor1D) =>
    tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), EPS))), tf.add(1, w));
  const rope = (x: tf.Tensor) => {
    const [x1, x2] = tf.split(x, 2, -1);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
  };
  const repeatKv = (x: tf.Tensor) =>
    tf.reshape(tf.tile(tf.reshape(x, [b, nkv, 1, t * hd]), [1, 1, nh / nkv, 1]), [b, nh, t, hd]);
  const qh = rope(norm(heads(q, nh), qw));
  const kh = repeatKv(rope(norm(heads(k, nkv), kw)));
  let scores = tf.mul(tf.matMul(qh, kh, false, true), d.scale);
  if (d.cap) scores = tf.mul(tf.tanh(tf.div(scores, d.cap)), d.cap);
  const out = tf.matMul(tf.softmax(tf.add(scores, hfMask(mask, d.window))), repeatKv(heads(v, nkv)));
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]);
}

describe('gemma3 attention (as written for speed) against the plain formulation', () => {
  before(() => useBackend());

  const cases: [string, AttentionDims & { theta: number; scale: number; window: number | null; cap: number | null }][] =
    [
      [
        'tiny-random-gemma3 shape, sliding (window 5 < T 9)',
        { b: 2, t: 9, nh: 4, nkv: 1, hd: 8, theta: 1e4, scale: 8 ** -0.5, window: 5, cap: null },
      ],
      [
        'full attention, query_pre_attn_scalar ≠ head_dim, soft-capped scores (cap 0.8)',
        { b: 2, t: 7, nh: 4, nkv: 2, hd: 6, theta: 1e6, scale: 24 ** -0.5, window: null, cap: 0.8 },
      ],
      [
        'sliding window 3 and soft-capping together, MHA',
        { b: 1, t: 8, nh: 2, nkv: 2, hd: 4, theta: 1e4, scale: 0.5, window: 3, cap: 1.5 },
      ],
    ];
  for (const [name, d] of cases) {
    it(`${name}: output and ∂q, ∂k, ∂v within 1e-5`, async () => {
      const { b, t, nh, nkv, hd } = d;
      const q = tf.randomNormal([b * t, nh * hd], 0, 1, 'float32', 1);
      const k = tf.randomNormal([b * t, nkv * hd], 0, 1, 'float32', 2);
      const v = tf.randomNormal([b * t, nkv * hd], 0, 1, 'float32', 3);
      const r = tf.randomNormal([b * t, nh * hd], 0, 1, 'float32', 4);
      const qw = tf.randomNormal([hd], 0, 0.5, 'float32', 5) as tf.Tensor1D;
      const kw = tf.randomNormal([hd], 0, 0.5, 'float32', 6) as tf.Tensor1D;
      const [q1, k1] = [tf.add(qw, 1) as tf.Tensor1D, tf.add(kw, 1) as tf.Tensor1D];
      const mask = Array.from({ length: b }, (_, n) => Array.from({ length: t }, (_, i) => (n && i >= t - 2 ? 0 : 1)));
      const m = tf.tensor2d(mask, undefined, 'int32');
      const tables = gemmaRopeTables(d, invFreq(ropeParams({ rope_theta: d.theta }, 'config.json'), hd, t), d.scale);
      const rot = halfRotation(hd);
      const ours = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => {
        const bias = attentionBias(m, true, nh / nkv, d.window ?? undefined);
        const qn = headNorm(qq as tf.Tensor2D, q1, EPS);
        const kn = headNorm(kk as tf.Tensor2D, k1, EPS);
        return gemmaAttention(qn, kn, vv as tf.Tensor2D, d, tables, rot, bias, d.cap);
      };
      const before = tf.memory().numTensors;
      const gOurs = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(ours(qq, kk, vv), r)))([
        q,
        k,
        v,
      ]);
      assert.equal(tf.memory().numTensors, before + 3, 'only the three gradients are left');
      const gPlain = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) =>
        tf.sum(tf.mul(reference(qq, kk, vv, d, mask, qw, kw), r)),
      )([q, k, v]);
      const y = await values(tf.tidy(() => ours(q, k, v)));
      const yPlain = await values(tf.tidy(() => reference(q, k, v, d, mask, qw, kw)));
      assert.ok(maxAbsDiff(y, yPlain) <= 1e-5, `output: ${maxAbsDiff(y, yPlain)}`);
      for (const [i, what] of ['q', 'k', 'v'].entries()) {
        const diff = maxAbsDiff(await values(gOurs[i]), await values(gPlain[i]));
        assert.ok(diff <= 1e-5, `∂/∂${what}: ${diff}`);
      }
      disposeRope(tables);
      tf.dispose([q, k, v, r, qw, kw, q1, k1, m, rot.r, rot.rT, ...gOurs, ...gPlain]);
    });
  }

  it('soft-capped attention (layers.ts) against a float64 computation, windowed and padded', async () => {
    const [b, g, t, hd, cap, window] = [2, 2, 6, 4, 0.7, 3];
    const mask = [
      [1, 1, 1, 1, 1, 1],
      [1, 1, 1, 1, 0, 0],
    ];
    const [q, k, v] = [11, 12, 13].map((s) => tf.randomNormal([b, g, t, hd], 0, 1, 'float32', s) as tf.Tensor4D);
    const m = tf.tensor2d(mask, undefined, 'int32');
    const got = await values(tf.tidy(() => attention(q, k, v, attentionBias(m, true, 1, window), cap)));
    const [qs, ks, vs] = [await values(q), await values(k), await values(v)];
    let diff = 0;
    for (let n = 0; n < b; n++)
      for (let h = 0; h < g; h++)
        for (let i = 0; i < t; i++) {
          const at = (x: number[], j: number, c: number) => x[((n * g + h) * t + j) * hd + c];
          const s = Array.from({ length: t }, (_, j) => {
            let dot = 0;
            for (let c = 0; c < hd; c++) dot += at(qs, i, c) * at(ks, j, c);
            const seen = mask[n][j] === 1 && j <= i && j > i - window;
            return seen ? Math.tanh(dot / cap) * cap : -Infinity;
          });
          const top = Math.max(...s);
          const e = s.map((z) => Math.exp(z - top));
          const sum = e.reduce((a, z) => a + z, 0);
          for (let c = 0; c < hd; c++) {
            const want = e.reduce((a, z, j) => a + (z / sum) * at(vs, j, c), 0);
            diff = Math.max(diff, Math.abs(got[((n * g + h) * t + i) * hd + c] - want));
          }
        }
    assert.ok(diff <= 1e-6, `max |Δ| ${diff}`);
    tf.dispose([q, k, v, m]);
  });
});

describe('gemma3 model gradients against finite differences', () => {
  before(() => useBackend());

  // The directional derivative of the loss along a random direction u of every LoRA parameter (all-linear, B ≠ 0):
  // autodiff's ∇L·u against (L(θ + εu) − L(θ − εu)) / 2ε. The batch (T 9, one row padded) crosses the window (5).
  const check = async (patch: HFConfig) => {
    const config = { ...openModelFolder(GEMMA3).config, ...patch };
    const model = new Gemma3Model(config, loadModelWeights(GEMMA3), {
      task: 'causal-lm',
      numLabels: 0,
      normal: Math.random,
      dir: GEMMA3,
    });
    const rng = new Rng(3);
    const lora = { r: 4, lora_alpha: 8, lora_dropout: 0, use_rslora: false, target_modules: 'all-linear' };
    const w = new Trainables(model, { ...lora, modules_to_save: null }, FAMILIES.gemma3_text, () => rng.next(), null);
    for (const [i, l] of [...w.lora.values()].entries()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.3, 'float32', i));
    const ids = [
      [2, 69, 311, 337, 518, 272, 342, 17, 400],
      [2, 12, 99, 401, 77, 3, 5, 0, 0],
    ];
    const batch = {
      inputIds: tf.tensor2d(ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(
        ids.map((row, n) => row.map((_, i) => (n && i >= 7 ? 0 : 1))),
        undefined,
        'int32',
      ),
      typeIds: null,
      labels: null,
    };
    const params = w.params().map((p) => p.variable);
    const { value, grads } = tf.variableGrads(() => model.loss(batch, w), params);
    const u = params.map((p, i) => tf.randomNormal(p.shape, 0, 1, 'float32', 100 + i));
    const norm = Math.sqrt(u.reduce((s, x) => s + tf.sum(tf.square(x)).dataSync()[0], 0));
    const dot = params.reduce((s, p, i) => s + tf.sum(tf.mul(grads[p.name], u[i])).dataSync()[0], 0) / norm;
    const start = params.map((p) => tf.clone(p));
    const lossAt = (eps: number) => {
      params.forEach((p, i) => p.assign(tf.add(start[i], tf.mul(u[i], eps / norm))));
      return tf.tidy(() => model.loss(batch, w)).dataSync()[0];
    };
    const h = 1e-2;
    const fd = (lossAt(h) - lossAt(-h)) / (2 * h);
    tf.dispose([value, ...Object.values(grads), ...u, ...start, batch.inputIds, batch.attentionMask]);
    w.dispose();
    model.dispose();
    return { dot, fd };
  };

  it('as the fixture (sliding window 5, no soft-capping): ∇L·u within 0.5% of the finite difference', async () => {
    const { dot, fd } = await check({});
    assert.ok(Math.abs(dot - fd) <= 0.005 * Math.abs(fd) + 1e-4, `autodiff ${dot} vs finite difference ${fd}`);
  });

  it('with final soft-capping (cap 3, where it bites)', async () => {
    const { dot, fd } = await check({ final_logit_softcapping: 3 });
    assert.ok(Math.abs(dot - fd) <= 0.005 * Math.abs(fd) + 1e-4, `autodiff ${dot} vs finite difference ${fd}`);
  });
});
