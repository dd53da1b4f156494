// config.json → the numbers the Gemma 3 layout needs, read as transformers 5.18's Gemma3TextConfig reads it (its
// defaults where a key is missing, layer_types from sliding_window_pattern, both RoPE styles).
// Two model_types: `gemma3_text` (Gemma3ForCausalLM: the settings at the top level, weights under `model.`) and
// `gemma3` (Gemma3ForConditionalGeneration, the multimodal checkpoints: the language model's settings nested in
// `text_config`, its weights under `language_model.` or `model.language_model.`; only the text part is built).
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import { ACTIVATIONS } from '../activations';
import { ropeParams, type RopeParams } from '../rope';
import type { HFConfig } from '../types';

export type LayerType = 'sliding_attention' | 'full_attention';
const LAYER_TYPES: readonly LayerType[] = ['sliding_attention', 'full_attention'];

export interface Gemma3Config {
  modelType: string;
  multimodal: boolean; // model_type gemma3: the text model lives at `model.language_model`
  prefix: string; // module path of the text model: `model` or `model.language_model`
  hiddenSize: number; // H
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  vocabSize: number;
  maxPositions: number;
  rmsNormEps: number;
  queryScale: number; // query_pre_attn_scalar^-0.5: the scores' scale in place of head_dim^-0.5
  slidingWindow: number | null; // keys a sliding layer sees, the query's own included
  layerTypes: LayerType[];
  rope: Record<LayerType, RopeParams>; // the global base on full layers, the local one on sliding layers
  attnSoftcap: number | null; // attn_logit_softcapping: read and checked, but see model.ts
  finalSoftcap: number | null; // final_logit_softcapping, applied by Gemma3ForCausalLM only
  attentionBias: boolean;
  tieWordEmbeddings: boolean;
  initializerRange: number;
  numLabels: number | null;
}

/** Gemma3TextConfig's defaults (transformers 5.18). */
const TEXT_DEFAULTS: HFConfig = {
  vocab_size: 262_208,
  hidden_size: 2304,
  intermediate_size: 9216,
  num_hidden_layers: 26,
  num_attention_heads: 8,
  num_key_value_heads: 4,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 131_072,
  initializer_range: 0.02,
  rms_norm_eps: 1e-6,
  attention_bias: false,
  query_pre_attn_scalar: 256,
  sliding_window: 4096,
  final_logit_softcapping: null,
  attn_logit_softcapping: null,
  use_bidirectional_attention: false,
};
const DEFAULT_THETA: Record<LayerType, number> = { full_attention: 1_000_000, sliding_attention: 10_000 };

/** The language model's config.json fields, Gemma3TextConfig's defaults filled in: of `text_config` for gemma3. */
export function gemma3TextConfig(raw: HFConfig): HFConfig {
  const text = raw.model_type === 'gemma3' ? (isObject(raw.text_config) ? raw.text_config : {}) : raw;
  const out: HFConfig = { ...text };
  for (const [k, v] of Object.entries(TEXT_DEFAULTS)) if (out[k] === undefined) out[k] = v;
  return out;
}

/**
 * transformers 5's per-layer-type rope_parameters for any Gemma 3 config (convert_rope_params_to_dict):
 * the classic style's rope_theta (and rope_scaling) goes to full_attention, rope_local_base_freq to sliding_attention
 * (unscaled), and a missing base is 1e6 (global) or 1e4 (local).
 */
export function gemma3RopeParameters(text: HFConfig): Record<LayerType, Record<string, unknown>> {
  const given = isObject(text.rope_parameters) ? text.rope_parameters : {};
  const out = {} as Record<LayerType, Record<string, unknown>>;
  for (const type of LAYER_TYPES) {
    const p: Record<string, unknown> = isObject(given[type]) ? { ...given[type] } : { rope_type: 'default' };
    if (type === 'full_attention' && isObject(text.rope_scaling)) Object.assign(p, text.rope_scaling);
    const classic = type === 'full_attention' ? text.rope_theta : text.rope_local_base_freq;
    p.rope_theta ??= classic ?? DEFAULT_THETA[type];
    out[type] = p;
  }
  return out;
}

export function parseGemma3Config(raw: HFConfig, file: string): Gemma3Config {
  const text = gemma3TextConfig(raw);
  const bad = (message: string): LoraPlusError =>
    new LoraPlusError({
      code: 'model/bad-config',
      message,
      file,
      hint: 'Use the config.json that came with the checkpoint.',
    });
  const where = raw.model_type === 'gemma3' ? 'text_config.' : '';
  const num = (key: string): number => {
    const v = text[key];
    if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(`config.json has no numeric '${where}${key}'`);
    return v;
  };
  const cap = (key: string): number | null => {
    const v = text[key];
    if (v === null || v === undefined) return null;
    if (typeof v !== 'number' || !(v > 0)) throw bad(`'${where}${key}' must be a positive number or null`);
    return v;
  };
  const act = String(text.hidden_activation ?? text.hidden_act);
  if (ACTIVATIONS[act] !== 'gelu_tanh') {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `hidden_activation '${act}' is not supported for Gemma 3 (only gelu_pytorch_tanh)`,
      file,
    });
  }
  if (text.use_bidirectional_attention === true) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: 'use_bidirectional_attention (an embedding model such as EmbeddingGemma) is not supported',
      file,
      hint: 'Use a causal Gemma 3 checkpoint (gemma3_text or gemma3).',
    });
  }
  const numLayers = num('num_hidden_layers');
  const layerTypes = parseLayerTypes(text, numLayers, (m) => bad(`${where}${m}`));
  const window = text.sliding_window;
  if (window !== null && (typeof window !== 'number' || !Number.isInteger(window) || window < 1))
    throw bad(`'${where}sliding_window' must be a positive integer or null`);
  const ropeRaw: HFConfig = { ...text, rope_parameters: gemma3RopeParameters(text), rope_scaling: undefined };
  const id2label = raw.id2label as Record<string, string> | undefined;
  const multimodal = raw.model_type === 'gemma3';
  const finalCap = cap('final_logit_softcapping');
  return {
    modelType: String(raw.model_type),
    multimodal,
    prefix: multimodal ? 'model.language_model' : 'model',
    hiddenSize: num('hidden_size'),
    intermediateSize: num('intermediate_size'),
    numLayers,
    numHeads: num('num_attention_heads'),
    numKvHeads: num('num_key_value_heads'),
    headDim: num('head_dim'),
    vocabSize: num('vocab_size'),
    maxPositions: num('max_position_embeddings'),
    rmsNormEps: num('rms_norm_eps'),
    queryScale: Math.pow(num('query_pre_attn_scalar'), -0.5),
    slidingWindow: window,
    layerTypes,
    rope: {
      full_attention: ropeParams(ropeRaw, file, 'full_attention'),
      sliding_attention: ropeParams(ropeRaw, file, 'sliding_attention'),
    },
    attnSoftcap: cap('attn_logit_softcapping'),
    // Gemma3ForConditionalGeneration's forward never caps its logits; Gemma3ForCausalLM's does.
    finalSoftcap: multimodal ? null : finalCap,
    attentionBias: text.attention_bias === true,
    // Gemma3Config and Gemma3TextConfig both default to tied; the multimodal model reads its top-level flag.
    tieWordEmbeddings: Boolean((multimodal ? raw.tie_word_embeddings : text.tie_word_embeddings) ?? true),
    initializerRange: num('initializer_range'),
    numLabels: typeof raw.num_labels === 'number' ? raw.num_labels : id2label ? Object.keys(id2label).length : null,
  };
}

/** layer_types as given, else Gemma3TextConfig's pattern: every sliding_window_pattern-th layer (default 6) is full. */
function parseLayerTypes(text: HFConfig, numLayers: number, bad: (m: string) => Error): LayerType[] {
  const given = text.layer_types;
  if (given === undefined || given === null) {
    const every = typeof text.sliding_window_pattern === 'number' ? text.sliding_window_pattern : 6;
    return Array.from({ length: numLayers }, (_, i) => ((i + 1) % every ? 'sliding_attention' : 'full_attention'));
  }
  if (!Array.isArray(given) || given.length !== numLayers)
    throw bad(`layer_types must list one type for each of the ${numLayers} layers`);
  for (const t of given) {
    if (!LAYER_TYPES.includes(t as LayerType))
      throw bad(`layer_types holds '${String(t)}' (Gemma 3 has sliding_attention and full_attention)`);
  }
  return given as LayerType[];
}
