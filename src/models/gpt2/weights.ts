// The weights a GPT-2 checkpoint must have, under the module paths of GPT2LMHeadModel (layout.ts renames the file's
// keys; the Hub's `gpt2` has no lm_head: it is tied).
// c_attn, c_proj and c_fc are transformers' Conv1D: y = x·W + b with W stored [in, out], the transpose of nn.Linear.
// Old checkpoints also hold the causal-mask buffers `h.N.attn.bias` / `masked_bias`: not weights, ignored.
import type { Gpt2Config } from './config';

/** The Conv1D modules of one block, relative to `transformer.h.N`, with their [in, out] shapes. */
export function conv1dModules(c: Gpt2Config): [string, number, number][] {
  const h = c.hiddenSize;
  return [
    ['attn.c_attn', h, 3 * h], // q, k, v side by side along out
    ['attn.c_proj', h, h],
    ['mlp.c_fc', h, c.innerSize],
    ['mlp.c_proj', c.innerSize, h],
  ];
}

/** The weights every GPT-2 checkpoint must have, with their shapes (the heads are checked where they are built). */
export function requiredGpt2Weights(c: Gpt2Config): Map<string, number[]> {
  const h = c.hiddenSize;
  const req = new Map<string, number[]>([
    ['transformer.wte.weight', [c.vocabSize, h]],
    ['transformer.wpe.weight', [c.maxPositions, h]],
    ['transformer.ln_f.weight', [h]],
    ['transformer.ln_f.bias', [h]],
  ]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    for (const n of ['ln_1', 'ln_2']) {
      req.set(`${p}.${n}.weight`, [h]);
      req.set(`${p}.${n}.bias`, [h]);
    }
    for (const [n, inF, outF] of conv1dModules(c)) {
      req.set(`${p}.${n}.weight`, [inF, outF]);
      req.set(`${p}.${n}.bias`, [outF]);
    }
  }
  return req;
}
