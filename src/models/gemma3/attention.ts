// Gemma 3's attention core: q_norm/k_norm on each head, RoPE (HF's rotate_half) with the layer type's base, scores
// scaled by query_pre_attn_scalar^-0.5, optional tanh soft-capping, grouped-query attention without repeat_kv.
// Shapes: B batch, T sequence, N = B·T tokens, nh/nkv query/key-value heads, rep = nh/nkv, hd head dim.
// Written for the wasm backend as Llama's (llama/attention.ts): reshapes instead of transposes where possible, RoPE's
// rotation as a 2-D matmul, one fused custom-gradient attention (layers.ts), no tensor above 4-D.
import * as tf from '@tensorflow/tfjs';
import { applyRope, attention, type HalfRotation } from '../layers';
import type { AttentionDims, RopeTables } from '../llama/attention';
import { rmsNorm1p } from './layers';

/**
 * cos/sin for positions 0…T−1 from inv_freq (rope.ts), in float32 as transformers computes them, laid out per head as
 * the projections are ([T, n·hd]). q's tables carry the score scale s = query_pre_attn_scalar^-0.5:
 * (x·cos + rot(x)·sin)·s = x·(s·cos) + rot(x)·(s·sin). Kept (they outlive the caller's tidy): see disposeRope.
 */
export function gemmaRopeTables(d: Omit<AttentionDims, 'b'>, invFreq: Float32Array, scale: number): RopeTables {
  const { t, nh, nkv, hd } = d;
  if (invFreq.length * 2 !== hd) throw new Error(`RoPE tables for ${hd} dims need ${hd / 2} frequencies`);
  const cos = new Float32Array(t * hd);
  const sin = new Float32Array(t * hd);
  for (let i = 0; i < hd / 2; i++) {
    for (let pos = 0; pos < t; pos++) {
      const angle = Math.fround(pos * invFreq[i]);
      cos[pos * hd + i] = cos[pos * hd + i + hd / 2] = Math.cos(angle);
      sin[pos * hd + i] = sin[pos * hd + i + hd / 2] = Math.sin(angle);
    }
  }
  const perHead = (src: Float32Array, n: number, s: number) => {
    const out = new Float32Array(t * n * hd);
    for (let pos = 0; pos < t; pos++)
      for (let j = 0; j < n; j++) for (let i = 0; i < hd; i++) out[(pos * n + j) * hd + i] = src[pos * hd + i] * s;
    return tf.keep(tf.tensor2d(out, [t, n * hd]));
  };
  return {
    q: { cos: perHead(cos, nh, scale), sin: perHead(sin, nh, scale) },
    k: { cos: perHead(cos, nkv, 1), sin: perHead(sin, nkv, 1) },
  };
}

/** Gemma3RMSNorm (1 + w) over each head of a projection [N, n·hd], as [N·n, hd] rows: reshapes, no transpose. */
export function headNorm(x: tf.Tensor2D, onePlusW: tf.Tensor1D, eps: number): tf.Tensor2D {
  const [n, width] = x.shape;
  const hd = onePlusW.shape[0];
  return tf.reshape(rmsNorm1p(tf.reshape(x, [(n * width) / hd, hd]), onePlusW, eps), [n, width]);
}

/**
 * softmax(cap(RoPE(q)·RoPE(k)ᵀ·s) + bias)·v from the normed projections q [N, nh·hd], k, v [N, nkv·hd] → [N, nh·hd].
 * Query heads j·rep … j·rep+rep−1 share key/value head j: q viewed as [B, nkv, rep·T, hd] meets k and v
 * [B, nkv, T, hd] as they are. bias: [B, 1, rep·T, T] (attentionBias with repeat = rep, and the window on sliding
 * layers). softcap: attn_logit_softcapping, or null.
 */
export function gemmaAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  d: AttentionDims,
  rope: RopeTables,
  rot: HalfRotation,
  bias: tf.Tensor4D,
  softcap: number | null,
): tf.Tensor2D {
  const { b, t, nh, nkv, hd } = d;
  // [N, n·hd] → [B, n, T, hd]
  const split = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
  const qr = applyRope(tf.reshape(q, [b, t, nh * hd]), rope.q.cos, rope.q.sin, rot);
  const kr = applyRope(tf.reshape(k, [b, t, nkv * hd]), rope.k.cos, rope.k.sin, rot);
  const grouped = tf.reshape(split(qr, nh), [b, nkv, (nh / nkv) * t, hd]) as tf.Tensor4D;
  const out = tf.reshape(attention(grouped, split(kr, nkv), split(v, nkv), bias, softcap), [b, nh, t, hd]);
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D; // heads merged back
}
