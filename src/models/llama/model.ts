// The Llama layout (llama, mistral, qwen2, smollm): RoPE, RMSNorm, SiLU-gated MLP, grouped-query attention, optional
// biases (present when the checkpoint has them), tied or untied LM head, and LlamaForSequenceClassification's `score`.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh/nkv query/key-value heads, hd head dim, V vocabulary.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import { BaseModel } from '../base';
import { attentionBias, halfRotation, type HalfRotation } from '../layers';
import { disposeRope, groupedAttention, ropeAt, ropeTables, type RopeTables } from './attention';
import type { Adapters, BatchTensors, BuildOptions, HFConfig } from '../types';
import { parseLlamaConfig, type LlamaConfig } from './config';
import { Weights } from '../weights';
import { requiredLlamaWeights } from './weights';
import { normalizeKeys } from '../layouts';
import { invFreq } from '../rope';

export class LlamaModel extends BaseModel {
  readonly family: string = 'llama'; // a relative that subclasses this (qwen3) names its own
  private readonly c: LlamaConfig;
  private readonly rope = new Map<number, RopeTables>(); // by T
  private readonly rot: HalfRotation; // rotate_half as x·R

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parseLlamaConfig(raw, `${o.dir}/config.json`);
    const w = new Weights(normalizeKeys('llama', checkpoint, raw, o.dir), o.dir);
    w.check(requiredLlamaWeights(c));
    super(c, o, 'score');
    this.c = c;
    // A refused weight disposes what was loaded before it.
    try {
      this.loadEmbedding(w, 'model.embed_tokens.weight');
      this.loadNorm(w, 'model.norm', false);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}`;
        for (const n of ['input_layernorm', 'post_attention_layernorm']) this.loadNorm(w, `${p}.${n}`, false);
        for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) this.loadLinear(w, `${p}.self_attn.${n}`);
        for (const n of ['gate_proj', 'up_proj', 'down_proj']) this.loadLinear(w, `${p}.mlp.${n}`);
      }

      if (o.task === 'causal-lm') {
        if (w.has('lm_head.weight')) this.loadLmHead(w, c.hiddenSize);
        else if (c.tieWordEmbeddings) this.tieHead('lm_head');
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
    this.rot = halfRotation(c.headDim);
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    const rope = ropeAt(this.ropeTables(t), batch.positionIds);
    // The mask for the grouped queries of groupedAttention (rows rep·T: query head j·rep+r at position i is r·T+i).
    const rep = c.numHeads / c.numKvHeads;
    const bias = attentionBias(batch.attentionMask, true, rep, undefined, batch.segmentIds); // [B, 1, rep·T, T]
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D;
    let x = this.embedTokens(ids); // [N, H]
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const h = this.rmsNorm(`${p}.input_layernorm`, x, c.rmsNormEps);
      x = tf.add(x, this.selfAttention(p, h, b, t, rope, bias, a));
      const h2 = this.rmsNorm(`${p}.post_attention_layernorm`, x, c.rmsNormEps);
      const gate = this.linear(`${p}.mlp.gate_proj`, h2, a); // [N, I]
      const up = this.linear(`${p}.mlp.up_proj`, h2, a); // [N, I]
      const act = tf.mul(tf.mul(gate, tf.sigmoid(gate)), up) as tf.Tensor2D; // silu(gate)·up
      x = tf.add(x, this.linear(`${p}.mlp.down_proj`, act, a));
    }
    return tf.reshape(this.rmsNorm('model.norm', x, c.rmsNormEps), [b, t, c.hiddenSize]);
  }

  private selfAttention(
    p: string,
    h: tf.Tensor2D,
    b: number,
    t: number,
    rope: RopeTables,
    bias: tf.Tensor4D,
    a: Adapters,
  ): tf.Tensor2D {
    const { numHeads: nh, numKvHeads: nkv, headDim: hd } = this.c;
    const [q, k] = this.queryKey(p, h, a);
    const merged = groupedAttention(
      q,
      k,
      this.linear(`${p}.self_attn.v_proj`, h, a),
      { b, t, nh, nkv, hd },
      rope,
      this.rot,
      bias,
    ); // [N, nh·hd]
    return this.linear(`${p}.self_attn.o_proj`, merged, a);
  }

  /** The query and key projections [N, nh·hd], [N, nkv·hd] as RoPE takes them (Qwen3 normalizes each head). */
  protected queryKey(p: string, h: tf.Tensor2D, a: Adapters): [tf.Tensor2D, tf.Tensor2D] {
    return [this.linear(`${p}.self_attn.q_proj`, h, a), this.linear(`${p}.self_attn.k_proj`, h, a)];
  }

  /** RoPE tables, cached per sequence length T. */
  private ropeTables(t: number): RopeTables {
    let r = this.rope.get(t);
    if (!r) {
      const { numHeads: nh, numKvHeads: nkv, headDim: hd, rope } = this.c;
      r = ropeTables({ t, nh, nkv, hd }, invFreq(rope, hd, t));
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
