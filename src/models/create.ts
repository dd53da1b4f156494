// The model classes of the families (TensorFlow.js code), by family name. registry.ts says which family a
// model_type belongs to; this file builds it.
import type { HostTensor } from '../adapters/safetensors';
import { LoraPlusError } from '../protocol/errors';
import { BertModel } from './bert/model';
import { Gemma3Model } from './gemma3/model';
import { Gpt2Model } from './gpt2/model';
import { LlamaModel } from './llama/model';
import { Phi3Model } from './phi3/model';
import { Qwen3Model } from './qwen3/model';
import type { Family } from './registry';
import type { BuildOptions, HFConfig, Model } from './types';

type ModelClass = new (raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions) => Model;

const CLASSES: Record<string, ModelClass> = {
  llama: LlamaModel,
  bert: BertModel,
  gpt2: Gpt2Model,
  qwen3: Qwen3Model,
  gemma3: Gemma3Model,
  phi3: Phi3Model,
};

export function createModel(family: Family, raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions): Model {
  const cls = CLASSES[family.name];
  if (!cls)
    throw new LoraPlusError({ code: 'model/unsupported', message: `no model class for the family '${family.name}'` });
  return new cls(raw, weights, o);
}
