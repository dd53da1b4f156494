// A small fixed computation on the wasm backend, run in-process and (as a script) in a child process with another
// thread count, so test/engine/wasm-threads.test.ts can compare the numbers. As a script it prints one JSON line.
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/engine/backend/select';
import { Rng } from '../../src/engine/data/rng';
import { installWasmBatchMatMul } from '../../src/engine/backend/wasm-matmul';

export interface Workload {
  threads: number; // BackendInfo.threads
  name: string; // BackendInfo.name
  batchedKernel: boolean; // whether wasm-matmul.ts's kernel installed (it imports the backend's, then shared, memory)
  values: Record<string, number[]>;
}

export async function runWorkload(): Promise<Workload> {
  const info = await selectBackend('wasm');
  const batchedKernel = installWasmBatchMatMul();
  const rng = new Rng(7);
  const rand = (shape: number[], scale = 1) =>
    tf.tensor(
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (rng.next() * 2 - 1) * scale),
      shape,
    );
  const values: Record<string, number[]> = {};
  const keep = (name: string, t: tf.Tensor) => (values[name] = Array.from(t.dataSync()));

  tf.tidy(() => {
    // A 2-D untransposed product runs on XNNPACK, which splits it over the thread pool.
    keep('matmul', tf.matMul(rand([96, 256]), rand([256, 160])));
    // Attention-shaped batched products with a transpose (wasm-matmul.ts's kernel, else tfjs's scalar loop).
    const q = rand([4, 32, 16]);
    const k = rand([4, 32, 16]);
    keep('scores', tf.matMul(q, k, false, true));
    keep('scoresT', tf.matMul(q, k, true, false));
  });

  // Training-like: a frozen two-layer net with a LoRA pair (A, B) on its first layer, a few SGD steps; the
  // gradients take the transposed matmuls of autodiff.
  const x = rand([64, 128]);
  const w1 = rand([128, 256], 0.1);
  const w2 = rand([256, 10], 0.1);
  const y = rand([64, 10]);
  const a = tf.variable(rand([128, 8], 0.1));
  const b = tf.variable(rand([8, 256], 0.1));
  const losses: number[] = [];
  for (let step = 0; step < 3; step++) {
    tf.tidy(() => {
      const { value, grads } = tf.variableGrads(() => {
        const h = tf.relu(tf.add(tf.matMul(x, w1), tf.matMul(tf.matMul(x, a), b)));
        return tf.mean(tf.square(tf.sub(tf.matMul(h, w2), y))) as tf.Scalar;
      }, [a, b]);
      a.assign(tf.sub(a, tf.mul(grads[a.name], 0.5)));
      b.assign(tf.sub(b, tf.mul(grads[b.name], 0.5)));
      losses.push(value.dataSync()[0]);
    });
  }
  values.losses = losses;
  keep('loraA', a);
  keep('loraB', b);
  tf.dispose([x, w1, w2, y, a, b]);
  return { threads: info.threads, name: info.name, batchedKernel, values };
}

if (require.main === module) {
  void runWorkload().then((r) => process.stdout.write(`${JSON.stringify(r)}\n`));
}
