// The host SVD: reconstruction, orthonormality, known singular values, and the factored low-rank path.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  lowRankSvd,
  matmul,
  matrix,
  qrThin,
  reconstruct,
  svd,
  transpose,
  truncateSvd,
  type Matrix,
} from '../../src/adapters/svd';
import { Rng } from '../../src/engine/data/rng';

function randomMatrix(rows: number, cols: number, seed: number): Matrix {
  const rng = new Rng(seed);
  return matrix(
    Array.from({ length: rows * cols }, () => rng.next() * 2 - 1),
    rows,
    cols,
  );
}

function maxDiff(a: Matrix, b: Matrix): number {
  assert.deepEqual([a.rows, a.cols], [b.rows, b.cols]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

function identity(n: number): Matrix {
  const I = matrix(new Float64Array(n * n), n, n);
  for (let i = 0; i < n; i++) I.data[i * n + i] = 1;
  return I;
}

// uᵀu = I and vt·vtᵀ = I
function assertOrthonormal(u: Matrix, vt: Matrix, tol = 1e-12): void {
  assert.ok(maxDiff(matmul(transpose(u), u), identity(u.cols)) < tol, 'u columns orthonormal');
  assert.ok(maxDiff(matmul(vt, transpose(vt)), identity(vt.rows)) < tol, 'vt rows orthonormal');
}

describe('svd', () => {
  for (const [rows, cols] of [
    [7, 4],
    [4, 7],
    [6, 6],
    [1, 5],
    [5, 1],
  ]) {
    it(`reconstructs a random [${rows}, ${cols}] matrix with orthonormal factors`, () => {
      const M = randomMatrix(rows, cols, rows * 10 + cols);
      const res = svd(M);
      const k = Math.min(rows, cols);
      assert.deepEqual([res.u.rows, res.u.cols, res.s.length, res.vt.rows, res.vt.cols], [rows, k, k, k, cols]);
      assert.ok(maxDiff(reconstruct(res), M) < 1e-12);
      assertOrthonormal(res.u, res.vt);
      for (let i = 1; i < k; i++) assert.ok(res.s[i - 1] >= res.s[i], 'descending');
    });
  }

  it('finds known singular values: Q1 · diag(5, 3, 0.5, 1e-9) · Q2ᵀ', () => {
    const known = [5, 3, 0.5, 1e-9];
    const q1 = qrThin(randomMatrix(6, 4, 1)).q; // [6, 4] orthonormal columns
    const q2 = qrThin(randomMatrix(4, 4, 2)).q; // [4, 4] orthogonal
    const d = matrix(new Float64Array(16), 4, 4);
    known.forEach((v, i) => (d.data[i * 4 + i] = v));
    const res = svd(matmul(matmul(q1, d), transpose(q2)));
    known.forEach((v, i) => assert.ok(Math.abs(res.s[i] - v) < 1e-14 + 1e-12 * v, `σ${i} = ${res.s[i]}, want ${v}`));
  });

  it('keeps u orthonormal for a rank-deficient matrix (and zero singular values)', () => {
    const B = randomMatrix(8, 2, 3);
    const A = randomMatrix(2, 5, 4);
    const res = svd(matmul(B, A)); // rank 2 of 5
    assert.ok(res.s[2] < 1e-12 && res.s[1] > 1e-3);
    assertOrthonormal(res.u, res.vt);
    const zero = svd(matrix(new Float64Array(12), 4, 3));
    assert.deepEqual(Array.from(zero.s), [0, 0, 0]);
    assertOrthonormal(zero.u, zero.vt);
  });

  it('agrees with the closed form of a 2×2 matrix', () => {
    // [[3, 0], [4, 5]]: σ² are the eigenvalues of MᵀM = [[25, 20], [20, 25]] → 45 and 5
    const res = svd(matrix([3, 0, 4, 5], 2, 2));
    assert.ok(Math.abs(res.s[0] - Math.sqrt(45)) < 1e-14);
    assert.ok(Math.abs(res.s[1] - Math.sqrt(5)) < 1e-14);
  });
});

describe('lowRankSvd', () => {
  it('equals the SVD of the formed product scale·B·A', () => {
    const B = randomMatrix(12, 3, 5);
    const A = randomMatrix(3, 9, 6);
    const low = lowRankSvd(B, A, 0.75);
    const full = svd(
      matrix(
        matmul(B, A).data.map((x) => 0.75 * x),
        12,
        9,
      ),
    );
    assert.equal(low.s.length, 3);
    for (let i = 0; i < 3; i++) assert.ok(Math.abs(low.s[i] - full.s[i]) < 1e-12);
    const scaled = matmul(B, A);
    scaled.data.forEach((x, i) => (scaled.data[i] = 0.75 * x));
    assert.ok(maxDiff(reconstruct(low), scaled) < 1e-12);
    assertOrthonormal(low.u, low.vt);
  });

  it('handles a rank above a dimension and a zero factor', () => {
    const over = lowRankSvd(randomMatrix(3, 5, 7), randomMatrix(5, 4, 8));
    assert.equal(over.s.length, 3);
    const zeroB = lowRankSvd(matrix(new Float64Array(10 * 2), 10, 2), randomMatrix(2, 6, 9));
    assert.deepEqual(Array.from(zeroB.s), [0, 0]);
    assertOrthonormal(zeroB.u, zeroB.vt);
  });

  it('truncation keeps the best rank-k approximation', () => {
    const M = randomMatrix(6, 5, 10);
    const res = svd(M);
    const t = truncateSvd(res, 2);
    // ‖M − M₂‖_F² = σ₃² + σ₄² + σ₅² (Eckart–Young)
    const err = reconstruct(t);
    let sq = 0;
    for (let i = 0; i < M.data.length; i++) sq += (M.data[i] - err.data[i]) ** 2;
    const want = res.s[2] ** 2 + res.s[3] ** 2 + res.s[4] ** 2;
    assert.ok(Math.abs(sq - want) < 1e-10);
  });
});
