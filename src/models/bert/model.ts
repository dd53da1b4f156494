// The BERT-family encoders (bert, roberta, xlm-roberta, distilbert) with their sequence-classification heads:
// word + position (+ token-type) embeddings and a LayerNorm; post-LN layers (attention → add → LayerNorm, FFN →
// add → LayerNorm); padding masked as keys, no causal mask; the head reads the first token ([CLS] / <s>).
// Dropout has inference semantics (none); LoRA dropout still applies through applyLinear.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh heads, hd head dim, I intermediate, L labels.
import * as tf from '@tensorflow/tfjs';
import { disposeFrozen, frozenLinear, type FrozenLinear } from '../../adapters/lora';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import {
  activation,
  applyLinear,
  attention,
  attentionBias,
  crossEntropy,
  embeddingLookup,
  layerNorm,
  requireFits,
} from '../layers';
import { checkWeights } from '../weights';
import type { Adapters, BatchTensors, BuildOptions, HFConfig, Model, Task } from '../types';
import { parseBertConfig, type BertConfig } from './config';
import {
  headLayout,
  layerNames,
  layerPath,
  normalizeBertKeys,
  requiredBertWeights,
  type HeadLayout,
  type LayerNames,
} from './weights';

interface Norm {
  w: tf.Tensor1D; // [H]
  b: tf.Tensor1D; // [H]
}

export class BertModel implements Model {
  readonly family = 'bert';
  readonly modelType: string;
  readonly task: Task = 'sequence-classification';
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLabels: number;
  readonly linears = new Map<string, FrozenLinear>();
  readonly head = 'classifier'; // PEFT's name; RoBERTa's is a module holding classifier.dense and classifier.out_proj
  readonly headCreated: boolean;
  readonly paramCount: number;
  private readonly c: BertConfig;
  private readonly names: LayerNames;
  private readonly headLinears: HeadLayout;
  private readonly word: tf.Tensor2D; // [V, H]
  private readonly position: tf.Tensor2D; // [max_position_embeddings, H]
  private readonly tokenType: tf.Tensor2D | null; // [type_vocab_size, H]; null for DistilBERT
  private readonly norms = new Map<string, Norm>();

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = (this.c = parseBertConfig(raw, `${o.dir}/config.json`));
    if (o.task !== 'sequence-classification') {
      throw new LoraPlusError({
        code: 'model/unsupported-task',
        yamlPath: 'task',
        message: `${c.modelType} is an encoder with no language-model head, so task '${o.task}' is not supported`,
        hint: 'Use task: sequence-classification with this model (causal-lm needs a decoder, e.g. a llama checkpoint).',
      });
    }
    const w = normalizeBertKeys(checkpoint, c);
    checkWeights(w, requiredBertWeights(c), o.dir);
    this.modelType = c.modelType;
    this.vocabSize = c.vocabSize;
    this.numLabels = o.numLabels;
    // RoBERTa's positions run from pad+1, so its table holds pad+1 fewer usable positions (514 rows → 512 tokens).
    this.maxPositions = c.layout === 'roberta' ? c.positionRows - c.padTokenId - 1 : c.positionRows;
    this.names = layerNames(c.layout);
    const h = c.hiddenSize;
    const t = (k: string) => tf.tensor(w.get(k)!.data, w.get(k)!.shape, 'float32');
    const lin = (path: string) => {
      const bias = w.has(`${path}.bias`) ? (t(`${path}.bias`) as tf.Tensor1D) : null;
      this.linears.set(path, frozenLinear(t(`${path}.weight`) as tf.Tensor2D, bias));
    };
    const norm = (path: string) =>
      this.norms.set(path, { w: t(`${path}.weight`) as tf.Tensor1D, b: t(`${path}.bias`) as tf.Tensor1D });

    const emb = `${c.prefix}.embeddings`;
    this.word = t(`${emb}.word_embeddings.weight`) as tf.Tensor2D;
    this.position = t(`${emb}.position_embeddings.weight`) as tf.Tensor2D;
    this.tokenType = c.typeVocabSize > 0 ? (t(`${emb}.token_type_embeddings.weight`) as tf.Tensor2D) : null;
    norm(`${emb}.LayerNorm`);
    const n = this.names;
    for (let i = 0; i < c.numLayers; i++) {
      const p = layerPath(c, i);
      for (const name of [n.q, n.k, n.v, n.o, n.up, n.down]) lin(`${p}.${name}`);
      for (const name of [n.attnNorm, n.outNorm]) norm(`${p}.${name}`);
    }

    // The head (and BERT's pooler): from the checkpoint when it has them, else created as transformers'
    // _init_weights does (normal(0, initializer_range), zero bias), first then last so a seed gives one head. A BERT
    // checkpoint without a pooler (saved from BertForMaskedLM) gets a fresh one that stays frozen, as with PEFT,
    // whose default modules_to_save (`classifier`) does not cover it.
    const hl = (this.headLinears = headLayout(c));
    const storedLast = w.get(`${hl.last}.weight`);
    if (storedLast && storedLast.shape[0] !== o.numLabels) {
      throw new LoraPlusError({
        code: 'model/head-mismatch',
        message: `the checkpoint's ${hl.last} head has ${storedLast.shape[0]} labels but the data has ${o.numLabels}`,
        file: o.dir,
        hint: 'Set data.labels to the labels the head was trained on, or use a base model without a classification head.',
      });
    }
    let created = false;
    for (const [path, out] of [
      [hl.first, h],
      [hl.last, o.numLabels],
    ] as const) {
      if (w.has(`${path}.weight`)) {
        const shapes = new Map<string, number[]>([[`${path}.weight`, [out, h]]]);
        if (w.has(`${path}.bias`)) shapes.set(`${path}.bias`, [out]);
        checkWeights(w, shapes, o.dir);
        lin(path);
      } else {
        created = true;
        const data = Float32Array.from({ length: out * h }, () => o.normal() * c.initializerRange);
        this.linears.set(path, frozenLinear(tf.tensor2d(data, [out, h]), tf.zeros([out])));
      }
    }
    this.headCreated = created;

    let count = this.word.size + this.position.size + (this.tokenType?.size ?? 0);
    for (const nm of this.norms.values()) count += nm.w.size + nm.b.size;
    for (const l of this.linears.values()) count += l.wT.size + (l.bias?.size ?? 0);
    this.paramCount = count;
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    requireFits(t, this.maxPositions, c.modelType);
    const h = c.hiddenSize;
    const ids = tf.cast(batch.inputIds, 'int32') as tf.Tensor2D;
    // Frozen tables through embeddingLookup: no gradient, and the tape keeps no copy of the (V × H) word table.
    const lookup = (table: tf.Tensor2D, at: tf.Tensor) =>
      tf.reshape(embeddingLookup(table, tf.reshape(at, [-1]) as tf.Tensor1D), [b, t, h]); // [B, T, H]
    let e = tf.add(lookup(this.word, ids), this.positions(ids)); // [B, T, H]
    if (this.tokenType) e = tf.add(e, lookup(this.tokenType, this.typeIds(batch, ids)));
    const emb = `${c.prefix}.embeddings`;
    let x = this.norm(`${emb}.LayerNorm`, tf.reshape(e, [b * t, h]) as tf.Tensor2D); // [N, H]

    const n = this.names;
    const bias = attentionBias(batch.attentionMask, false); // [B, 1, 1, T]: padded keys get −1e9
    for (let i = 0; i < c.numLayers; i++) {
      const p = layerPath(c, i);
      x = this.norm(`${p}.${n.attnNorm}`, tf.add(x, this.attention(p, x, b, t, bias, a)));
      const inner = activation(this.c.hiddenAct, applyLinear(`${p}.${n.up}`, x, this.linears, a)); // [N, I]
      x = this.norm(`${p}.${n.outNorm}`, tf.add(x, applyLinear(`${p}.${n.down}`, inner, this.linears, a)));
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
    const heads = (y: tf.Tensor) => tf.transpose(tf.reshape(y, [b, t, nh, hd]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, nh, T, hd]
    const q = heads(tf.mul(applyLinear(`${p}.${n.q}`, x, this.linears, a), 1 / Math.sqrt(hd))); // scaled first, as DistilBERT does
    const k = heads(applyLinear(`${p}.${n.k}`, x, this.linears, a));
    const v = heads(applyLinear(`${p}.${n.v}`, x, this.linears, a));
    const out = attention(q, k, v, bias); // softmax(q·kᵀ + bias)·v [B, nh, T, hd]
    const merged = tf.reshape(tf.transpose(out, [0, 2, 1, 3]), [b * t, nh * hd]) as tf.Tensor2D;
    return applyLinear(`${p}.${n.o}`, merged, this.linears, a);
  }

  private norm(path: string, x: tf.Tensor2D): tf.Tensor2D {
    const nm = this.norms.get(path)!;
    return layerNorm(x, nm.w, nm.b, this.c.layerNormEps) as tf.Tensor2D;
  }

  /** Sequence-classification logits [B, L] from the first token: first Linear → tanh/ReLU → last Linear. */
  logits(batch: BatchTensors, a: Adapters): tf.Tensor {
    const hidden = this.hidden(batch, a);
    const [b, , h] = hidden.shape;
    const cls = tf.reshape(tf.slice(hidden, [0, 0, 0], [b, 1, h]), [b, h]) as tf.Tensor2D; // [B, H]
    const { first, act, last } = this.headLinears;
    const y = applyLinear(first, cls, this.linears, a);
    return applyLinear(last, (act === 'tanh' ? tf.tanh(y) : tf.relu(y)) as tf.Tensor2D, this.linears, a);
  }

  loss(batch: BatchTensors, a: Adapters): tf.Scalar {
    if (!batch.labels) throw new Error('internal: classification batch without labels');
    const logits = this.logits(batch, a) as tf.Tensor2D;
    return crossEntropy(logits, batch.labels, tf.onesLike(batch.labels).asType('float32') as tf.Tensor1D);
  }

  dispose(): void {
    for (const l of this.linears.values()) disposeFrozen(l);
    tf.dispose([this.word, this.position, ...(this.tokenType ? [this.tokenType] : [])]);
    for (const nm of this.norms.values()) tf.dispose([nm.w, nm.b]);
  }
}
