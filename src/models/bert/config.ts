// config.json → the numbers the BERT-family encoders need. Shared by bert, roberta, xlm-roberta and distilbert
// checkpoints; DistilBERT's config uses its own key names (dim, n_layers, ...), mapped here.
import { LoraPlusError } from '../../protocol/errors';
import { ACTIVATIONS, type Activation } from '../activations';
import type { HFConfig } from '../types';

/** Which of the three layouts a model_type uses (module names, position ids, classification head). */
export type BertLayout = 'bert' | 'roberta' | 'distilbert';

const LAYOUTS: Record<string, BertLayout> = {
  bert: 'bert',
  roberta: 'roberta',
  'xlm-roberta': 'roberta',
  distilbert: 'distilbert',
};

export interface BertConfig {
  modelType: string;
  layout: BertLayout;
  prefix: string; // base-model prefix of keys and module paths: bert, roberta (also for xlm-roberta), distilbert
  hiddenSize: number; // H
  intermediateSize: number; // I
  numLayers: number;
  numHeads: number;
  headDim: number; // H / numHeads
  vocabSize: number; // V
  positionRows: number; // rows of the position-embedding table (max_position_embeddings)
  typeVocabSize: number; // rows of the token-type table; 0 for DistilBERT, which has none
  layerNormEps: number;
  hiddenAct: Activation;
  initializerRange: number;
  padTokenId: number; // RoBERTa's padding_idx: its position ids start after it
}

export function parseBertConfig(raw: HFConfig, file: string): BertConfig {
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
  const modelType = String(raw.model_type);
  const layout = LAYOUTS[modelType];
  if (!layout)
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `model_type '${modelType}' is not a BERT-family encoder`,
      file,
    });
  const distil = layout === 'distilbert';

  const actName = String((distil ? raw.activation : raw.hidden_act) ?? 'gelu');
  const hiddenAct = ACTIVATIONS[actName];
  if (!hiddenAct) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `${distil ? 'activation' : 'hidden_act'} '${actName}' is not supported for ${modelType}`,
      file,
      hint: `Supported: ${Object.keys(ACTIVATIONS).join(', ')}.`,
    });
  }
  const positionType = raw.position_embedding_type ?? 'absolute';
  if (positionType !== 'absolute') {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `position_embedding_type '${String(positionType)}' is not supported (only absolute)`,
      file,
      hint: 'Use a checkpoint with absolute position embeddings, or open an issue.',
    });
  }
  if (raw.is_decoder === true) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `this ${modelType} checkpoint is configured as a decoder (is_decoder: true)`,
      file,
      hint: 'Use an encoder checkpoint for sequence classification.',
    });
  }

  const hiddenSize = num(distil ? 'dim' : 'hidden_size');
  const numHeads = num(distil ? 'n_heads' : 'num_attention_heads');
  return {
    modelType,
    layout,
    prefix: layout,
    hiddenSize,
    intermediateSize: num(distil ? 'hidden_dim' : 'intermediate_size'),
    numLayers: num(distil ? 'n_layers' : 'num_hidden_layers'),
    numHeads,
    headDim: hiddenSize / numHeads,
    vocabSize: num('vocab_size'),
    positionRows: num('max_position_embeddings', 512),
    typeVocabSize: distil ? 0 : num('type_vocab_size', 2),
    layerNormEps: distil ? 1e-12 : num('layer_norm_eps', 1e-12), // DistilBERT hard-codes 1e-12
    hiddenAct,
    initializerRange: num('initializer_range', 0.02),
    padTokenId: num('pad_token_id', layout === 'roberta' ? 1 : 0),
  };
}
