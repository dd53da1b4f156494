// Building blocks shared by the model families. Shapes in comments: B batch, T sequence, H hidden, V vocabulary.
import * as tf from '@tensorflow/tfjs';
import { customOp, linear, loraLinear, trainableLinear, type FrozenLinear } from '../adapters/lora';
import type { Activation } from './activations';
import type { Adapters } from './types';

/** Runs module `path` on x [N, in] → [N, out]: fully trained if it is in modules_to_save, else frozen (+ LoRA). */
export function applyLinear(
  path: string,
  x: tf.Tensor2D,
  linears: ReadonlyMap<string, FrozenLinear>,
  a: Adapters,
): tf.Tensor2D {
  const full = a.trainable.get(path);
  if (full) return trainableLinear(x, full);
  const base = linears.get(path);
  if (!base) throw new Error(`internal: no Linear named ${path}`);
  const lora = a.lora.get(path);
  return lora ? loraLinear(x, base, lora, a.dropoutSeed === null ? null : a.dropoutSeed + hash(path)) : linear(x, base);
}

/**
 * Rows of a frozen embedding table for ids [N] → [N, H]. The table is E [V, H], or Eᵀ [H, V] when `transposed` (a
 * tied head's Wᵀ: the model then holds E once, rather than E, Wᵀ and XNNPACK's packed copies of both). A custom op
 * without a gradient: autodiff of tf.gather would save the whole table on every step, and saving copies on wasm.
 */
export function embeddingLookup(table: tf.Tensor2D, ids: tf.Tensor1D, transposed = false): tf.Tensor2D {
  const f = customOp(([e]) => ({
    value: transposed ? tf.transpose(tf.gather(e, ids, 1)) : tf.gather(e, ids),
    gradFunc: () => {
      throw new Error('internal: embedding tables are frozen, they have no gradient');
    },
  }));
  return f(table) as tf.Tensor2D;
}

/** RMSNorm (Llama): x · rsqrt(mean(x²) + eps) · w, over the last axis. */
export function rmsNorm(x: tf.Tensor, w: tf.Tensor1D, eps: number): tf.Tensor {
  const ms = tf.mean(tf.square(x), -1, true);
  return tf.mul(tf.mul(x, tf.rsqrt(tf.add(ms, eps))), w);
}

/**
 * Additive attention bias: 0 where query i may see key j, -1e9 elsewhere (causal and/or padding). [B, 1, T, T], or
 * with `repeat` r > 1 and causal, [B, 1, r·T, T]: the causal rows repeated r times, for r query groups stacked along
 * the rows (grouped-query attention). Without causal it is [B, 1, 1, T], which broadcasts over any rows. A causal
 * `window` w keeps keys i−w < j ≤ i, as transformers' sliding_window_overlay: w tokens, the query's own included.
 * Packed rows (`segments`: 1, 2, … per example, 0 for padding) see only their own example: a block-diagonal mask.
 */
export function attentionBias(
  mask: tf.Tensor2D,
  causal: boolean,
  repeat = 1,
  window?: number,
  segments?: tf.Tensor2D | null,
): tf.Tensor4D {
  const [b, t] = mask.shape;
  const keys = tf.reshape(tf.cast(mask, 'float32'), [b, 1, 1, t]); // [B, 1, 1, T]
  let allowed: tf.Tensor = keys;
  if (causal && segments) {
    const lower = tf.linalg.bandPart(tf.ones([t, t]), window ? window - 1 : -1, 0); // [T, T]
    const same = tf.cast(tf.equal(tf.reshape(segments, [b, 1, t, 1]), tf.reshape(segments, [b, 1, 1, t])), 'float32');
    const rows = tf.mul(tf.mul(keys, lower), same); // [B, 1, T, T]
    allowed = repeat > 1 ? tf.tile(rows, [1, 1, repeat, 1]) : rows; // [B, 1, r·T, T]
  } else if (causal) {
    const lower = tf.linalg.bandPart(tf.ones([t, t]), window ? window - 1 : -1, 0); // [T, T]
    allowed = tf.mul(keys, repeat > 1 ? tf.tile(lower, [repeat, 1]) : lower); // [B, 1, r·T, T]
  }
  return tf.mul(tf.sub(1, allowed), -1e9) as tf.Tensor4D;
}

/** HF's rotate_half as a product: rotate_half(x) = [−x₂, x₁] = x·R for a fixed signed permutation R [hd, hd]. */
export interface HalfRotation {
  r: tf.Tensor2D; // R [hd, hd]
  rT: tf.Tensor2D; // Rᵀ, for the gradient
}

/**
 * R and Rᵀ for head size hd, kept (they outlive the caller's tidy; the caller disposes them). With `rotary` < hd
 * (Phi-3's partial_rotary_factor) rotate_half acts on the first rotary dims only; R's other rows and columns are 0.
 */
export function halfRotation(hd: number, rotary = hd): HalfRotation {
  const h = rotary / 2;
  const r = new Float32Array(hd * hd);
  for (let i = 0; i < h; i++) {
    r[(i + h) * hd + i] = -1; // output i < h takes −x[i+h]
    r[i * hd + i + h] = 1; // output i+h takes x[i]
  }
  const R = tf.tensor2d(r, [hd, hd]);
  return { r: tf.keep(R), rT: tf.keep(tf.transpose(R)) };
}

/**
 * RoPE with HF's rotate_half, x·cos + rotate_half(x)·sin, on x [B, T, n·hd] (the projection's own layout: no
 * transpose) with tables [T, n·hd] (one broadcast axis, the fastest for the wasm backend's elementwise kernels).
 * rotate_half is one 2-D product over [B·T·n, hd], forward and backward (dy·Rᵀ): the wasm backend's fast path,
 * instead of split + neg + concat.
 */
export function applyRope(x: tf.Tensor3D, cos: tf.Tensor, sin: tf.Tensor, rot: HalfRotation): tf.Tensor3D {
  const hd = rot.r.shape[0];
  const f = customOp(([xx]) => ({
    value: tf.matMul(xx as tf.Tensor2D, rot.r),
    gradFunc: (dy) => tf.matMul(dy as tf.Tensor2D, rot.rT),
  }));
  const rotated = tf.reshape(f(tf.reshape(x, [-1, hd])), x.shape);
  return tf.add(tf.mul(x, cos), tf.mul(rotated, sin));
}

/**
 * softmax(q·kᵀ + bias)·v with one custom gradient, so that the tape keeps q, k, v and the probabilities y and
 * nothing else of size [M, T] (autodiff kept the scores and two copies of y, since saving copies on wasm); the
 * backward runs the batched matmuls autodiff would, and softmax's dx = y·(dy − Σ dy·y). q [B, g, M, hd], already
 * scaled; k, v [B, g, T, hd]; bias (a mask: no gradient) broadcasts against the scores [B, g, M, T]. A `softcap` c
 * (Gemma's attn_logit_softcapping) caps the scores before the bias as c·tanh(s/c); the tape then keeps tanh too.
 */
export function attention(
  q: tf.Tensor4D,
  k: tf.Tensor4D,
  v: tf.Tensor4D,
  bias: tf.Tensor4D,
  softcap: number | null = null,
): tf.Tensor4D {
  const f = customOp(([qq, kk, vv], save) => {
    const scores = tf.matMul(qq, kk, false, true); // [B, g, M, T]
    const capped = softcap ? tf.tanh(tf.div(scores, softcap)) : null;
    const y = tf.softmax(tf.add(capped ? tf.mul(capped, softcap!) : scores, bias));
    save([qq, kk, vv, y, ...(capped ? [capped] : [])]);
    return {
      value: tf.matMul(y, vv), // [B, g, M, hd]
      gradFunc: (dOut, [qs, ks, vs, ys, cs]) => {
        const dy = tf.matMul(dOut, vs, false, true); // [B, g, M, T]
        let ds = tf.mul(ys, tf.sub(dy, tf.sum(tf.mul(dy, ys), -1, true))); // through the softmax (and the bias add)
        if (cs) ds = tf.mul(ds, tf.sub(1, tf.square(cs))); // d(c·tanh(s/c))/ds = 1 − tanh²
        return [tf.matMul(ds, ks), tf.matMul(ds, qs, true, false), tf.matMul(ys, dOut, true, false)]; // dq, dk, dv
      },
    };
  });
  return f(q, k, v) as tf.Tensor4D;
}

/**
 * Cross-entropy of logits [N, V] against labels [N]: Σ w·(log Σ exp z − z[label]) / count, with count = Σ w (a mean
 * over the rows of weight 1; weight 0 rows are ignored) unless given: the loss tokens of a whole accumulated batch, as
 * transformers' num_items_in_batch. A custom op around one softmax y (the wasm backend's only fast kernel over
 * [N, V]: its elementwise exp is scalar): log Σ exp z = max z − log max y, since max y = 1/Σ exp(z − max z), so the
 * loss needs no exp of its own; the tape keeps y alone and the gradient is (y − onehot) · w / count.
 */
export function crossEntropy(
  logits: tf.Tensor2D,
  labels: tf.Tensor1D,
  weights: tf.Tensor1D,
  total?: number | null,
): tf.Scalar {
  const [n, v] = logits.shape;
  const ids = tf.cast(labels, 'int32');
  // z[i, label i] as a 1-D gather at i·V + label (the wasm backend's gather with batchDims reads out of bounds).
  const at = tf.add(tf.mul(tf.range(0, n, 1, 'int32'), tf.scalar(v, 'int32')), ids);
  const f = customOp(([z], save) => {
    const zz = z as tf.Tensor2D;
    const y = tf.softmax(zz); // [N, V]
    const lse = tf.sub(tf.max(zz, 1), tf.log(tf.max(y, 1))); // [N]
    const perRow = tf.sub(lse, tf.gather(tf.reshape(zz, [-1]), at)); // [N]: log Σ exp z − z[label]
    const count = total ? tf.scalar(total) : tf.maximum(tf.sum(weights), 1);
    save([y, ids, count, weights]); // the forward runs in a tidy: what the gradient needs must be saved
    return {
      value: tf.div(tf.sum(tf.mul(perRow, weights)), count) as tf.Scalar,
      gradFunc: (dy, [ys, l, cnt, w]) => {
        const scale = tf.reshape(tf.mul(tf.div(w, cnt), dy), [-1, 1]); // [N, 1]
        // One-hot built as float32 by scatterND: wasm's oneHot writes int bits into a float32 output.
        const onehot = tf.scatterND(tf.stack([tf.range(0, n, 1, 'int32'), l], 1), tf.ones([n]), [n, v]); // [N, V]
        return tf.mul(tf.sub(ys, onehot), scale);
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

/**
 * LayerNorm over the last axis (BERT-style encoders, GPT-2): x̂ · w + b with x̂ = (x − mean) / √(var + eps), the biased
 * variance. w and b are frozen (LoRA never trains them), so only dx is needed: a custom gradient that saves x̂ and
 * 1/σ instead of every intermediate autodiff would keep until the backward ends (most of a BERT-base step's peak):
 * dx = (1/σ) · (g − mean(g) − x̂ · mean(g · x̂)) with g = dy · w.
 */
export function layerNorm(x: tf.Tensor, w: tf.Tensor1D, b: tf.Tensor1D, eps: number): tf.Tensor {
  const f = customOp(([xx], save) => {
    const centred = tf.sub(xx, tf.mean(xx, -1, true));
    const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(centred), -1, true), eps)); // [..., 1]
    const xhat = tf.mul(centred, rstd);
    save([xhat, rstd]);
    return {
      value: tf.add(tf.mul(xhat, w), b),
      gradFunc: (dy, saved) => {
        const [xh, rs] = saved;
        const g = tf.mul(dy, w);
        return tf.mul(rs, tf.sub(tf.sub(g, tf.mean(g, -1, true)), tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
      },
    };
  });
  return f(x);
}

/**
 * Exact GELU (transformers' `gelu`): x·Φ(x) = ½·x·(1 + erf(x/√2)). Every backend has an Erf kernel (tfjs computes it
 * with a polynomial good to ~1e-7); the custom gradient Φ(x) + x·φ(x) keeps the backward to one pass over x.
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  const f = customOp(([z], save) => {
    save([z]);
    return {
      value: tf.mul(tf.mul(z, 0.5), tf.add(1, tf.erf(tf.mul(z, Math.SQRT1_2)))),
      gradFunc: (dy, [zs]) => {
        const cdf = tf.mul(0.5, tf.add(1, tf.erf(tf.mul(zs, Math.SQRT1_2)))); // Φ(x)
        const pdf = tf.mul(Math.sqrt(0.5 / Math.PI), tf.exp(tf.mul(tf.square(zs), -0.5))); // φ(x)
        return tf.mul(dy, tf.add(cdf, tf.mul(zs, pdf)));
      },
    };
  });
  return f(x);
}

/** GELU with the tanh approximation (transformers' `gelu_new` / `gelu_pytorch_tanh`), by autodiff. */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
  return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.tanh(inner)));
}

/** The MLP activation a config names (activations.ts). */
export function activation(act: Activation, x: tf.Tensor2D): tf.Tensor2D {
  return (act === 'gelu' ? gelu(x) : act === 'gelu_tanh' ? geluTanh(x) : tf.relu(x)) as tf.Tensor2D;
}
