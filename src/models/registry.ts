// model_type (config.json) → model family. Data only, so what only reads configs (the editor's checks, the
// extension host) never loads TensorFlow.js: the model classes are in create.ts. Adding a relative of a supported
// architecture is one line here.
import type { Task } from './types';

export interface Family {
  name: string;
  /** The tasks this family has heads for (an encoder has no language-model head). */
  tasks: Task[];
  /** PEFT's default LoRA targets for this family (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
  defaultTargets: string[];
  /** Linear layers never adapted by `all-linear` (PEFT excludes the output head). */
  outputHeads: string[];
}

const llama: Family = {
  name: 'llama',
  tasks: ['causal-lm', 'sequence-classification'],
  defaultTargets: ['q_proj', 'v_proj'],
  outputHeads: ['lm_head', 'score'],
};

// `all-linear` leaves out `classifier` as PEFT does for SEQ_CLS models: only a Linear of that exact name, so
// RoBERTa's classifier.dense/out_proj stay eligible (they are trained in full by default anyway, as modules_to_save).
const bert: Family = {
  name: 'bert',
  tasks: ['sequence-classification'],
  defaultTargets: ['query', 'value'],
  outputHeads: ['classifier'],
};

// GPT-2's Conv1D layers (c_attn, c_proj, c_fc) are all its Linears but the heads; PEFT's default target is the fused
// q,k,v projection, and PEFT marks such adapters fan_in_fan_out (see makeAdapterConfig).
const gpt2: Family = {
  name: 'gpt2',
  tasks: ['causal-lm', 'sequence-classification'],
  defaultTargets: ['c_attn'],
  outputHeads: ['lm_head', 'score'],
};

export const FAMILIES: Record<string, Family> = {
  llama,
  mistral: llama,
  qwen2: llama,
  smollm: llama,
  qwen3: { ...llama, name: 'qwen3' }, // Llama + per-head q/k RMSNorm (src/models/qwen3)
  bert,
  roberta: bert,
  'xlm-roberta': bert,
  distilbert: { ...bert, defaultTargets: ['q_lin', 'v_lin'] },
  gpt2,
  // Gemma 3 (src/models/gemma3): gemma3_text, and the language model of the multimodal gemma3 checkpoints.
  gemma3_text: { ...llama, name: 'gemma3' },
  gemma3: { ...llama, name: 'gemma3' },
  // Phi-3 (src/models/phi3): fused qkv_proj and gate_up_proj. PEFT 0.21 has no default for phi3 (it asks for
  // target_modules); ours is the fused attention input, as PEFT's codegen/gpt2 defaults.
  phi3: { ...llama, name: 'phi3', defaultTargets: ['qkv_proj'] },
};
