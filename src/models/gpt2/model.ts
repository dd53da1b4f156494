// The GPT-2 layout: learned positions, pre-LN blocks (LayerNorm → attention → add, LayerNorm → MLP → add), a final
// LayerNorm, Conv1D projections (weights stored [in, out], used as they are), one fused q,k,v projection `c_attn`
// split after the product, gelu_new, a head tied to the token embedding, and GPT2ForSequenceClassification's `score`
// on the last non-padding token. Dropout has inference semantics (none); LoRA dropout still applies via applyLinear.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh heads, hd head dim, I inner, V vocabulary, L labels.
import * as tf from '@tensorflow/tfjs';
import { disposeFrozen, frozenLinear, frozenLinearFromTransposed, type FrozenLinear } from '../../adapters/lora';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import {
  activation,
  applyLinear,
  attention,
  attentionBias,
  decoderLogits,
  decoderLoss,
  embeddingLookup,
  layerNorm,
  requireFits,
} from '../layers';
import { checkWeights } from '../weights';
import type { Adapters, BatchTensors, BuildOptions, HFConfig, Model, Task } from '../types';
import { parseGpt2Config, type Gpt2Config } from './config';
import { conv1dModules, normalizeGpt2Keys, requiredGpt2Weights } from './weights';

interface Norm {
  w: tf.Tensor1D; // [H]
  b: tf.Tensor1D; // [H]
}

export class Gpt2Model implements Model {
  readonly family = 'gpt2';
  readonly modelType: string;
  readonly task: Task;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLabels: number;
  readonly linears = new Map<string, FrozenLinear>();
  readonly head: string | null;
  readonly headCreated: boolean;
  readonly paramCount: number;
  private readonly c: Gpt2Config;
  private readonly wte: tf.Tensor2D | null; // token embedding E [V, H]; null with a tied head: tokens are looked up in its Wᵀ [H, V]
  private readonly wpe: tf.Tensor2D; // position embedding [n_positions, H]
  private readonly norms = new Map<string, Norm>();

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = (this.c = parseGpt2Config(raw, `${o.dir}/config.json`));
    const w = normalizeGpt2Keys(checkpoint);
    checkWeights(w, requiredGpt2Weights(c), o.dir);
    this.modelType = c.modelType;
    this.task = o.task;
    this.vocabSize = c.vocabSize;
    this.maxPositions = c.maxPositions;
    const h = c.hiddenSize;
    const t = (k: string) => tf.tensor(w.get(k)!.data, w.get(k)!.shape, 'float32');
    const norm = (path: string) =>
      this.norms.set(path, { w: t(`${path}.weight`) as tf.Tensor1D, b: t(`${path}.bias`) as tf.Tensor1D });

    const wte = t('transformer.wte.weight') as tf.Tensor2D;
    let tied = false;
    this.wpe = t('transformer.wpe.weight') as tf.Tensor2D;
    norm('transformer.ln_f');
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      norm(`${p}.ln_1`);
      norm(`${p}.ln_2`);
      // Conv1D stores Wᵀ [in, out], the layout FrozenLinear keeps: no transpose at load.
      for (const [n] of conv1dModules(c))
        this.linears.set(
          `${p}.${n}`,
          frozenLinearFromTransposed(t(`${p}.${n}.weight`) as tf.Tensor2D, t(`${p}.${n}.bias`) as tf.Tensor1D),
        );
    }

    let headParams = 0;
    if (o.task === 'causal-lm') {
      this.numLabels = 0;
      this.head = null;
      this.headCreated = false;
      // transformers ties lm_head to wte whenever tie_word_embeddings is set, whatever the file holds.
      if (c.tieWordEmbeddings) {
        this.linears.set('lm_head', frozenLinear(wte, null)); // tied: E is kept once, as the head's Wᵀ (wte is disposed)
        tied = true;
      } else {
        checkWeights(w, new Map([['lm_head.weight', [c.vocabSize, h]]]), o.dir);
        this.linears.set('lm_head', frozenLinear(t('lm_head.weight') as tf.Tensor2D, null)); // an nn.Linear: [V, H]
        headParams = c.vocabSize * h;
      }
    } else {
      this.numLabels = o.numLabels;
      this.head = 'score';
      const stored = w.get('score.weight');
      if (stored && stored.shape[0] !== o.numLabels) {
        throw new LoraPlusError({
          code: 'model/head-mismatch',
          message: `the checkpoint's score head has ${stored.shape[0]} labels but the data has ${o.numLabels}`,
          file: o.dir,
          hint: 'Set data.labels to the labels the head was trained on, or use a base model without a score head.',
        });
      }
      if (stored) checkWeights(w, new Map([['score.weight', [o.numLabels, h]]]), o.dir);
      this.headCreated = !stored;
      // An nn.Linear without bias; a fresh one is normal(0, initializer_range), as transformers initialises it.
      const fresh = () =>
        tf.tensor2d(
          Float32Array.from({ length: o.numLabels * h }, () => o.normal() * c.initializerRange),
          [o.numLabels, h],
        );
      this.linears.set('score', frozenLinear(stored ? (t('score.weight') as tf.Tensor2D) : fresh(), null));
      headParams = o.numLabels * h;
    }

    this.wte = tied ? null : wte;
    let count = headParams + c.vocabSize * h + this.wpe.size;
    for (const n of this.norms.values()) count += n.w.size + n.b.size;
    for (const [path, l] of this.linears)
      if (path !== 'lm_head' && path !== 'score') count += l.wT.size + (l.bias?.size ?? 0);
    this.paramCount = count;
  }

  /** Final hidden states [B, T, H], after ln_f. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    requireFits(t, this.maxPositions, c.modelType);
    // Positions 0…T−1 whatever the mask (GPT2Model's default position_ids); right padding leaves real tokens in place:
    // the table's first T rows, broadcast over the batch. Tokens through embeddingLookup (frozen: no gradient, and the
    // tape keeps no copy of the table).
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D; // [N]
    const tokens = this.wte
      ? embeddingLookup(this.wte, ids)
      : embeddingLookup(this.linears.get('lm_head')!.wT, ids, true); // [N, H]
    const e = tf.add(tf.reshape(tokens, [b, t, c.hiddenSize]), tf.slice(this.wpe, [0, 0], [t, c.hiddenSize])); // [B, T, H]
    let x = tf.reshape(e, [b * t, c.hiddenSize]) as tf.Tensor2D; // [N, H]
    const bias = attentionBias(batch.attentionMask, true); // [B, 1, T, T]: causal, and padded keys get −1e9
    for (let i = 0; i < c.numLayers; i++) {
      const p = `transformer.h.${i}`;
      x = tf.add(x, this.attention(p, i, this.norm(`${p}.ln_1`, x), b, t, bias, a));
      const inner = activation(
        this.c.activation,
        applyLinear(`${p}.mlp.c_fc`, this.norm(`${p}.ln_2`, x), this.linears, a),
      ); // [N, I]
      x = tf.add(x, applyLinear(`${p}.mlp.c_proj`, inner, this.linears, a));
    }
    return tf.reshape(this.norm('transformer.ln_f', x), [b, t, c.hiddenSize]);
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
    const [q, k, v] = tf.split(applyLinear(`${p}.attn.c_attn`, h, this.linears, a), 3, 1) as tf.Tensor2D[];
    const heads = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [b, t, nh, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, nh, T, hd]
    const scale = (scaleAttnWeights ? 1 / Math.sqrt(hd) : 1) / (scaleByInverseLayerIdx ? layer + 1 : 1);
    const out = attention(heads(tf.mul(q, scale)), heads(k), heads(v), bias); // softmax(q·kᵀ·scale + bias)·v [B, nh, T, hd]
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D;
    return applyLinear(`${p}.attn.c_proj`, merged, this.linears, a);
  }

  private norm(path: string, x: tf.Tensor2D): tf.Tensor2D {
    const n = this.norms.get(path)!;
    return layerNorm(x, n.w, n.b, this.c.layerNormEps) as tf.Tensor2D;
  }

  logits(batch: BatchTensors, a: Adapters): tf.Tensor {
    return decoderLogits(this.hidden(batch, a), batch, this.linears, a, this.task);
  }

  loss(batch: BatchTensors, a: Adapters): tf.Scalar {
    return decoderLoss(this.hidden(batch, a), batch, this.linears, a, this.task);
  }

  dispose(): void {
    for (const l of this.linears.values()) disposeFrozen(l); // a tied head's Wᵀ is the only copy of the embedding
    tf.dispose([...(this.wte ? [this.wte] : []), this.wpe]);
    for (const n of this.norms.values()) tf.dispose([n.w, n.b]);
  }
}
