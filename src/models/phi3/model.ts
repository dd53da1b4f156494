// Phi-3 as transformers 5.18 runs it (Phi3ForCausalLM, Phi3ForSequenceClassification): Llama's layer (RMSNorm,
// grouped-query attention with RoPE, SiLU-gated MLP) with fused projections, `self_attn.qkv_proj` ([q; k; v] along
// its output) and `mlp.gate_up_proj` ([gate; up]), each one nn.Linear: what LoRA adapts and merge writes, as PEFT
// does. RoPE may rotate only the leading dims of each head (partial_rotary_factor); sliding_window masks far keys.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, I intermediate, nh/nkv query/key-value heads, hd head dim.
//
// The fused outputs are split by splitColumns: on wasm tf.split and tf.slice first copy the whole input out of the
// heap, once per part, then copy it back row by row; gatherND copies each block natively. Measured on 2 loaded cores
// (1 thread, CPU time, medians): the split alone 2-3× faster than tf.split, forward and backward; a LoRA step of a
// 4-layer H 512 model (B 4 × T 128) 2-8% slower than Llama on the same weights split into q/k/v and gate/up, against
// 7-11% with tf.split. A head-major split after one transpose was no faster; gather or a strided slice 5-20× slower.
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../../adapters/lora';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import { BaseModel } from '../base';
import { normalizeKeys } from '../layouts';
import { attentionBias, halfRotation, type HalfRotation } from '../layers';
import { disposeRope, groupedAttention, ropeAt, ropeTables, type RopeTables } from '../llama/attention';
import { invFreq } from '../rope';
import type { Adapters, BatchTensors, BuildOptions, HFConfig } from '../types';
import { Weights } from '../weights';
import { parsePhi3Config, type Phi3Config } from './config';
import { requiredPhi3Weights } from './weights';

export class Phi3Model extends BaseModel {
  readonly family = 'phi3';
  private readonly c: Phi3Config;
  private readonly rope = new Map<number, RopeTables>(); // by T
  private readonly rot: HalfRotation; // rotate_half of the rotary dims as x·R

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parsePhi3Config(raw, `${o.dir}/config.json`);
    const w = new Weights(normalizeKeys('phi3', checkpoint, raw, o.dir), o.dir);
    w.check(requiredPhi3Weights(c));
    super(c, o, 'score');
    this.c = c;
    // A refused weight disposes what was loaded before it. Phi-3's Linears have no bias: a stored one is ignored,
    // as transformers ignores it.
    try {
      this.loadEmbedding(w, 'model.embed_tokens.weight');
      this.loadNorm(w, 'model.norm', false);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}`;
        for (const n of ['input_layernorm', 'post_attention_layernorm']) this.loadNorm(w, `${p}.${n}`, false);
        for (const n of ['qkv_proj', 'o_proj']) this.loadLinear(w, `${p}.self_attn.${n}`, false);
        for (const n of ['gate_up_proj', 'down_proj']) this.loadLinear(w, `${p}.mlp.${n}`, false);
      }
      if (o.task === 'causal-lm') {
        if (w.has('lm_head.weight')) this.loadLmHead(w, c.hiddenSize, false);
        else if (c.tieWordEmbeddings)
          this.tieHead('lm_head'); // Phi-4-mini ties it
        else {
          throw new LoraPlusError({
            code: 'model/missing-weights',
            message: 'the checkpoint has no lm_head.weight and tie_word_embeddings is false',
            file: o.dir,
            hint: 'Set tie_word_embeddings: true in config.json if the head is tied to the embeddings.',
          });
        }
      } else this.loadScoreHead(w, c.hiddenSize, c.initializerRange, o.normal); // normal(0, initializer_range) if new
    } catch (err) {
      super.dispose();
      throw err;
    }
    this.rot = halfRotation(c.headDim, c.rotaryDim);
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    const { numHeads: nh, numKvHeads: nkv, headDim: hd } = c;
    const rope = ropeAt(this.ropeTables(t), batch.positionIds);
    // The mask for the grouped queries of groupedAttention (rows rep·T); the window only matters past its length.
    const window = c.slidingWindow !== null && c.slidingWindow < t ? c.slidingWindow : undefined;
    const bias = attentionBias(batch.attentionMask, true, nh / nkv, window, batch.segmentIds); // [B, 1, rep·T, T]
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D;
    let x = this.embedTokens(ids); // [N, H]
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const h = this.rmsNorm(`${p}.input_layernorm`, x, c.rmsNormEps);
      const qkv = this.linear(`${p}.self_attn.qkv_proj`, h, a); // [N, (nh + 2·nkv)·hd]
      const [q, k, v] = splitColumns(qkv, [nh * hd, nkv * hd, nkv * hd], nkv * hd);
      const merged = groupedAttention(q, k, v, { b, t, nh, nkv, hd }, rope, this.rot, bias); // [N, nh·hd]
      x = tf.add(x, this.linear(`${p}.self_attn.o_proj`, merged, a));
      const h2 = this.rmsNorm(`${p}.post_attention_layernorm`, x, c.rmsNormEps);
      const gateUp = this.linear(`${p}.mlp.gate_up_proj`, h2, a); // [N, 2·I]
      const [gate, up] = splitColumns(gateUp, [c.intermediateSize, c.intermediateSize], c.intermediateSize);
      const act = tf.mul(up, tf.mul(gate, tf.sigmoid(gate))) as tf.Tensor2D; // up·silu(gate)
      x = tf.add(x, this.linear(`${p}.mlp.down_proj`, act, a));
    }
    return tf.reshape(this.rmsNorm('model.norm', x, c.rmsNormEps), [b, t, c.hiddenSize]);
  }

  /** RoPE tables, cached per sequence length T. */
  private ropeTables(t: number): RopeTables {
    let r = this.rope.get(t);
    if (!r) {
      const { numHeads: nh, numKvHeads: nkv, headDim: hd, rope, rotaryDim } = this.c;
      r = ropeTables({ t, nh, nkv, hd }, invFreq(rope, hd, t), rotaryDim);
      this.rope.set(t, r);
    }
    return r;
  }

  override dispose(): void {
    super.dispose();
    tf.dispose([this.rot.r, this.rot.rT]);
    for (const r of this.rope.values()) disposeRope(r);
  }
}

/**
 * x [N, C] → its column blocks [N, sizes[i]] (Σ sizes = C), each a whole number of `unit` columns: x viewed as
 * [N, C/unit, unit] and the blocks picked by gatherND (a native copy per block). A part's gradient is its dy padded
 * to [N, C] (PadV2, native; gatherND has no gradient of its own), and autodiff adds the parts'.
 */
export function splitColumns(x: tf.Tensor2D, sizes: number[], unit: number): tf.Tensor2D[] {
  const [n, c] = x.shape;
  const blocks = tf.reshape(x, [n, c / unit, unit]);
  let start = 0;
  return sizes.map((size) => {
    const [from, k] = [start, size / unit];
    start += size;
    const f = customOp(([xb]) => {
      const at = new Int32Array(n * k * 2); // [N, k, 2]: (row, block) pairs
      for (let i = 0, o = 0; i < n; i++)
        for (let j = 0; j < k; j++, o += 2) {
          at[o] = i;
          at[o + 1] = from / unit + j;
        }
      return {
        value: tf.reshape(tf.gatherND(xb, tf.tensor3d(at, [n, k, 2], 'int32')), [n, size]),
        gradFunc: (dy) =>
          tf.reshape(
            tf.pad(tf.reshape(dy, [n, size]), [
              [0, 0],
              [from, c - from - size],
            ]),
            [n, c / unit, unit],
          ),
      };
    });
    return f(blocks) as tf.Tensor2D;
  });
}
