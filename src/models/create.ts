// The model classes of the families (TensorFlow.js code), by family name. registry.ts says which family a
// model_type belongs to; this file builds it.
import type { HostTensor } from '../adapters/safetensors';
import { LoraPlusError } from '../protocol/errors';
import { BertModel } from './bert/model';
import { Gpt2Model } from './gpt2/model';
import { LlamaModel } from './llama/model';
import type { Family } from './registry';
import type { BuildOptions, HFConfig, Model } from './types';

type ModelClass = new (raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions) => Model;

const CLASSES: Record<string, ModelClass> = { llama: LlamaModel, bert: BertModel, gpt2: Gpt2Model };

export function createModel(family: Family, raw: HFConfig, weights: Map<string, HostTensor>, o: BuildOptions): Model {
  const cls = CLASSES[family.name];
  if (!cls)
    throw new LoraPlusError({ code: 'model/unsupported', message: `no model class for the family '${family.name}'` });
  return new cls(raw, weights, o);
}
