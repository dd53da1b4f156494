// Gemma 3's language model as transformers 5.18 runs it (Gemma3ForCausalLM, Gemma3TextForSequenceClassification, and
// the text part of Gemma3ForConditionalGeneration): embeddings scaled by √H, four RMSNorms (1 + w) around each
// layer's attention and MLP, q_norm/k_norm per head before RoPE, scores scaled by query_pre_attn_scalar^-0.5,
// layers of two types (sliding_attention: a window of sliding_window keys and the local RoPE base;
// full_attention: causal, the global base), gelu_pytorch_tanh MLP, soft-capping of the final logits where
// transformers applies it (Gemma3ForCausalLM), tied or untied LM head, `score` for classification.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, I intermediate, nh/nkv query/key-value heads, hd head dim.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import { BaseModel } from '../base';
import { normalizeKeys } from '../layouts';
import { attentionBias, halfRotation, type HalfRotation } from '../layers';
import { disposeRope, ropeAt, type RopeTables } from '../llama/attention';
import { invFreq } from '../rope';
import type { Adapters, BatchTensors, BuildOptions, HFConfig } from '../types';
import { Weights } from '../weights';
import { gemmaAttention, gemmaRopeTables, headNorm } from './attention';
import { parseGemma3Config, type Gemma3Config, type LayerType } from './config';
import { geluTanh, rmsNorm1p, softcap } from './layers';
import { LAYER_NORMS, requiredGemma3Weights, UNUSED_BIAS } from './weights';

export class Gemma3Model extends BaseModel {
  readonly family = 'gemma3';
  private readonly c: Gemma3Config;
  private readonly norms1p = new Map<string, tf.Tensor1D>(); // 1 + w of every RMSNorm, by module path
  private readonly rope = new Map<string, RopeTables>(); // by `${layer type}:${T}`
  private readonly rot: HalfRotation; // rotate_half as x·R
  // Gemma3TextScaledWordEmbedding: √H as a float32 tensor, cast to the embedding's dtype (float32 here).
  private readonly embedScale: number;

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parseGemma3Config(raw, `${o.dir}/config.json`);
    let keyed = normalizeKeys('gemma3', checkpoint, raw, o.dir);
    // Without attention_bias transformers builds the projections bias-free and ignores stored biases: so do we.
    if (!c.attentionBias) keyed = new Map([...keyed].filter(([k]) => !UNUSED_BIAS.test(k)));
    const w = new Weights(keyed, o.dir);
    w.check(requiredGemma3Weights(c));
    super(c, o, 'score');
    this.c = c;
    this.embedScale = Math.fround(Math.sqrt(c.hiddenSize));
    this.rot = halfRotation(c.headDim);
    // A refused weight disposes what was loaded before it.
    try {
      const m = c.prefix;
      this.loadEmbedding(w, `${m}.embed_tokens.weight`);
      this.loadNorm1p(w, `${m}.norm`);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `${m}.layers.${i}`;
        for (const n of LAYER_NORMS) this.loadNorm1p(w, `${p}.${n}`);
        for (const n of ['q_norm', 'k_norm']) this.loadNorm1p(w, `${p}.self_attn.${n}`);
        for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) this.loadLinear(w, `${p}.self_attn.${n}`);
        for (const n of ['gate_proj', 'up_proj', 'down_proj']) this.loadLinear(w, `${p}.mlp.${n}`, false);
      }
      if (o.task === 'causal-lm') {
        if (w.has('lm_head.weight')) this.loadLmHead(w, c.hiddenSize, false);
        else if (c.tieWordEmbeddings) this.tieHead('lm_head');
        else {
          throw new LoraPlusError({
            code: 'model/missing-weights',
            message: 'the checkpoint has no lm_head.weight and tie_word_embeddings is false',
            file: o.dir,
            hint: 'Set tie_word_embeddings: true in config.json if the head is tied to the embeddings.',
          });
        }
      } else this.loadScoreHead(w, c.hiddenSize, c.initializerRange, o.normal);
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** RMSNorm `path` (1 + w): its weight counts as a parameter; 1 + w is made once, here. */
  private loadNorm1p(w: Weights, path: string): void {
    const weight = this.loadParam<tf.Tensor1D>(w, `${path}.weight`);
    this.norms1p.set(path, tf.add(weight, 1));
  }

  private norm<T extends tf.Tensor>(path: string, x: T): T {
    return rmsNorm1p(x, this.norms1p.get(path)!, this.c.rmsNormEps) as T;
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    const rep = c.numHeads / c.numKvHeads;
    // Masks for the grouped queries (rows rep·T): causal on full layers, causal within the window on sliding ones.
    const segs = batch.segmentIds; // packed rows see only their own example
    const full = attentionBias(batch.attentionMask, true, rep, undefined, segs); // [B, 1, rep·T, T]
    const w = c.slidingWindow;
    const needsWindow = w !== null && w < t && c.layerTypes.includes('sliding_attention');
    const bias = {
      full_attention: full,
      sliding_attention: needsWindow ? attentionBias(batch.attentionMask, true, rep, w, segs) : full,
    };
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D;
    let x = tf.mul(this.embedTokens(ids), this.embedScale) as tf.Tensor2D; // [N, H]
    for (let i = 0; i < c.numLayers; i++) {
      const p = `${c.prefix}.layers.${i}`;
      const type = c.layerTypes[i];
      const rope = ropeAt(this.ropeTables(type, t), batch.positionIds);
      const attn = this.selfAttention(p, this.norm(`${p}.input_layernorm`, x), b, t, rope, bias[type], a);
      x = tf.add(x, this.norm(`${p}.post_attention_layernorm`, attn));
      const h = this.norm(`${p}.pre_feedforward_layernorm`, x);
      const gate = this.linear(`${p}.mlp.gate_proj`, h, a); // [N, I]
      const up = this.linear(`${p}.mlp.up_proj`, h, a); // [N, I]
      const mlp = this.linear(`${p}.mlp.down_proj`, tf.mul(geluTanh(gate), up) as tf.Tensor2D, a);
      x = tf.add(x, this.norm(`${p}.post_feedforward_layernorm`, mlp));
    }
    return tf.reshape(this.norm(`${c.prefix}.norm`, x), [b, t, c.hiddenSize]);
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
    const { numHeads: nh, numKvHeads: nkv, headDim: hd, rmsNormEps: eps } = this.c;
    const proj = (n: string) => this.linear(`${p}.self_attn.${n}`, h, a); // [N, n·hd]
    const q = headNorm(proj('q_proj'), this.norms1p.get(`${p}.self_attn.q_norm`)!, eps);
    const k = headNorm(proj('k_proj'), this.norms1p.get(`${p}.self_attn.k_norm`)!, eps);
    const dims = { b, t, nh, nkv, hd };
    // No score capping: transformers 5.18's Gemma3Attention keeps attn_logit_softcapping but never hands it to its
    // attention functions (Gemma2Attention does), so capping here would part from transformers' and PEFT's logits.
    const merged = gemmaAttention(q, k, proj('v_proj'), dims, rope, this.rot, bias, null);
    return this.linear(`${p}.self_attn.o_proj`, merged, a);
  }

  /** The LM head with final_logit_softcapping when the config sets it (logits, loss and generation all pass here). */
  protected override linear(path: string, x: tf.Tensor2D, a: Adapters): tf.Tensor2D {
    const y = super.linear(path, x, a);
    return path === 'lm_head' && this.c.finalSoftcap ? (softcap(y, this.c.finalSoftcap) as tf.Tensor2D) : y;
  }

  /** RoPE tables of a layer type (its own base), cached per sequence length T. */
  private ropeTables(type: LayerType, t: number): RopeTables {
    const key = `${type}:${t}`;
    let r = this.rope.get(key);
    if (!r) {
      const { numHeads: nh, numKvHeads: nkv, headDim: hd, queryScale } = this.c;
      r = gemmaRopeTables({ t, nh, nkv, hd }, invFreq(this.c.rope[type], hd, t), queryScale);
      this.rope.set(key, r);
    }
    return r;
  }

  override dispose(): void {
    super.dispose();
    tf.dispose([...this.norms1p.values()]);
    if (this.rot) tf.dispose([this.rot.r, this.rot.rT]);
    for (const r of this.rope.values()) disposeRope(r);
  }
}
