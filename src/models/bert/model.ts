// The BERT-family encoders (bert, roberta, xlm-roberta, distilbert) with their sequence-classification heads:
// word + position (+ token-type) embeddings and a LayerNorm; post-LN layers (attention → add → LayerNorm, FFN →
// add → LayerNorm); padding masked as keys, no causal mask; the head reads the first token ([CLS] / <s>).
// Dropout has inference semantics (none); LoRA dropout still applies through linear().
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh heads, hd head dim, I intermediate, L labels.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import { BaseModel } from '../base';
import { activation, attention, attentionBias, embeddingLookup } from '../layers';
import { Weights } from '../weights';
import type { Adapters, BatchTensors, BuildOptions, HFConfig } from '../types';
import { parseBertConfig, type BertConfig } from './config';
import { headLayout, layerNames, layerPath, requiredBertWeights, type HeadLayout, type LayerNames } from './weights';
import { normalizeKeys } from '../layouts';

export class BertModel extends BaseModel {
  readonly family = 'bert';
  private readonly c: BertConfig;
  private readonly names: LayerNames;
  private readonly headLinears: HeadLayout;
  private readonly position: tf.Tensor2D; // [max_position_embeddings, H]
  private readonly tokenType: tf.Tensor2D | null; // [type_vocab_size, H]; null for DistilBERT

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parseBertConfig(raw, `${o.dir}/config.json`);
    if (o.task !== 'sequence-classification') {
      throw new LoraPlusError({
        code: 'model/unsupported-task',
        yamlPath: 'task',
        message: `${c.modelType} is an encoder with no language-model head, so task '${o.task}' is not supported`,
        hint: 'Use task: sequence-classification with this model (causal-lm needs a decoder, e.g. a llama checkpoint).',
      });
    }
    const w = new Weights(normalizeKeys('bert', checkpoint, raw, o.dir), o.dir);
    w.check(requiredBertWeights(c));
    // RoBERTa's positions run from pad+1, so its table holds pad+1 fewer usable positions (514 rows → 512 tokens).
    const maxPositions = c.layout === 'roberta' ? c.positionRows - c.padTokenId - 1 : c.positionRows;
    // `classifier` is PEFT's name; RoBERTa's is a module holding classifier.dense and classifier.out_proj.
    super({ modelType: c.modelType, vocabSize: c.vocabSize, maxPositions }, o, 'classifier');
    this.c = c;
    const n = (this.names = layerNames(c.layout));
    const h = c.hiddenSize;
    // A refused weight disposes what was loaded before it.
    try {
      const emb = `${c.prefix}.embeddings`;
      this.loadEmbedding(w, `${emb}.word_embeddings.weight`);
      this.position = this.loadParam(w, `${emb}.position_embeddings.weight`);
      this.tokenType =
        c.typeVocabSize > 0 ? this.loadParam<tf.Tensor2D>(w, `${emb}.token_type_embeddings.weight`) : null;
      this.loadNorm(w, `${emb}.LayerNorm`, true);
      for (let i = 0; i < c.numLayers; i++) {
        const p = layerPath(c, i);
        for (const name of [n.q, n.k, n.v, n.o, n.up, n.down]) this.loadLinear(w, `${p}.${name}`);
        for (const name of [n.attnNorm, n.outNorm]) this.loadNorm(w, `${p}.${name}`, true);
      }

      // The head (and BERT's pooler): from the checkpoint when it has them, else created as transformers'
      // _init_weights does (normal(0, initializer_range), zero bias), first then last so a seed gives one head. A BERT
      // checkpoint without a pooler (saved from BertForMaskedLM) gets a fresh one that stays frozen, as with PEFT,
      // whose default modules_to_save (`classifier`) does not cover it.
      const hl = (this.headLinears = headLayout(c));
      this.checkLabels(w, hl.last, 'classification');
      this.loadHeadLinear(w, hl.first, [h, h], c.initializerRange, o.normal, true);
      this.loadHeadLinear(w, hl.last, [o.numLabels, h], c.initializerRange, o.normal, true);
    } catch (err) {
      super.dispose();
      throw err;
    }
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    this.requireFits(t);
    const h = c.hiddenSize;
    const ids = tf.cast(batch.inputIds, 'int32') as tf.Tensor2D;
    // Frozen tables through embeddingLookup: no gradient, and the tape keeps no copy of the (V × H) word table.
    const flat = (at: tf.Tensor2D) => tf.reshape(at, [-1]) as tf.Tensor1D;
    const rows = (y: tf.Tensor2D) => tf.reshape(y, [b, t, h]); // [N, H] → [B, T, H]
    let e = tf.add(rows(this.embedTokens(flat(ids))), this.positions(ids)); // [B, T, H]
    if (this.tokenType) e = tf.add(e, rows(embeddingLookup(this.tokenType, flat(this.typeIds(batch, ids)))));
    const emb = `${c.prefix}.embeddings`;
    const eps = c.layerNormEps;
    let x = this.layerNorm(`${emb}.LayerNorm`, tf.reshape(e, [b * t, h]) as tf.Tensor2D, eps); // [N, H]

    const n = this.names;
    const bias = attentionBias(batch.attentionMask, false); // [B, 1, 1, T]: padded keys get −1e9
    for (let i = 0; i < c.numLayers; i++) {
      const p = layerPath(c, i);
      x = this.layerNorm(`${p}.${n.attnNorm}`, tf.add(x, this.attention(p, x, b, t, bias, a)), eps);
      const inner = activation(c.hiddenAct, this.linear(`${p}.${n.up}`, x, a)); // [N, I]
      x = this.layerNorm(`${p}.${n.outNorm}`, tf.add(x, this.linear(`${p}.${n.down}`, inner, a)), eps);
    }
    return tf.reshape(x, [b, t, c.hiddenSize]);
  }

  /**
   * Position embeddings. BERT and DistilBERT: positions 0…T−1, the table's first T rows [T, H] (broadcast over the
   * batch). RoBERTa (transformers' create_position_ids_from_input_ids): pad+1, pad+2, … over the tokens that are not
   * padding, pad on padding, looked up [B, T, H]; "padding" there means input_ids == pad_token_id, whatever the
   * attention mask says.
   */
  private positions(ids: tf.Tensor2D): tf.Tensor {
    const [b, t] = ids.shape;
    const h = this.c.hiddenSize;
    if (this.c.layout !== 'roberta') return tf.slice(this.position, [0, 0], [t, h]);
    const pad = this.c.padTokenId;
    const real = tf.cast(tf.notEqual(ids, pad), 'int32'); // [B, T]
    const at = tf.add(tf.mul(tf.cumsum(real, 1), real), tf.scalar(pad, 'int32')); // [B, T]
    return tf.reshape(embeddingLookup(this.position, tf.reshape(at, [-1]) as tf.Tensor1D), [b, t, h]);
  }

  /** Token-type ids [B, T]; zeros when the batch has none or the model has a single type (RoBERTa ignores them). */
  private typeIds(batch: BatchTensors, ids: tf.Tensor2D): tf.Tensor2D {
    return batch.typeIds && this.c.typeVocabSize > 1
      ? (tf.cast(batch.typeIds, 'int32') as tf.Tensor2D)
      : tf.zerosLike(ids);
  }

  private attention(p: string, x: tf.Tensor2D, b: number, t: number, bias: tf.Tensor4D, a: Adapters): tf.Tensor2D {
    const { numHeads: nh, headDim: hd } = this.c;
    const n = this.names;
    // [N, H] → [B, nh, T, hd]
    const heads = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [b, t, nh, hd]), [0, 2, 1, 3]) as tf.Tensor4D;
    const q = heads(tf.mul(this.linear(`${p}.${n.q}`, x, a), 1 / Math.sqrt(hd))); // scaled first, as DistilBERT does
    const k = heads(this.linear(`${p}.${n.k}`, x, a));
    const v = heads(this.linear(`${p}.${n.v}`, x, a));
    const out = attention(q, k, v, bias); // softmax(q·kᵀ + bias)·v [B, nh, T, hd]
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D;
    return this.linear(`${p}.${n.o}`, merged, a);
  }

  /** Sequence-classification logits [B, L] from the first token: first Linear → tanh/ReLU → last Linear. */
  protected override classify(hidden: tf.Tensor3D, _batch: BatchTensors, a: Adapters): tf.Tensor2D {
    const [b, , h] = hidden.shape;
    const cls = tf.reshape(tf.slice(hidden, [0, 0, 0], [b, 1, h]), [b, h]) as tf.Tensor2D; // [B, H]
    const { first, act, last } = this.headLinears;
    const y = this.linear(first, cls, a);
    return this.linear(last, (act === 'tanh' ? tf.tanh(y) : tf.relu(y)) as tf.Tensor2D, a);
  }
}
