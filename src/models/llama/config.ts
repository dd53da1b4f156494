// config.json → the numbers the Llama layout needs. Shared by llama (with Llama 3.x RoPE scaling), mistral, qwen2
// and smollm checkpoints.
import { LoraPlusError } from '../../protocol/errors';
import { ropeParams, type RopeParams } from '../rope';
import type { HFConfig } from '../types';

export interface LlamaConfig {
  modelType: string;
  hiddenSize: number; // H
  intermediateSize: number;
  numLayers: number;
  numHeads: number; // query heads
  numKvHeads: number; // key/value heads (grouped-query attention when fewer than numHeads)
  headDim: number;
  vocabSize: number; // V
  maxPositions: number;
  rmsNormEps: number;
  rope: RopeParams; // from rope_theta + rope_scaling, or rope_parameters (transformers 5)
  tieWordEmbeddings: boolean;
  initializerRange: number;
  padTokenId: number | null;
  numLabels: number | null; // from id2label / num_labels when the checkpoint is a classifier
}

export function parseLlamaConfig(raw: HFConfig, file: string): LlamaConfig {
  const num = (key: string, fallback?: number): number => {
    const v = raw[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new LoraPlusError({
        code: 'model/bad-config',
        message: `config.json has no numeric '${key}'`,
        file,
        hint: 'Use the config.json that came with the checkpoint.',
      });
    }
    return v;
  };
  const act = raw.hidden_act ?? 'silu';
  if (act !== 'silu')
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `hidden_act '${String(act)}' is not supported for ${raw.model_type} (only silu)`,
      file,
    });
  const hiddenSize = num('hidden_size');
  const numHeads = num('num_attention_heads');
  const id2label = raw.id2label as Record<string, string> | undefined;
  return {
    modelType: String(raw.model_type),
    hiddenSize,
    intermediateSize: num('intermediate_size'),
    numLayers: num('num_hidden_layers'),
    numHeads,
    numKvHeads: num('num_key_value_heads', numHeads),
    headDim: num('head_dim', hiddenSize / numHeads),
    vocabSize: num('vocab_size'),
    maxPositions: num('max_position_embeddings', 2048),
    rmsNormEps: num('rms_norm_eps', 1e-6),
    rope: ropeParams(raw, file),
    tieWordEmbeddings: Boolean(raw.tie_word_embeddings ?? false), // LlamaConfig's default
    initializerRange: num('initializer_range', 0.02),
    padTokenId: typeof raw.pad_token_id === 'number' ? raw.pad_token_id : null,
    numLabels: typeof raw.num_labels === 'number' ? raw.num_labels : id2label ? Object.keys(id2label).length : null,
  };
}
