// The r×r inverses of the riemannian and lorafa optimizers (pinv.ts) against closed forms, and the bf16 rounding of
// lorafa's projection against bfloat16's bit-level round-to-nearest-even.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { dampedPinv, jacobiEigen } from '../../../src/engine/train/pinv';
import { bf16 } from '../../../src/engine/train/peft-optimizers';
import { maxAbsDiff, useBackend } from '../../helpers/shared';

/** A seeded Gram matrix XᵀX of an n×r matrix: symmetric positive semi-definite, of rank min(n, r). */
function gram(r: number, n: number, seed: number): Float64Array {
  let s = seed;
  const next = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
  const x = Array.from({ length: n * r }, next);
  const g = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) for (let k = 0; k < n; k++) g[i * r + j] += x[k * r + i] * x[k * r + j];
  return g;
}

function matMul(a: ArrayLike<number>, b: ArrayLike<number>, r: number): Float64Array {
  const out = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) for (let k = 0; k < r; k++) out[i * r + j] += a[i * r + k] * b[k * r + j];
  return out;
}

const identity = (r: number) => Float64Array.from({ length: r * r }, (_, i) => (i % (r + 1) === 0 ? 1 : 0));

/** bfloat16 by its bits: float32 rounded to nearest even at bit 16. */
function bf16Bits(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = (u[0] + 0x7fff + ((u[0] >> 16) & 1)) & 0xffff0000;
  return f[0];
}

describe('pinv', () => {
  before(() => useBackend());

  it('(M + reg·I)⁻¹ of a damped Gram matrix: M·M⁻¹ = I for r = 4, 16, 64', () => {
    for (const r of [4, 16, 64]) {
      const g = gram(r, r + 3, r);
      const inv = dampedPinv(g, r, 1e-2);
      const damped = g.map((v, i) => v + (i % (r + 1) === 0 ? 1e-2 : 0));
      assert.ok(maxAbsDiff(matMul(damped, inv, r), identity(r)) < 1e-9, `r = ${r}`);
    }
  });

  it('rank-deficient with reg 0: the pseudo-inverse, as torch.linalg.pinv (B = 0 gives a zero preconditioner)', () => {
    assert.deepEqual([...dampedPinv(new Float64Array(16), 4, 0)], Array(16).fill(0));
    // [[1, 1], [1, 1]] = 2·vvᵀ with v = (1, 1)/√2: its pinv is vvᵀ/2 = 0.25 everywhere.
    const p = dampedPinv([1, 1, 1, 1], 2, 0);
    assert.ok(maxAbsDiff(p, [0.25, 0.25, 0.25, 0.25]) < 1e-12);
    // A rank-2 Gram matrix of size 6: M·M⁺·M = M and M⁺·M·M⁺ = M⁺ (the Penrose conditions that pin M⁺ down).
    const m = gram(6, 2, 7);
    const pm = dampedPinv(m, 6, 0);
    assert.ok(maxAbsDiff(matMul(matMul(m, pm, 6), m, 6), m) < 1e-9);
    assert.ok(maxAbsDiff(matMul(matMul(pm, m, 6), pm, 6), pm) < 1e-6);
  });

  it('Jacobi: V·diag(λ)·Vᵀ rebuilds the matrix, V orthonormal', () => {
    const r = 8;
    const m = gram(r, 5, 3);
    const { values, vectors: v } = jacobiEigen(m, r);
    const rebuilt = new Float64Array(r * r);
    for (let i = 0; i < r; i++)
      for (let j = 0; j < r; j++)
        for (let k = 0; k < r; k++) rebuilt[i * r + j] += v[i * r + k] * values[k] * v[j * r + k];
    assert.ok(maxAbsDiff(rebuilt, m) < 1e-10);
    const vt = Float64Array.from({ length: r * r }, (_, i) => v[(i % r) * r + Math.floor(i / r)]);
    assert.ok(maxAbsDiff(matMul(vt, v, r), identity(r)) < 1e-12);
  });

  it('bf16() rounds float32 to bfloat16 as its bits do (to nearest, 8 significant bits)', async () => {
    const xs = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i * 12.9898) * 10 ** ((i % 13) - 8));
    const got = await tf.tidy(() => bf16(tf.tensor1d(xs))).data();
    const want = Array.from(xs, bf16Bits);
    assert.deepEqual(Array.from(got), want);
  });
});
