// The weights a Gemma 3 checkpoint must have, under the module paths layout.ts gives (the text model at `model.` or
// `model.language_model.`). Tied checkpoints have no `lm_head.weight`.
import type { Gemma3Config } from './config';

/** The four norms around each layer's attention and MLP (the "sandwich"), all RMSNorm with (1 + w). */
export const LAYER_NORMS = [
  'input_layernorm',
  'post_attention_layernorm',
  'pre_feedforward_layernorm',
  'post_feedforward_layernorm',
] as const;

/** Projection biases transformers never builds without attention_bias (and so ignores when stored). */
export const UNUSED_BIAS = /\.self_attn\.[qkvo]_proj\.bias$/;

export function requiredGemma3Weights(c: Gemma3Config): Map<string, number[]> {
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const req = new Map<string, number[]>([
    [`${c.prefix}.embed_tokens.weight`, [c.vocabSize, h]],
    [`${c.prefix}.norm.weight`, [h]],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `${c.prefix}.layers.${i}`;
    for (const n of LAYER_NORMS) req.set(`${p}.${n}.weight`, [h]);
    req.set(`${p}.self_attn.q_norm.weight`, [c.headDim]);
    req.set(`${p}.self_attn.k_norm.weight`, [c.headDim]);
    req.set(`${p}.self_attn.q_proj.weight`, [q, h]);
    req.set(`${p}.self_attn.k_proj.weight`, [kv, h]);
    req.set(`${p}.self_attn.v_proj.weight`, [kv, h]);
    req.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    req.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, h]);
    req.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, h]);
    req.set(`${p}.mlp.down_proj.weight`, [h, c.intermediateSize]);
    if (c.attentionBias) {
      for (const [n, size] of [
        ['q_proj', q],
        ['k_proj', kv],
        ['v_proj', kv],
        ['o_proj', h],
      ] as const)
        req.set(`${p}.self_attn.${n}.bias`, [size]);
    }
  }
  return req;
}
