// The wasm backend's batched matmul (src/engine/backend/wasm-matmul.ts) against a float64 reference computed on the host,
// for every case attention produces (transposes, broadcast batches, ragged row counts, n a multiple of 4 or 8) and
// for the cases it hands back to the stock kernel.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { installWasmBatchMatMul } from '../../../src/engine/backend/wasm-matmul';
import { useBackend } from '../../helpers/shared';

before(async () => {
  await useBackend('wasm');
  assert.equal(installWasmBatchMatMul(), true, 'the SIMD kernel should install on the wasm backend');
});

/** matMul on the host in float64, with tfjs's batch broadcasting over one leading batch shape. */
function reference(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { data: Float64Array; shape: number[] } {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [ra, rb] = [a.rank, b.rank];
  const [ar, ac] = [a.shape[ra - 2], a.shape[ra - 1]];
  const [br, bc] = [b.shape[rb - 2], b.shape[rb - 1]];
  const [m, k, n] = [ta ? ac : ar, ta ? ar : ac, tb ? br : bc];
  const batchA = a.size / (ar * ac);
  const batchB = b.size / (br * bc);
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const oa = (batchA === 1 ? 0 : z) * ar * ac;
    const ob = (batchB === 1 ? 0 : z) * br * bc;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++)
          s += av[oa + (ta ? p * ac + i : i * ac + p)] * bv[ob + (tb ? j * bc + p : p * bc + j)];
        out[(z * m + i) * n + j] = s;
      }
    }
  }
  const outBatch = (batchA >= batchB ? a : b).shape.slice(0, -2);
  return { data: out, shape: [...outBatch, m, n] };
}

const CASES: [string, number[], number[], boolean, boolean][] = [
  ['att·v (n = head_dim 8)', [2, 4, 9, 9], [2, 4, 9, 8], false, false],
  ['q·kᵀ (transposed B)', [2, 4, 9, 8], [2, 4, 9, 8], false, true],
  ['attᵀ·dy (transposed A)', [2, 4, 9, 9], [2, 4, 9, 8], true, false],
  ['both transposed, n = 12', [3, 6, 5], [3, 12, 6], true, true],
  ['ragged rows (m = 7), n = 4', [5, 7, 3], [5, 3, 4], false, false],
  ['broadcast A over batches', [1, 6, 5], [4, 5, 16], false, false],
  ['broadcast B (2-D) over batches', [4, 6, 5], [5, 8], false, false],
  ['n = 7: stock kernel', [2, 3, 5], [2, 5, 7], false, false],
  ['2-D untransposed: XNNPACK', [33, 17], [17, 12], false, false],
];

for (const [name, sa, sb, ta, tb] of CASES) {
  test(`batched matmul: ${name}`, () => {
    const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
    const b = tf.randomNormal(sb, 0, 1, 'float32', 2);
    const got = tf.matMul(a, b, ta, tb);
    const want = reference(a, b, ta, tb);
    assert.deepEqual(got.shape, want.shape);
    const g = got.dataSync();
    let worst = 0;
    for (let i = 0; i < g.length; i++)
      worst = Math.max(worst, Math.abs(g[i] - want.data[i]) / (1 + Math.abs(want.data[i])));
    assert.ok(worst < 1e-5, `relative error ${worst}`);
    tf.dispose([a, b, got]);
  });
}

test('attention gradients through the batched kernel match finite differences', () => {
  // loss = Σ softmax(q·kᵀ)·v ⊙ w: its gradient runs every transposed variant of the kernel.
  const [q, k, v, w] = [1, 2, 3, 4].map((seed) => tf.randomNormal([2, 3, 6, 8], 0, 1, 'float32', seed));
  const loss = (qq: tf.Tensor) =>
    tf.sum(tf.mul(tf.matMul(tf.softmax(tf.matMul(qq, k, false, true)), v), w)) as tf.Scalar;
  const grad = tf.grad(loss)(q).dataSync();
  const qv = q.dataSync();
  const eps = 1e-2;
  for (const i of [0, 17, 95, 200, 287]) {
    const plus = Float32Array.from(qv);
    const minus = Float32Array.from(qv);
    plus[i] += eps;
    minus[i] -= eps;
    const fd =
      (loss(tf.tensor(plus, q.shape)).dataSync()[0] - loss(tf.tensor(minus, q.shape)).dataSync()[0]) / (2 * eps);
    assert.ok(
      Math.abs(fd - grad[i]) < 2e-2 * (1 + Math.abs(fd)),
      `∂loss/∂q[${i}]: finite difference ${fd}, gradient ${grad[i]}`,
    );
  }
});

test('the kernel leaks no tensor memory', () => {
  const a = tf.randomNormal([2, 4, 9, 9]);
  const b = tf.randomNormal([2, 4, 9, 8]);
  const step = () =>
    tf.tidy(() => {
      tf.matMul(a, b, true, false);
      tf.matMul(b, b, false, true);
    });
  step();
  const before = tf.memory();
  for (let i = 0; i < 3; i++) step();
  assert.equal(tf.memory().numTensors, before.numTensors);
  assert.equal(tf.memory().numBytes, before.numBytes);
  tf.dispose([a, b]);
});
