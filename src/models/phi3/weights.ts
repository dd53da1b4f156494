// The weights a Phi-3 checkpoint must have, under the module paths of Phi3ForCausalLM (layout.ts renames the file's
// keys). The projections are fused: qkv_proj's rows are [q; k; v], gate_up_proj's [gate; up].
import type { Phi3Config } from './config';

/** The weights every Phi-3 checkpoint must have, with their shapes. */
export function requiredPhi3Weights(c: Phi3Config): Map<string, number[]> {
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
    req.set(`${p}.self_attn.qkv_proj.weight`, [q + 2 * kv, h]);
    req.set(`${p}.self_attn.o_proj.weight`, [h, q]);
    req.set(`${p}.mlp.gate_up_proj.weight`, [2 * c.intermediateSize, h]);
    req.set(`${p}.mlp.down_proj.weight`, [h, c.intermediateSize]);
  }
  return req;
}
