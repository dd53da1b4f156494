// The Llama layout (llama, mistral, qwen2, smollm): RoPE, RMSNorm, SiLU-gated MLP, grouped-query attention, optional
// biases (present when the checkpoint has them), tied or untied LM head, and LlamaForSequenceClassification's `score`.
// Shapes: B batch, T sequence, N = B·T tokens, H hidden, nh/nkv query/key-value heads, hd head dim, V vocabulary.
import * as tf from '@tensorflow/tfjs';
import { disposeFrozen, frozenLinear, type FrozenLinear } from '../../adapters/lora';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import {
  applyLinear,
  attentionBias,
  decoderLogits,
  decoderLoss,
  embeddingLookup,
  halfRotation,
  rmsNorm,
  type HalfRotation,
} from '../layers';
import { disposeRope, groupedAttention, ropeTables, type RopeTables } from './attention';
import type { Adapters, BatchTensors, BuildOptions, HFConfig, Model, Task } from '../types';
import { parseLlamaConfig, type LlamaConfig } from './config';
import { checkWeights } from '../weights';
import { normalizeLlamaKeys, requiredLlamaWeights } from './weights';

export class LlamaModel implements Model {
  readonly family = 'llama';
  readonly modelType: string;
  readonly task: Task;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLabels: number;
  readonly linears = new Map<string, FrozenLinear>();
  readonly head: string | null;
  readonly headCreated: boolean;
  readonly paramCount: number;
  private readonly c: LlamaConfig;
  private readonly embed: tf.Tensor2D | null; // E [V, H]; null with a tied head: tokens are looked up in its Wᵀ [H, V]
  private readonly norms = new Map<string, tf.Tensor1D>(); // RMSNorm weights [H]
  private readonly rope = new Map<number, RopeTables>(); // by T
  private readonly rot: HalfRotation; // rotate_half as x·R

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = (this.c = parseLlamaConfig(raw, `${o.dir}/config.json`));
    const w = normalizeLlamaKeys(checkpoint);
    checkWeights(w, requiredLlamaWeights(c), o.dir);
    this.modelType = c.modelType;
    this.task = o.task;
    this.vocabSize = c.vocabSize;
    this.maxPositions = c.maxPositions;
    const t = (k: string) => tf.tensor(w.get(k)!.data, w.get(k)!.shape, 'float32');
    const lin = (path: string) => {
      const bias = w.has(`${path}.bias`) ? (t(`${path}.bias`) as tf.Tensor1D) : null;
      this.linears.set(path, frozenLinear(t(`${path}.weight`) as tf.Tensor2D, bias));
    };

    const embed = t('model.embed_tokens.weight') as tf.Tensor2D;
    let tied = false;
    this.norms.set('model.norm', t('model.norm.weight') as tf.Tensor1D);
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      for (const n of ['input_layernorm', 'post_attention_layernorm'])
        this.norms.set(`${p}.${n}`, t(`${p}.${n}.weight`) as tf.Tensor1D);
      for (const n of ['q_proj', 'k_proj', 'v_proj', 'o_proj']) lin(`${p}.self_attn.${n}`);
      for (const n of ['gate_proj', 'up_proj', 'down_proj']) lin(`${p}.mlp.${n}`);
    }

    let headParams = 0;
    if (o.task === 'causal-lm') {
      this.numLabels = 0;
      this.head = null;
      this.headCreated = false;
      if (w.has('lm_head.weight')) {
        lin('lm_head');
        headParams = c.vocabSize * c.hiddenSize;
      } else if (c.tieWordEmbeddings) {
        this.linears.set('lm_head', frozenLinear(embed, null)); // tied: E is kept once, as the head's Wᵀ
        tied = true;
      } else {
        throw new LoraPlusError({
          code: 'model/missing-weights',
          message: 'the checkpoint has no lm_head.weight and tie_word_embeddings is false',
          file: o.dir,
          hint: 'Set tie_word_embeddings: true in config.json if the head is tied to the embeddings.',
        });
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
      this.headCreated = !stored;
      // A fresh head: normal(0, initializer_range), as transformers initialises it.
      const fresh = () =>
        tf.tensor2d(
          Float32Array.from({ length: o.numLabels * c.hiddenSize }, () => o.normal() * c.initializerRange),
          [o.numLabels, c.hiddenSize],
        );
      this.linears.set('score', frozenLinear(stored ? (t('score.weight') as tf.Tensor2D) : fresh(), null));
      headParams = o.numLabels * c.hiddenSize;
    }

    this.embed = tied ? null : embed;
    let count = headParams + c.vocabSize * c.hiddenSize;
    for (const n of this.norms.values()) count += n.size;
    for (const [path, l] of this.linears)
      if (path !== 'lm_head' && path !== 'score') count += l.wT.size + (l.bias?.size ?? 0);
    this.paramCount = count;
    this.rot = halfRotation(c.headDim);
  }

  /** Final hidden states [B, T, H]. */
  hidden(batch: BatchTensors, a: Adapters): tf.Tensor3D {
    const c = this.c;
    const [b, t] = batch.inputIds.shape;
    const rope = this.ropeTables(t);
    // The mask for the grouped queries of groupedAttention (rows rep·T: query head j·rep+r at position i is r·T+i).
    const rep = c.numHeads / c.numKvHeads;
    const bias = attentionBias(batch.attentionMask, true, rep); // [B, 1, rep·T, T]
    const ids = tf.reshape(tf.cast(batch.inputIds, 'int32'), [-1]) as tf.Tensor1D;
    let x = this.embed ? embeddingLookup(this.embed, ids) : embeddingLookup(this.linears.get('lm_head')!.wT, ids, true); // [N, H]
    for (let i = 0; i < c.numLayers; i++) {
      const p = `model.layers.${i}`;
      const h = rmsNorm(x, this.norms.get(`${p}.input_layernorm`)!, c.rmsNormEps) as tf.Tensor2D;
      x = tf.add(x, this.selfAttention(p, h, b, t, rope, bias, a));
      const h2 = rmsNorm(x, this.norms.get(`${p}.post_attention_layernorm`)!, c.rmsNormEps) as tf.Tensor2D;
      const gate = applyLinear(`${p}.mlp.gate_proj`, h2, this.linears, a); // [N, I]
      const act = tf.mul(
        tf.mul(gate, tf.sigmoid(gate)),
        applyLinear(`${p}.mlp.up_proj`, h2, this.linears, a),
      ) as tf.Tensor2D; // silu(gate)·up
      x = tf.add(x, applyLinear(`${p}.mlp.down_proj`, act, this.linears, a));
    }
    return tf.reshape(rmsNorm(x, this.norms.get('model.norm')!, c.rmsNormEps), [b, t, c.hiddenSize]);
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
    const proj = (n: string) => applyLinear(`${p}.self_attn.${n}`, h, this.linears, a); // [N, n·hd]
    const merged = groupedAttention(
      proj('q_proj'),
      proj('k_proj'),
      proj('v_proj'),
      { b, t, nh, nkv, hd },
      rope,
      this.rot,
      bias,
    ); // [N, nh·hd]
    return applyLinear(`${p}.self_attn.o_proj`, merged, this.linears, a);
  }

  /** RoPE tables, cached per sequence length T. */
  private ropeTables(t: number): RopeTables {
    let r = this.rope.get(t);
    if (!r) {
      const { numHeads: nh, numKvHeads: nkv, headDim: hd, ropeTheta } = this.c;
      r = ropeTables({ t, nh, nkv, hd }, ropeTheta);
      this.rope.set(t, r);
    }
    return r;
  }

  logits(batch: BatchTensors, a: Adapters): tf.Tensor {
    return decoderLogits(this.hidden(batch, a), batch, this.linears, a, this.task);
  }

  loss(batch: BatchTensors, a: Adapters): tf.Scalar {
    return decoderLoss(this.hidden(batch, a), batch, this.linears, a, this.task);
  }

  dispose(): void {
    for (const l of this.linears.values()) disposeFrozen(l);
    tf.dispose([...(this.embed ? [this.embed] : []), ...this.norms.values(), this.rot.r, this.rot.rT]);
    for (const r of this.rope.values()) disposeRope(r);
  }
}
