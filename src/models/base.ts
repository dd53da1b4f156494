// What the model families share, as transformers.js's PreTrainedModel holds it for its models: the Model fields, the
// loading of checkpoint weights into tensors this object owns (each counted once in paramCount and disposed by
// dispose), the task heads' dispatch and the loss. A family parses its config, loads its weights with the load*
// helpers and writes hidden(); a family whose classifier is not `score` on the last token overrides classify().
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, V vocabulary, L labels.
import * as tf from '@tensorflow/tfjs';
import { disposeFrozen, frozenLinear, frozenLinearFromTransposed, type FrozenLinear } from '../adapters/lora';
import { releaseHostData } from '../adapters/safetensors';
import { LoraPlusError } from '../protocol/errors';
import {
  applyLinear,
  crossEntropy,
  embeddingLookup,
  lastTokenHidden,
  layerNorm as layerNormOf,
  rmsNorm as rmsNormOf,
} from './layers';
import type { Adapters, BatchTensors, BuildOptions, Model, Task } from './types';
import type { Weights } from './weights';

/** What the base needs of a family's parsed config. */
export interface ModelDims {
  modelType: string; // config.json model_type
  vocabSize: number;
  maxPositions: number;
}

/** A norm's weight and, for a LayerNorm, its bias [H]. */
interface Norm {
  w: tf.Tensor1D;
  b: tf.Tensor1D | null;
}

export abstract class BaseModel implements Model {
  abstract readonly family: string;
  readonly modelType: string;
  readonly task: Task;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLabels: number;
  readonly linears = new Map<string, FrozenLinear>();
  readonly head: string | null;
  private created = false;
  private embed: tf.Tensor2D | null = null; // token embedding E [V, H]; null once a head is tied to it
  private tied: string | null = null; // the head whose Wᵀ [H, V] holds E
  private readonly norms = new Map<string, Norm>();
  private readonly params: tf.Tensor[] = []; // the other parameters (position tables, ...)

  /** `classifier`: the module path of the sequence-classification head (PEFT's modules_to_save name). */
  protected constructor(dims: ModelDims, o: BuildOptions, classifier: string) {
    this.modelType = dims.modelType;
    this.task = o.task;
    this.vocabSize = dims.vocabSize;
    this.maxPositions = dims.maxPositions;
    this.numLabels = o.task === 'causal-lm' ? 0 : o.numLabels;
    this.head = o.task === 'causal-lm' ? null : classifier;
  }

  get headCreated(): boolean {
    return this.created;
  }

  /** Every tensor this model owns: a tied head's weight is E's only copy, so it is counted once. */
  get paramCount(): number {
    let count = (this.embed?.size ?? 0) + this.params.reduce((s, p) => s + p.size, 0);
    for (const n of this.norms.values()) count += n.w.size + (n.b?.size ?? 0);
    for (const l of this.linears.values()) count += l.wT.size + (l.bias?.size ?? 0);
    return count;
  }

  // Loading. Each helper makes tensors of this object's own (a HostTensor becomes a tf tensor once).

  /** Tensors of `keys`; the host copies of a buildModel checkpoint are dropped at once (releaseHostData), so the host
   *  holds less of the model as the backend holds more, instead of both holding all of it until the build ends. */
  private upload(w: Weights, keys: string[]): tf.Tensor[] {
    const tensors = w.tensors(keys);
    for (const k of keys) releaseHostData(w.get(k));
    return tensors;
  }

  /** A parameter the family keeps in a field of its own (e.g. a position table), disposed with the model. */
  protected loadParam<T extends tf.Tensor>(w: Weights, key: string): T {
    const [p] = this.upload(w, [key]) as [T];
    this.params.push(p);
    return p;
  }

  /** The token embedding E [V, H], looked up by embedTokens. */
  protected loadEmbedding(w: Weights, key: string): void {
    [this.embed] = this.upload(w, [key]) as [tf.Tensor2D];
  }

  /** Norm `path`: its weight, and its bias for a LayerNorm. */
  protected loadNorm(w: Weights, path: string, bias: boolean): void {
    const [nw, b] = this.upload(w, [`${path}.weight`, ...(bias ? [`${path}.bias`] : [])]) as tf.Tensor1D[];
    this.norms.set(path, { w: nw, b: b ?? null });
  }

  /** nn.Linear `path`, W [out, in] (+ bias [out], by default when the checkpoint has it). */
  protected loadLinear(w: Weights, path: string, bias = w.has(`${path}.bias`)): void {
    const out = w.get(`${path}.weight`)?.shape[0];
    if (bias && out !== undefined) w.check(new Map([[`${path}.bias`, [out]]])); // an optional bias is checked here
    const [lw, b] = this.upload(w, [`${path}.weight`, ...(bias ? [`${path}.bias`] : [])]);
    this.linears.set(path, frozenLinear(lw as tf.Tensor2D, (b as tf.Tensor1D) ?? null));
  }

  /** transformers' Conv1D `path` (GPT-2): Wᵀ [in, out] + bias [out], the layout FrozenLinear keeps, no transpose. */
  protected loadConv1d(w: Weights, path: string): void {
    const [wT, b] = this.upload(w, [`${path}.weight`, `${path}.bias`]);
    this.linears.set(path, frozenLinearFromTransposed(wT as tf.Tensor2D, b as tf.Tensor1D));
  }

  /** An untied `lm_head` [V, H] (+ bias [V]), checked here: a wrong shape would otherwise fail inside matMul. */
  protected loadLmHead(w: Weights, hidden: number, bias = w.has('lm_head.bias')): void {
    const shapes = new Map<string, number[]>([['lm_head.weight', [this.vocabSize, hidden]]]);
    if (bias) shapes.set('lm_head.bias', [this.vocabSize]);
    w.check(shapes);
    this.loadLinear(w, 'lm_head', bias);
  }

  /** Head `path` tied to the embedding (W = E): E is kept once, as the head's Wᵀ, and tokens are looked up there. */
  protected tieHead(path: string): void {
    if (!this.embed) throw new Error('internal: no embedding to tie the head to');
    this.linears.set(path, frozenLinear(this.embed, null)); // takes E over (transposed, and E disposed)
    this.embed = null;
    this.tied = path;
  }

  /** The decoders' `score` [L, H], without bias (LlamaForSequenceClassification, GPT2ForSequenceClassification). */
  protected loadScoreHead(w: Weights, hidden: number, std: number, normal: () => number): void {
    this.checkLabels(w, 'score', 'score');
    this.loadHeadLinear(w, 'score', [this.numLabels, hidden], std, normal, false);
  }

  /** The checkpoint's head Linear `path` [L, in] must have as many labels as the data. */
  protected checkLabels(w: Weights, path: string, noun: string): void {
    const stored = w.get(`${path}.weight`);
    if (stored && stored.shape[0] !== this.numLabels) {
      throw new LoraPlusError({
        code: 'model/head-mismatch',
        message: `the checkpoint's ${path} head has ${stored.shape[0]} labels but the data has ${this.numLabels}`,
        file: w.dir,
        hint: `Set data.labels to the labels the head was trained on, or use a base model without a ${noun} head.`,
      });
    }
  }

  /**
   * A Linear of the classification head, W [out, in]: from the checkpoint when it has it (shape-checked), else created
   * as transformers' _init_weights does, normal(0, std) and a zero bias when the module has one (headCreated).
   */
  protected loadHeadLinear(
    w: Weights,
    path: string,
    [out, inp]: [number, number],
    std: number,
    normal: () => number,
    bias: boolean,
  ): void {
    if (w.has(`${path}.weight`)) {
      const withBias = bias && w.has(`${path}.bias`);
      const shapes = new Map<string, number[]>([[`${path}.weight`, [out, inp]]]);
      if (withBias) shapes.set(`${path}.bias`, [out]);
      w.check(shapes);
      this.loadLinear(w, path, withBias);
      return;
    }
    this.created = true;
    const data = Float32Array.from({ length: out * inp }, () => normal() * std);
    this.linears.set(path, frozenLinear(tf.tensor2d(data, [out, inp]), bias ? tf.zeros([out]) : null));
  }

  // The forward pass's pieces (called inside the caller's tf.tidy).

  /** Final hidden states [B, T, H]. */
  abstract hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D;

  /** Module `path` on x [N, in] → [N, out]: frozen (+ LoRA), or fully trained when in modules_to_save. */
  protected linear(path: string, x: tf.Tensor2D, a: Adapters): tf.Tensor2D {
    return applyLinear(path, x, this.linears, a);
  }

  /** Rows of E for ids [N] → [N, H]; from a tied head's Wᵀ when E lives there. */
  protected embedTokens(ids: tf.Tensor1D): tf.Tensor2D {
    if (this.embed) return embeddingLookup(this.embed, ids);
    return embeddingLookup(this.linears.get(this.tied!)!.wT, ids, true);
  }

  /** LayerNorm `path` over the last axis. */
  protected layerNorm<T extends tf.Tensor>(path: string, x: T, eps: number): T {
    const n = this.norms.get(path)!;
    if (!n.b) throw new Error(`internal: ${path} is not a LayerNorm`);
    return layerNormOf(x, n.w, n.b, eps) as T;
  }

  /** RMSNorm `path` over the last axis. */
  protected rmsNorm<T extends tf.Tensor>(path: string, x: T, eps: number): T {
    return rmsNormOf(x, this.norms.get(path)!.w, eps) as T;
  }

  /** Learned position embeddings end at maxPositions: a longer batch is the config's max_length, said so. */
  protected requireFits(t: number): void {
    if (t <= this.maxPositions) return;
    throw new LoraPlusError({
      code: 'model/sequence-too-long',
      message: `a batch is ${t} tokens long but ${this.modelType} has position embeddings for ${this.maxPositions}`,
      yamlPath: 'data.max_length',
      hint: `Set data.max_length to ${this.maxPositions} or less.`,
    });
  }

  /** Sequence-classification logits [B, L] from the final hidden states: `score` on each row's last real token. */
  protected classify(hidden: tf.Tensor3D, batch: BatchTensors, a: Adapters): tf.Tensor2D {
    return this.linear(this.head!, lastTokenHidden(hidden, batch.attentionMask), a);
  }

  /** causal-lm: the LM head's logits [B, T, V]; sequence-classification: classify's [B, L]. */
  logits(batch: BatchTensors, a: Adapters): tf.Tensor {
    const hidden = this.hidden(batch, a);
    if (this.task === 'sequence-classification') return this.classify(hidden, batch, a);
    const [b, t, hs] = hidden.shape;
    const logits = this.linear('lm_head', tf.reshape(hidden, [b * t, hs]) as tf.Tensor2D, a); // [N, V]
    return tf.reshape(logits, [b, t, logits.shape[1]]);
  }

  /** Mean cross-entropy: over the batch's labels, or next-token over non-padding positions. */
  loss(batch: BatchTensors, a: Adapters): tf.Scalar {
    if (this.task === 'sequence-classification') {
      if (!batch.labels) throw new Error('internal: classification batch without labels');
      const logits = this.logits(batch, a) as tf.Tensor2D;
      return crossEntropy(logits, batch.labels, tf.onesLike(batch.labels).asType('float32') as tf.Tensor1D);
    }
    // Positions 0…T−2 predict tokens 1…T−1; padding labels are not counted.
    const hidden = this.hidden(batch, a);
    const [b, t, hs] = hidden.shape;
    const h = tf.reshape(tf.slice(hidden, [0, 0, 0], [b, t - 1, hs]), [b * (t - 1), hs]) as tf.Tensor2D;
    const logits = this.linear('lm_head', h, a); // [N', V]
    const labels = tf.reshape(tf.slice(batch.inputIds, [0, 1], [b, t - 1]), [-1]) as tf.Tensor1D;
    // The targets: sft's loss mask (the answers), else every real token.
    const targets = batch.lossMask ?? batch.attentionMask;
    const weights = tf.reshape(tf.cast(tf.slice(targets, [0, 1], [b, t - 1]), 'float32'), [-1]) as tf.Tensor1D;
    return crossEntropy(logits, labels, weights, batch.lossCount);
  }

  /**
   * Disposes every tensor loaded through this class; a family disposes its own buffers (caches) after super's. A
   * family constructor that fails calls it too (as super.dispose()), so a refused checkpoint leaves no tensors.
   */
  dispose(): void {
    for (const l of this.linears.values()) disposeFrozen(l);
    tf.dispose([...(this.embed ? [this.embed] : []), ...this.params]);
    for (const n of this.norms.values()) tf.dispose([n.w, ...(n.b ? [n.b] : [])]);
  }
}
