// Qwen3: the Llama layout (llama/model.ts) with an RMSNorm over each query and key head (self_attn.q_norm, k_norm,
// weights [hd]) between the projection and RoPE, an explicit head_dim, and q/k/v/o biases only with attention_bias.
// Shapes: N = B·T tokens, nh/nkv query/key-value heads, hd head dim.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import { normalizeKeys } from '../layouts';
import { LlamaModel } from '../llama/model';
import type { Adapters, BuildOptions, HFConfig } from '../types';
import { Weights } from '../weights';
import { parseQwen3Config, withQwen3Defaults, type Qwen3Config } from './config';
import { requiredQwen3Weights, UNUSED_BIAS } from './weights';

export class Qwen3Model extends LlamaModel {
  override readonly family: string = 'qwen3';
  private readonly q3: Qwen3Config;

  constructor(raw: HFConfig, checkpoint: Map<string, HostTensor>, o: BuildOptions) {
    const c = parseQwen3Config(raw, `${o.dir}/config.json`);
    let keyed = normalizeKeys('qwen3', checkpoint, raw, o.dir);
    // Without attention_bias transformers builds the projections bias-free and ignores stored biases: so do we.
    if (!c.attentionBias) keyed = new Map([...keyed].filter(([k]) => !UNUSED_BIAS.test(k)));
    const w = new Weights(keyed, o.dir);
    w.check(requiredQwen3Weights(c)); // everything checked before any tensor is made
    super(withQwen3Defaults(raw), keyed, o);
    this.q3 = c;
    try {
      for (let i = 0; i < c.numLayers; i++) {
        for (const n of ['q_norm', 'k_norm']) this.loadNorm(w, `model.layers.${i}.self_attn.${n}`, false);
      }
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** q_proj and k_proj, each head RMS-normalized over its hd dims as [N·n, hd] rows: reshapes, no transpose. */
  protected override queryKey(p: string, h: tf.Tensor2D, a: Adapters): [tf.Tensor2D, tf.Tensor2D] {
    const [q, k] = super.queryKey(p, h, a);
    const { numHeads: nh, numKvHeads: nkv } = this.q3;
    return [this.headNorm(`${p}.self_attn.q_norm`, q, nh), this.headNorm(`${p}.self_attn.k_norm`, k, nkv)];
  }

  private headNorm(path: string, x: tf.Tensor2D, heads: number): tf.Tensor2D {
    const [n, width] = x.shape;
    const rows = tf.reshape(x, [n * heads, width / heads]);
    return tf.reshape(this.rmsNorm(path, rows, this.q3.rmsNormEps), [n, width]);
  }
}
