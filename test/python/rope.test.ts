// RoPE's inverse frequencies against transformers' own ROPE_INIT_FUNCTIONS, bit for bit, for every RoPE type we
// support and both config styles (runs when a Python with torch and transformers is here; CI installs them).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { invFreq, ropeParams } from '../../src/models/rope';
import { noPython, pythonWith, runPython } from '../helpers/python';

const MODULES = ['torch', 'transformers'];
const python = pythonWith(MODULES);

const SCRIPT = `
import json, sys, transformers
from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
cfg, seq = json.loads(sys.argv[1]), int(sys.argv[2])
config = transformers.LlamaConfig(**cfg)
kind = config.rope_parameters["rope_type"]
if kind == "default":
    inv, _ = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding.compute_default_rope_parameters(config)
else:
    inv, _ = ROPE_INIT_FUNCTIONS[kind](config, None, seq_len=seq) if kind == "dynamic" else ROPE_INIT_FUNCTIONS[kind](config, None)
print(json.dumps([float(x) for x in inv.float().tolist()]))
`;

const BASE = { hidden_size: 64, num_attention_heads: 4, head_dim: 16, max_position_embeddings: 256 };
const CASES: [string, Record<string, unknown>, number][] = [
  ['default, classic style', { ...BASE, rope_theta: 500000 }, 32],
  ['linear', { ...BASE, rope_theta: 10000, rope_scaling: { rope_type: 'linear', factor: 4 } }, 32],
  [
    'llama3 (Llama 3.1 settings)',
    {
      ...BASE,
      rope_theta: 500000,
      rope_scaling: {
        rope_type: 'llama3',
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 16,
      },
    },
    32,
  ],
  ['dynamic, past the original length', { ...BASE, rope_scaling: { rope_type: 'dynamic', factor: 2 } }, 600],
  [
    'transformers 5 style (rope_parameters)',
    { ...BASE, rope_parameters: { rope_type: 'linear', rope_theta: 1e6, factor: 2 } },
    32,
  ],
];

describe('RoPE frequencies against transformers', { skip: python ? false : noPython(MODULES) }, () => {
  for (const [name, cfg, seq] of CASES) {
    it(name, () => {
      const want = JSON.parse(runPython(python!, SCRIPT, [JSON.stringify(cfg), String(seq)])) as number[];
      const got = Array.from(invFreq(ropeParams(cfg, 'config.json'), 16, seq));
      assert.deepEqual(got, want);
    });
  }
});
