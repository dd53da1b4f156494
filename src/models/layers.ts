// Building blocks shared by the model families. Shapes in comments: B batch, T sequence, H hidden, V vocabulary.
import * as tf from '@tensorflow/tfjs';
import { customOp, linear, loraLinear, trainableLinear, type FrozenLinear } from '../adapters/lora';
import type { Adapters } from './types';

/** Runs module `path` on x [N, in] → [N, out]: fully trained if it is in modules_to_save, else frozen (+ LoRA). */
export function applyLinear(path: string, x: tf.Tensor2D, linears: ReadonlyMap<string, FrozenLinear>, a: Adapters): tf.Tensor2D {
  const full = a.trainable.get(path);
  if (full) return trainableLinear(x, full);
  const base = linears.get(path);
  if (!base) throw new Error(`internal: no Linear named ${path}`);
  const lora = a.lora.get(path);
  return lora ? loraLinear(x, base, lora, a.dropoutSeed === null ? null : a.dropoutSeed + hash(path)) : linear(x, base);
}

/** RMSNorm (Llama): x · rsqrt(mean(x²) + eps) · w, over the last axis. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

/** Additive attention bias [B, 1, T, T]: 0 where query i may see key j, -1e9 elsewhere (causal and/or padding). */
export function attentionBias(mask: tf.Tensor2D, causal: boolean): tf.Tensor4D {
  const [b, t] = mask.shape;
  const keys = tf.reshape(tf.cast(mask, 'float32'), [b, 1, 1, t]); // [B, 1, 1, T]
  let allowed: tf.Tensor = keys;
  if (causal) allowed = tf.mul(keys, tf.linalg.bandPart(tf.ones([t, t]), -1, 0)); // lower triangle
  return tf.mul(tf.sub(1, allowed), -1e9) as tf.Tensor4D;
}

/**
 * Mean cross-entropy of logits [N, V] against labels [N], counting rows with weight 1 (weights 0 are ignored).
 * Written with a custom gradient so softmax is computed once: (softmax − onehot) · w / Σw.
 */
export function crossEntropy(logits: tf.Tensor2D, labels: tf.Tensor1D, weights: tf.Tensor1D): tf.Scalar {
  const v = logits.shape[1];
  const f = customOp(([z], save) => {
    const zz = z as tf.Tensor2D;
    const onehot = tf.oneHot(tf.cast(labels, 'int32'), v); // [N, V]
    const count = tf.maximum(tf.sum(weights), 1);
    const perRow = tf.sub(tf.logSumExp(zz, 1), tf.sum(tf.mul(zz, onehot), 1)); // [N]
    // The forward runs in a tidy: whatever the gradient needs must be saved (or be long-lived).
    save([zz, onehot, count, weights]);
    return {
      value: tf.div(tf.sum(tf.mul(perRow, weights)), count) as tf.Scalar,
      gradFunc: (dy, saved) => {
        const [zs, oh, n, w] = saved;
        const scale = tf.mul(tf.div(w, n), dy).reshape([-1, 1]); // [N, 1]
        return tf.mul(tf.sub(tf.softmax(zs), oh), scale);
      },
    };
  });
  return f(logits) as tf.Scalar;
}

/**
 * Hidden state of each row's last non-padding token: hidden [B, T, H], mask [B, T] → [B, H].
 * A one-hot weighted sum rather than tf.gather, whose gradient needs a kernel the wasm backend lacks.
 */
export function lastTokenHidden(hidden: tf.Tensor3D, mask: tf.Tensor2D): tf.Tensor2D {
  const t = hidden.shape[1];
  const last = tf.cast(tf.maximum(tf.sub(tf.sum(tf.cast(mask, 'int32'), 1), 1), 0), 'int32'); // [B]
  const pick = tf.expandDims(tf.oneHot(last, t), 2); // [B, T, 1]
  return tf.sum(tf.mul(hidden, pick), 1) as tf.Tensor2D;
}

/** A small stable string hash, to give each LoRA module its own dropout stream. */
function hash(s: string): number {
  let x = 2166136261;
  for (let i = 0; i < s.length; i++) x = Math.imul(x ^ s.charCodeAt(i), 16777619);
  return (x >>> 0) % 1_000_003;
}
