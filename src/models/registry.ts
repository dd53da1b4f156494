// model_type (config.json) → model family. Data only: adding a relative of a supported architecture is one line.
// The model classes load on first use: what only reads configs (the editor's checks, the extension host) never
// loads TensorFlow.js.
import type { HostTensor } from '../adapters/safetensors';
import type { BuildOptions, HFConfig, Model, Task } from './types';

/* eslint-disable @typescript-eslint/no-require-imports */
const llamaModel = () => (require('./llama/model') as typeof import('./llama/model')).LlamaModel;
const bertModel = () => (require('./bert/model') as typeof import('./bert/model')).BertModel;
const gpt2Model = () => (require('./gpt2/model') as typeof import('./gpt2/model')).Gpt2Model;
/* eslint-enable @typescript-eslint/no-require-imports */

export interface Family {
  name: string;
  /** The tasks this family has heads for (an encoder has no language-model head). */
  tasks: Task[];
  create(raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions): Model;
  /** PEFT's default LoRA targets for this family (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
  defaultTargets: string[];
  /** Linear layers never adapted by `all-linear` (PEFT excludes the output head). */
  outputHeads: string[];
}

const llama: Family = {
  name: 'llama',
  tasks: ['causal-lm', 'sequence-classification'],
  create: (raw, w, o) => new (llamaModel())(raw, w, o),
  defaultTargets: ['q_proj', 'v_proj'],
  outputHeads: ['lm_head', 'score'],
};

// `all-linear` leaves out `classifier` as PEFT does for SEQ_CLS models: only a Linear of that exact name, so
// RoBERTa's classifier.dense/out_proj stay eligible (they are trained in full by default anyway, as modules_to_save).
const bert: Family = {
  name: 'bert',
  tasks: ['sequence-classification'],
  create: (raw, w, o) => new (bertModel())(raw, w, o),
  defaultTargets: ['query', 'value'],
  outputHeads: ['classifier'],
};

// GPT-2's Conv1D layers (c_attn, c_proj, c_fc) are all its Linears but the heads; PEFT's default target is the fused
// q,k,v projection, and PEFT marks such adapters fan_in_fan_out (see makeAdapterConfig).
const gpt2: Family = {
  name: 'gpt2',
  tasks: ['causal-lm', 'sequence-classification'],
  create: (raw, w, o) => new (gpt2Model())(raw, w, o),
  defaultTargets: ['c_attn'],
  outputHeads: ['lm_head', 'score'],
};

export const FAMILIES: Record<string, Family> = {
  llama,
  mistral: llama,
  qwen2: llama,
  smollm: llama,
  bert,
  roberta: bert,
  'xlm-roberta': bert,
  distilbert: { ...bert, defaultTargets: ['q_lin', 'v_lin'] },
  gpt2,
};
