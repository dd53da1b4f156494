// The GPT-2 layout: learned positions, pre-LN blocks (LayerNorm → attention → add, LayerNorm → MLP → add), a final
// LayerNorm, Conv1D projections (weights stored [in, out], used as they are), one fused q,k,v projection `c_attn`
// split after the product, gelu_new, a head tied to the token embedding, and GPT2ForSequenceClassification's `score`
// on the last non-padding token. Dropout has inference semantics (none); LoRA dropout still applies via linear().
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh heads, hd head dim, I inner, V vocabulary, L labels.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import { BaseModel } from '../base';
import { activation, attention, attentionBias, embeddingLookup } from '../layers';
import { Weights } from '../weights';
import type { Adapters, BatchTensors, BuildOptions, HFConfig } from '../types';
import { parseGpt2Config, type Gpt2Config } from './config';
import { conv1dModules, requiredGpt2Weights } from './weights';
import { normalizeKeys } from '../layouts';

export class Gpt2Model extends BaseModel {
  readonly family = 'gpt2';
  private readonly c: Gpt2Config;
  private readonly wpe: tf.Tensor2D; // position embedding [n_positions, H]

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parseGpt2Config(raw, `${o.dir}/config.json`);
    const w = new Weights(normalizeKeys('gpt2', checkpoint, raw, o.dir), o.dir);
    w.check(requiredGpt2Weights(c));
    super(c, o, 'score');
    this.c = c;
    const h = c.hiddenSize;
    // A refused weight disposes what was loaded before it.
    try {
      this.loadEmbedding(w, 'transformer.wte.weight');
      this.wpe = this.loadParam(w, 'transformer.wpe.weight');
      this.loadNorm(w, 'transformer.ln_f', true);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `transformer.h.${i}`;
        this.loadNorm(w, `${p}.ln_1`, true);
        this.loadNorm(w, `${p}.ln_2`, true);
        for (const [n] of conv1dModules(c)) this.loadConv1d(w, `${p}.${n}`);
      }

      if (o.task === 'causal-lm') {
        // transformers ties lm_head to wte whenever tie_word_embeddings is set, whatever the file holds.
        if (c.tieWordEmbeddings) this.tieHead('lm_head');
        else {
          this.loadLmHead(w, h, false); // an nn.Linear without bias: [V, H]
        }
      } else this.loadScoreHead(w, h, c.initializerRange, o.normal); // normal(0, initializer_range) if new
    } catch (err) {
      super.dispose();
      throw err;
    }
  }

  /** Final hidden states [B, T, H], after ln_f. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const eps = c.layerNormEps;
    const [b, t] = batch.inputIds.shape;
    this.requireFits(t);
    // Positions 0…T−1 whatever the mask (GPT2Model's default position_ids); right padding leaves real tokens in place:
    // the table's first T rows, broadcast over the batch. Tokens through embeddingLookup (frozen: no gradient, and the
    // tape keeps no copy of the table).
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D; // [N]
    const tokens = tf.reshape(this.embedTokens(ids), [b, t, c.hiddenSize]); // [B, T, H]
    // Packed rows restart their positions at 0 for each example: each token's row of the table.
    const positions = batch.positionIds
      ? tf.reshape(embeddingLookup(this.wpe, tf.reshape(batch.positionIds, [-1]) as tf.Tensor1D), [b, t, c.hiddenSize])
      : tf.slice(this.wpe, [0, 0], [t, c.hiddenSize]);
    const e = tf.add(tokens, positions); // [B, T, H]
    let x = tf.reshape(e, [b * t, c.hiddenSize]) as tf.Tensor2D; // [N, H]
    const bias = attentionBias(batch.attentionMask, true, 1, undefined, batch.segmentIds); // [B, 1, T, T]
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      x = tf.add(x, this.attention(p, i, this.layerNorm(`${p}.ln_1`, x, eps), b, t, bias, a));
      const h2 = this.layerNorm(`${p}.ln_2`, x, eps);
      const inner = activation(c.activation, this.linear(`${p}.mlp.c_fc`, h2, a)); // [N, I]
      x = tf.add(x, this.linear(`${p}.mlp.c_proj`, inner, a));
    }
    return tf.reshape(this.layerNorm('transformer.ln_f', x, eps), [b, t, c.hiddenSize]);
  }

  /** Causal self-attention of block `layer` on h [N, H] → [N, H]. */
  private attention(
    p: string,
    layer: number,
    h: tf.Tensor2D,
    b: number,
    t: number,
    bias: tf.Tensor4D,
    a: Adapters,
  ): tf.Tensor2D {
    const { numHeads: nh, headDim: hd, scaleAttnWeights, scaleByInverseLayerIdx } = this.c;
    // One product for q, k and v (LoRA on c_attn adapts all three), then split along the columns: [N, H] each.
    const [q, k, v] = tf.split(this.linear(`${p}.attn.c_attn`, h, a), 3, 1) as tf.Tensor2D[];
    // [N, H] → [B, nh, T, hd]
    const heads = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [b, t, nh, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const scale = (scaleAttnWeights ? 1 / Math.sqrt(hd) : 1) / (scaleByInverseLayerIdx ? layer + 1 : 1);
    // softmax(q·kᵀ·scale + bias)·v [B, nh, T, hd]
    const out = attention(heads(tf.mul(q, scale)), heads(k), heads(v), bias);
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D;
    return this.linear(`${p}.attn.c_proj`, merged, a);
  }
}
