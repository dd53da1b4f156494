// The weights a Qwen3 checkpoint must have: Llama's, plus each layer's q_norm and k_norm [head_dim], and the
// attention biases when attention_bias is set.
import { requiredLlamaWeights } from '../llama/weights';
import type { Qwen3Config } from './config';

export function requiredQwen3Weights(c: Qwen3Config): Map<string, number[]> {
  const req = requiredLlamaWeights(c);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}.self_attn`;
    req.set(`${p}.q_norm.weight`, [c.headDim]);
    req.set(`${p}.k_norm.weight`, [c.headDim]);
    if (!c.attentionBias) continue;
    req.set(`${p}.q_proj.bias`, [q]);
    req.set(`${p}.k_proj.bias`, [kv]);
    req.set(`${p}.v_proj.bias`, [kv]);
    req.set(`${p}.o_proj.bias`, [c.hiddenSize]);
  }
  return req;
}

/** Attention biases a checkpoint may carry although attention_bias is false: transformers leaves them unused. */
export const UNUSED_BIAS = /\.self_attn\.[qkvo]_proj\.bias$/;
