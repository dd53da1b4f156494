// model_type (config.json) → model family. Data only: adding a relative of a supported architecture is one line.
import type { HostTensor } from '../adapters/safetensors';
import { LlamaModel, type BuildOptions } from './llama/model';
import type { HFConfig, Model } from './types';

export interface Family {
  name: string;
  create(raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions): Model;
  /** PEFT's default LoRA targets for this family (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING). */
  defaultTargets: string[];
  /** Linear layers never adapted by `all-linear` (PEFT excludes the output head). */
  outputHeads: string[];
}

const llama: Family = {
  name: 'llama',
  create: (raw, w, o) => new LlamaModel(raw, w, o),
  defaultTargets: ['q_proj', 'v_proj'],
  outputHeads: ['lm_head', 'score'],
};

export const FAMILIES: Record<string, Family> = {
  llama,
  mistral: llama,
  qwen2: llama,
  smollm: llama,
};
