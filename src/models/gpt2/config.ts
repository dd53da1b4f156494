// config.json → the numbers the GPT-2 layout needs. GPT2Config has its own key names (n_embd, n_head, n_layer,
// n_positions, n_inner, layer_norm_epsilon, activation_function); the defaults below are GPT2Config's.
import { LoraPlusError } from '../../protocol/errors';
import { ACTIVATIONS, type Activation } from '../activations';
import type { HFConfig } from '../types';

export interface Gpt2Config {
  modelType: string;
  hiddenSize: number; // H (n_embd)
  numHeads: number; // nh (n_head)
  headDim: number; // hd = H / nh
  numLayers: number; // n_layer
  innerSize: number; // I (n_inner, default 4·H)
  vocabSize: number; // V
  maxPositions: number; // rows of the learned position table (n_positions)
  layerNormEps: number;
  activation: Activation;
  scaleAttnWeights: boolean; // scores / √hd (scale_attn_weights, on by default)
  scaleByInverseLayerIdx: boolean; // scores / (layer + 1) as well (scale_attn_by_inverse_layer_idx)
  tieWordEmbeddings: boolean; // PretrainedConfig's default: true
  initializerRange: number;
}

export function parseGpt2Config(raw: HFConfig, file: string): Gpt2Config {
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
  const actName = String(raw.activation_function ?? 'gelu_new');
  const activation = ACTIVATIONS[actName];
  if (!activation) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `activation_function '${actName}' is not supported for ${raw.model_type}`,
      file,
      hint: `Supported: ${Object.keys(ACTIVATIONS).join(', ')}.`,
    });
  }
  const hiddenSize = num('n_embd', 768);
  const numHeads = num('n_head', 12);
  if (hiddenSize % numHeads !== 0) {
    throw new LoraPlusError({
      code: 'model/bad-config',
      message: `n_embd ${hiddenSize} is not a multiple of n_head ${numHeads}`,
      file,
      hint: 'Use the config.json that came with the checkpoint.',
    });
  }
  return {
    modelType: String(raw.model_type),
    hiddenSize,
    numHeads,
    headDim: hiddenSize / numHeads,
    numLayers: num('n_layer', 12),
    innerSize: raw.n_inner == null ? 4 * hiddenSize : num('n_inner'),
    vocabSize: num('vocab_size', 50257),
    maxPositions: num('n_positions', 1024),
    layerNormEps: num('layer_norm_epsilon', 1e-5),
    activation,
    scaleAttnWeights: raw.scale_attn_weights !== false,
    scaleByInverseLayerIdx: raw.scale_attn_by_inverse_layer_idx === true,
    tieWordEmbeddings: raw.tie_word_embeddings !== false,
    initializerRange: num('initializer_range', 0.02),
  };
}
