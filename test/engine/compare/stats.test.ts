// The numbers `loraplus compare` reports, against direct computations on small matrices: the spectrum of
// scaling·B·A, the three ranks, Hu et al.'s subspace similarity φ on the input and the output side, and the cosine
// of two updates, each against a float64 reference that forms ΔW explicitly.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { LoraPair } from '../../../src/adapters/peft';
import type { HostTensor } from '../../../src/adapters/safetensors';
import { matmul, matrix, qrThin, svd, transpose, type Matrix } from '../../../src/adapters/svd';
import {
  deltaCosine,
  deltaInner,
  deltaSvd,
  effectiveRank,
  matrixCosine,
  loraASvd,
  moduleLocation,
  spectrumStats,
  subspaceGrid,
  subspaceSimilarity,
} from '../../../src/engine/compare/stats';
import { Rng } from '../../../src/engine/data/rng';

function gaussian(rng: Rng, n: number): Float32Array {
  return Float32Array.from(
    { length: n },
    () => Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next()),
  );
}
const host = (data: Float32Array, rows: number, cols: number): HostTensor => ({
  dtype: 'float32',
  shape: [rows, cols],
  data,
});
function randomPair(rng: Rng, out: number, r: number, inF: number): LoraPair {
  return { A: host(gaussian(rng, r * inF), r, inF), B: host(gaussian(rng, out * r), out, r) };
}
const toMatrix = (t: HostTensor): Matrix => matrix(t.data, t.shape[0], t.shape[1]);
const scaled = (m: Matrix, s: number): Matrix => ({ ...m, data: m.data.map((v) => v * s) });
/** The first k rows of a matrix. */
const rows = (m: Matrix, k: number): Matrix => ({ rows: k, cols: m.cols, data: m.data.slice(0, k * m.cols) });

/** φ(i, j) the slow way: form U_iᵀ V_j from the rows and sum its squares. */
function phiDirect(vt1: Matrix, vt2: Matrix, i: number, j: number): number {
  let sum = 0;
  for (let a = 0; a < i; a++) {
    for (let b = 0; b < j; b++) {
      let dot = 0;
      for (let c = 0; c < vt1.cols; c++) dot += vt1.data[a * vt1.cols + c] * vt2.data[b * vt2.cols + c];
      sum += dot * dot;
    }
  }
  return sum / Math.min(i, j);
}

describe('compare statistics', () => {
  it('singular values of scaling·B·A match a direct SVD of the formed product, and a spectrum built in', () => {
    const rng = new Rng(7);
    const pair = randomPair(rng, 24, 5, 17);
    const scaling = 1.6;
    const got = deltaSvd(pair, scaling);
    const product = matmul(toMatrix(pair.B), toMatrix(pair.A)); // [24, 17]
    product.data.forEach((v, k) => (product.data[k] = v * scaling));
    const direct = svd(product).s.slice(0, 5);
    got.s.forEach((s, k) => assert.ok(Math.abs(s - direct[k]) < 1e-9 * direct[0], `σ${k}: ${s} vs ${direct[k]}`));
    // ‖ΔW‖_F from the spectrum equals the entrywise norm of the product.
    const frob = Math.sqrt(product.data.reduce((t, v) => t + v * v, 0));
    assert.ok(Math.abs(spectrumStats(got.s).norm - frob) < 1e-9 * frob);

    // B = Q1·diag(σ), A = Q2ᵀ with orthonormal Q1, Q2: the singular values are scaling·σ exactly.
    const sigma = [3, 2, 0.5, 0.01];
    const q1 = qrThin(matrix(gaussian(rng, 20 * 4), 20, 4)).q;
    const q2 = qrThin(matrix(gaussian(rng, 30 * 4), 30, 4)).q;
    const B = Float32Array.from(q1.data, (v, k) => v * sigma[k % 4]);
    const A = Float32Array.from(transpose(q2).data);
    const built = deltaSvd({ A: host(A, 4, 30), B: host(B, 20, 4) }, 0.5);
    sigma.forEach((s, k) => assert.ok(Math.abs(built.s[k] - 0.5 * s) < 1e-6, `σ${k}: ${built.s[k]} vs ${0.5 * s}`));
  });

  it('effective rank, numerical rank and 90%-energy rank on known spectra', () => {
    assert.equal(effectiveRank([1, 1, 1, 1]), 4); // flat: all r directions
    assert.equal(effectiveRank([5, 0, 0]), 1); // one direction
    assert.equal(effectiveRank([0, 0]), 0); // ΔW = 0
    assert.ok(Math.abs(effectiveRank([2, 1, 1]) - 2 ** 1.5) < 1e-12); // p = (½, ¼, ¼): H = 1.5 ln 2
    assert.deepEqual(spectrumStats([3, 1, 1, 1]), {
      norm: Math.sqrt(12),
      effective_rank: effectiveRank([3, 1, 1, 1]),
      numerical_rank: 4,
      energy_rank_90: 3,
    });
    assert.equal(spectrumStats([1, 0.5, 1e-4, 0]).numerical_rank, 2); // 1e-4 is below 1e-3·σ_max
    assert.equal(spectrumStats([10, 1, 1]).energy_rank_90, 1); // 100/102 ≥ 90%
    assert.deepEqual(spectrumStats([0, 0]), { norm: 0, effective_rank: 0, numerical_rank: 0, energy_rank_90: 0 });
  });

  it('φ(i, j) matches the direct computation on every cell', () => {
    const rng = new Rng(11);
    const a = deltaSvd(randomPair(rng, 12, 4, 9), 2);
    const b = deltaSvd(randomPair(rng, 12, 3, 9), 1);
    const grid = subspaceGrid(a.vt, b.vt);
    assert.equal(grid.length, 4);
    assert.equal(grid[0].length, 3);
    for (let i = 1; i <= 4; i++)
      for (let j = 1; j <= 3; j++) assert.ok(Math.abs(grid[i - 1][j - 1] - phiDirect(a.vt, b.vt, i, j)) < 1e-12);
    const sim = subspaceSimilarity(a, b, true);
    assert.equal(sim.phi, grid[3][2]);
    assert.deepEqual(sim.diag.length, 3);
    // r = 3 directions inside 9 dimensions: φ(3, 3) of two random triples is well below 1.
    assert.ok(sim.phi! < 0.95);
  });

  it('φ = 1 for identical subspaces: the same ΔW factored differently, and a span inside a larger one', () => {
    const rng = new Rng(3);
    const pair = randomPair(rng, 16, 4, 32);
    // B·Q and Qᵀ·A give the same product for an orthogonal Q [4, 4].
    const q = qrThin(matrix(gaussian(rng, 16), 4, 4)).q;
    const B2 = matmul(toMatrix(pair.B), q);
    const A2 = matmul(transpose(q), toMatrix(pair.A));
    const other: LoraPair = { A: host(Float32Array.from(A2.data), 4, 32), B: host(Float32Array.from(B2.data), 16, 4) };
    for (const [x, y] of [
      [deltaSvd(pair, 2), deltaSvd(other, 2)],
      [loraASvd(pair), loraASvd(other)],
    ]) {
      const grid = subspaceGrid(x.vt, y.vt);
      for (const row of grid) for (const v of row) assert.ok(Math.abs(v - 1) < 1e-5, `φ = ${v}`);
    }
    // A rank-2 adapter whose rows lie in the first one's row space: φ(2, 4) = 1 (containment), φ(1, 1) < 1.
    const mix = matrix(gaussian(rng, 8), 2, 4);
    const small: LoraPair = {
      A: host(Float32Array.from(matmul(mix, toMatrix(pair.A)).data), 2, 32),
      B: host(gaussian(rng, 32), 16, 2),
    };
    const sim = subspaceSimilarity(loraASvd(small), loraASvd(pair), true);
    assert.ok(Math.abs(sim.phi! - 1) < 1e-5);
  });

  it('φ of random r-dimensional subspaces in d dimensions averages r/d', () => {
    // For independent uniformly random subspaces E‖U1ᵀU2‖_F² = r1·r2/d exactly, so E φ(r, r) = r/d = 0.03125 here.
    // One trial has a standard deviation of about √2/d ≈ 0.0055 (‖U1ᵀU2‖_F² ≈ χ²(r²)/d); the mean of 24 trials has
    // about 0.0011, so ±0.005 is more than 4σ. The row space of a Gaussian A is uniformly random.
    const [d, r, trials] = [256, 8, 24];
    const rng = new Rng(5);
    let sum = 0;
    for (let t = 0; t < trials; t++)
      sum += subspaceSimilarity(
        deltaSvd(randomPair(rng, 16, r, d), 1),
        deltaSvd(randomPair(rng, 16, r, d), 1),
        false,
      ).phi!;
    const mean = sum / trials;
    assert.ok(Math.abs(mean - r / d) < 0.005, `mean φ ${mean} vs r/d ${r / d}`);
  });

  it('φ is null when a ΔW is zero (an untrained adapter has no directions)', () => {
    const rng = new Rng(1);
    const trained = randomPair(rng, 8, 2, 8);
    const untrained: LoraPair = { A: trained.A, B: host(new Float32Array(16), 8, 2) };
    const sim = subspaceSimilarity(deltaSvd(trained, 1), deltaSvd(untrained, 1), true);
    assert.deepEqual(sim, { phi: null, diag: [] });
    // lora_A still has its directions: the same A on both sides.
    assert.ok(Math.abs(subspaceSimilarity(loraASvd(trained), loraASvd(untrained), false).phi! - 1) < 1e-9);
  });

  it('the output side: φ on the left-singular vectors equals φ from the SVD of the formed ΔW, on every cell', () => {
    const rng = new Rng(21);
    const [p1, p2] = [randomPair(rng, 14, 4, 11), randomPair(rng, 14, 3, 11)];
    const formed = (p: LoraPair, s: number) => scaled(matmul(toMatrix(p.B), toMatrix(p.A)), s);
    const [u1, u2] = [svd(formed(p1, 2)).u, svd(formed(p2, 0.5)).u].map((u) => transpose(u)); // rows = directions
    const sim = subspaceSimilarity(deltaSvd(p1, 2), deltaSvd(p2, 0.5), true, 'out');
    for (let i = 1; i <= 4; i++)
      for (let j = 1; j <= 3; j++) {
        const direct = phiDirect(rows(u1, 4), rows(u2, 3), i, j);
        assert.ok(Math.abs(sim.grid![i - 1][j - 1] - direct) < 1e-6, `φ_out(${i}, ${j})`);
      }
  });

  it('closed forms: one A with two Bs is alike on the input side only; one span of B, only on the output side', () => {
    const rng = new Rng(8);
    const a = randomPair(rng, 40, 4, 40);
    const sameA: LoraPair = { A: a.A, B: host(gaussian(rng, 160), 40, 4) };
    const inSide = (x: LoraPair, y: LoraPair, side: 'in' | 'out') =>
      subspaceSimilarity(deltaSvd(x, 1), deltaSvd(y, 1), false, side).phi!;
    assert.ok(Math.abs(inSide(a, sameA, 'in') - 1) < 1e-9, 'the row space is A’s');
    // Two random 4-dimensional spans of B in 40 dimensions: E φ = 4/40; far below 1.
    assert.ok(inSide(a, sameA, 'out') < 0.5, `φ_out ${inSide(a, sameA, 'out')}`);
    const mix = matrix(gaussian(rng, 16), 4, 4); // B·M spans what B spans
    const sameSpan: LoraPair = {
      A: host(gaussian(rng, 160), 4, 40),
      B: host(Float32Array.from(matmul(toMatrix(a.B), mix).data), 40, 4),
    };
    assert.ok(Math.abs(inSide(a, sameSpan, 'out') - 1) < 1e-5);
    assert.ok(inSide(a, sameSpan, 'in') < 0.5);
  });

  it('cos(ΔW₁, ΔW₂) from r×r Gram products equals the entrywise cosine of the formed products', () => {
    const rng = new Rng(13);
    const [p1, p2] = [randomPair(rng, 9, 4, 7), randomPair(rng, 9, 2, 7)];
    const [m1, m2] = [
      scaled(matmul(toMatrix(p1.B), toMatrix(p1.A)), 2),
      scaled(matmul(toMatrix(p2.B), toMatrix(p2.A)), 3),
    ];
    const dot = (x: Matrix, y: Matrix) => x.data.reduce((t, v, k) => t + v * y.data[k], 0);
    assert.ok(Math.abs(deltaInner(p1, 2, p2, 3) - dot(m1, m2)) < 1e-9 * Math.sqrt(dot(m1, m1) * dot(m2, m2)));
    const direct = dot(m1, m2) / Math.sqrt(dot(m1, m1) * dot(m2, m2));
    assert.ok(Math.abs(deltaCosine(p1, 2, p2, 3)! - direct) < 1e-9, `${deltaCosine(p1, 2, p2, 3)} vs ${direct}`);
    // Scale-free, sign-aware, factorisation-free: 3·ΔW, −ΔW, and B·Q with Qᵀ·A.
    assert.ok(Math.abs(deltaCosine(p1, 2, p1, 6)! - 1) < 1e-12);
    assert.ok(Math.abs(deltaCosine(p1, 2, p1, -1)! + 1) < 1e-12);
    const q = qrThin(matrix(gaussian(rng, 16), 4, 4)).q;
    const refactored: LoraPair = {
      A: host(Float32Array.from(matmul(transpose(q), toMatrix(p1.A)).data), 4, 7),
      B: host(Float32Array.from(matmul(toMatrix(p1.B), q).data), 9, 4),
    };
    assert.ok(Math.abs(deltaCosine(p1, 1, refactored, 1)! - 1) < 1e-6);
    // Updates reading disjoint inputs are orthogonal: cos = 0 exactly.
    const half = (first: boolean) =>
      host(
        Float32Array.from({ length: 2 * 8 }, (_, k) => (k % 8 < 4 === first ? 1 + (k % 3) : 0)),
        2,
        8,
      );
    const B = host(gaussian(rng, 10), 5, 2);
    assert.equal(deltaCosine({ A: half(true), B }, 1, { A: half(false), B }, 1), 0);
    // No cosine for a zero update or another shape.
    assert.equal(deltaCosine(p1, 1, { A: p1.A, B: host(new Float32Array(36), 9, 4) }, 1), null);
    assert.equal(deltaCosine(p1, 1, randomPair(rng, 8, 4, 7), 1), null);
    assert.equal(matrixCosine(p1.A, p1.A), 1);
    assert.equal(matrixCosine(p1.A, p2.A), null, 'another r');
  });

  it('module locations for the heatmap rows (layer) and columns (kind)', () => {
    assert.deepEqual(moduleLocation('model.layers.12.self_attn.q_proj'), { layer: 12, kind: 'self_attn.q_proj' });
    assert.deepEqual(moduleLocation('transformer.h.3.attn.c_attn'), { layer: 3, kind: 'attn.c_attn' });
    assert.deepEqual(moduleLocation('bert.encoder.layer.0.attention.self.query'), {
      layer: 0,
      kind: 'attention.self.query',
    });
    assert.deepEqual(moduleLocation('score'), { layer: null, kind: 'score' });
  });
});
