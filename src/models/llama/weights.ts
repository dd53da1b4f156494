// The weights a Llama checkpoint must have, under the module paths of LlamaForCausalLM (layout.ts renames the
// file's keys). Tied checkpoints have no `lm_head.weight`.
import type { LlamaConfig } from './config';

/** The weights every Llama checkpoint must have, with their shapes. */
export function requiredLlamaWeights(c: LlamaConfig): Map<string, number[]> {
  const h = c.hiddenSize;
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const req = new Map<string, number[]>([
    ['model.embed_tokens.weight', [c.vocabSize, h]],
    ['model.norm.weight', [h]],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    req.set(`${p}.input_layernorm.weight`, [h]);
    req.set(`${p}.post_attention_layernorm.weight`, [h]);
    req.set(`${p}.self_attn.q_proj.weight`, [q, h]);
    req.set(`${p}.self_attn.k_proj.weight`, [kv, h]);
    req.set(`${p}.self_attn.v_proj.weight`, [kv, h]);
    req.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    req.set(`${p}.mlp.gate_proj.weight`, [c.intermediateSize, h]);
    req.set(`${p}.mlp.up_proj.weight`, [c.intermediateSize, h]);
    req.set(`${p}.mlp.down_proj.weight`, [h, c.intermediateSize]);
  }
  return req;
}
