// Llama's attention core: RoPE with HF's rotate_half, and grouped-query attention without repeat_kv.
// Shapes: B batch, T sequence, N = B·T tokens, nh/nkv query/key-value heads, rep = nh/nkv, hd head dim.
// Written for the wasm backend (see layers.ts): no Tile, no split/concat, RoPE's rotation as a 2-D matmul, and all
// tensors at most 4-D (WebGPU's Tile falls back to a synchronous CPU read for 5-D tensors).
import * as tf from '@tensorflow/tfjs';
import { applyRope, attention, type HalfRotation } from '../layers';

export interface AttentionDims {
  b: number;
  t: number;
  nh: number;
  nkv: number;
  hd: number;
}

/** RoPE tables for one sequence length, [T, n·hd]: for the nh query heads (times 1/√hd) and the nkv key heads. */
export interface RopeTables {
  q: { cos: tf.Tensor; sin: tf.Tensor }; // [T, n·hd], or per token [B, T, n·hd] (ropeAt)
  k: { cos: tf.Tensor; sin: tf.Tensor };
}

/**
 * The tables for explicit positions [B, T] (packed rows restart at 0 for each example): each token's row of the
 * [T, n·hd] tables, [B, T, n·hd]. Without positions, the tables as they are (positions 0…T−1 for every row).
 */
export function ropeAt(r: RopeTables, positions: tf.Tensor2D | null | undefined): RopeTables {
  if (!positions) return r;
  const [b, t] = positions.shape;
  const flat = tf.reshape(positions, [-1]);
  const at = (table: tf.Tensor) => tf.reshape(tf.gather(table, flat), [b, t, table.shape[1]!]);
  return { q: { cos: at(r.q.cos), sin: at(r.q.sin) }, k: { cos: at(r.k.cos), sin: at(r.k.sin) } };
}

/**
 * cos/sin for positions 0…T−1 from inv_freq (rope.ts), computed in float32 as transformers does, laid out per head as the projections are.
 * `rotary`: the leading dims of each head that rotate (inv_freq has rotary/2 entries); the others keep their values.
 * q's tables carry the attention's 1/√hd: (x·cos + rot(x)·sin)·s = x·(s·cos) + rot(x)·(s·sin), so scaling the
 * scores [B, nh, T, T] costs nothing. The tensors are kept (they outlive the caller's tidy): see disposeRope.
 */
export function ropeTables(d: Omit<AttentionDims, 'b'>, invFreq: Float32Array, rotary = d.hd): RopeTables {
  const { t, nh, nkv, hd } = d;
  if (invFreq.length * 2 !== rotary || rotary > hd)
    throw new Error(`RoPE tables for ${rotary} dims need ${rotary / 2} frequencies`);
  // A partial rotary (Phi-3): dims rotary…hd−1 pass through, x·1 + rot(x)·0 (halfRotation's R leaves them out).
  const cos = new Float32Array(t * hd).fill(1);
  const sin = new Float32Array(t * hd);
  const half = rotary / 2;
  for (let i = 0; i < half; i++) {
    for (let pos = 0; pos < t; pos++) {
      const angle = Math.fround(pos * invFreq[i]);
      cos[pos * hd + i] = cos[pos * hd + i + half] = Math.cos(angle);
      sin[pos * hd + i] = sin[pos * hd + i + half] = Math.sin(angle);
    }
  }
  const perHead = (src: Float32Array, n: number, s: number) => {
    const out = new Float32Array(t * n * hd); // [T, hd] repeated for n heads, times s
    for (let pos = 0; pos < t; pos++)
      for (let j = 0; j < n; j++) for (let i = 0; i < hd; i++) out[(pos * n + j) * hd + i] = src[pos * hd + i] * s;
    return tf.keep(tf.tensor2d(out, [t, n * hd]));
  };
  const s = 1 / Math.sqrt(hd);
  return {
    q: { cos: perHead(cos, nh, s), sin: perHead(sin, nh, s) },
    k: { cos: perHead(cos, nkv, 1), sin: perHead(sin, nkv, 1) },
  };
}

export function disposeRope(r: RopeTables): void {
  tf.dispose([r.q.cos, r.q.sin, r.k.cos, r.k.sin]);
}

/**
 * softmax(RoPE(q)·RoPE(k)ᵀ/√hd + bias)·v from the projections q [N, nh·hd], k, v [N, nkv·hd] → [N, nh·hd].
 * Key/value head j serves query heads j·rep … j·rep+rep−1 (HF's repeat_kv); those are contiguous in q [B, nh, T, hd],
 * so q viewed as [B, nkv, rep·T, hd] meets k and v [B, nkv, T, hd] without repeating them. bias: [B, 1, rep·T, T]
 * (attentionBias with repeat = rep) or anything that broadcasts against the scores [B, nkv, rep·T, T].
 */
export function groupedAttention(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  d: AttentionDims,
  rope: RopeTables,
  rot: HalfRotation,
  bias: tf.Tensor4D,
): tf.Tensor2D {
  const { b, t, nh, nkv, hd } = d;
  const split = (y: tf.Tensor, n: number) => tf.transpose(tf.reshape(y, [b, t, n, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, n, T, hd]
  // RoPE before the heads are split, on the projections' layout [B, T, n·hd]: no transpose, one broadcast axis.
  const qr = applyRope(tf.reshape(q, [b, t, nh * hd]), rope.q.cos, rope.q.sin, rot);
  const kr = applyRope(tf.reshape(k, [b, t, nkv * hd]), rope.k.cos, rope.k.sin, rot);
  const grouped = tf.reshape(split(qr, nh), [b, nkv, (nh / nkv) * t, hd]) as tf.Tensor4D;
  const out = tf.reshape(attention(grouped, split(kr, nkv), split(v, nkv), bias), [b, nh, t, hd]);
  return tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D; // heads merged back
}
