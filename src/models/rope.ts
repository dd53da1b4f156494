// Rotary position embeddings: the parameters (from either config style: the Hub's classic `rope_theta` +
// `rope_scaling` at the top level, or transformers 5's `rope_parameters`, possibly per layer type as Gemma 3 writes
// it) and the inverse frequencies, computed in float32 step by step as transformers' ROPE_INIT_FUNCTIONS do, so
// the angles match to the bit. Supported: default, linear, dynamic (NTK) and llama3.
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';
import type { HFConfig } from './types';

export type RopeType = 'default' | 'linear' | 'dynamic' | 'llama3';

export interface RopeParams {
  type: RopeType;
  theta: number;
  partialRotaryFactor: number; // the share of each head's dims that rotate (Phi-3, GPT-NeoX style models)
  factor: number; // linear, dynamic, llama3
  lowFreqFactor: number; // llama3
  highFreqFactor: number; // llama3
  originalMaxPositions: number; // llama3
  maxPositions: number; // dynamic scaling starts past this length (max_position_embeddings, as transformers 5)
}

const f = Math.fround;

/**
 * The RoPE parameters of a model (or, for models with several layer types, of `layerType`'s layers, e.g.
 * 'sliding_attention'). `defaultTheta` is the family's default base when the config names none.
 */
export function ropeParams(raw: HFConfig, file: string, layerType?: string, defaultTheta = 10000): RopeParams {
  let p: Record<string, unknown> = {};
  const params = raw.rope_parameters;
  const key = isObject(params) ? 'rope_parameters' : 'rope_scaling';
  if (isObject(params)) {
    const perType = layerType && isObject(params[layerType]) ? params[layerType] : null;
    p = (perType as Record<string, unknown> | null) ?? params;
  } else if (isObject(raw.rope_scaling)) p = raw.rope_scaling;
  const pick = (key: string, fallback: unknown) => p[key] ?? raw[key] ?? fallback;
  const type = String(p.rope_type ?? p.type ?? 'default');
  if (!['default', 'linear', 'dynamic', 'llama3'].includes(type)) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `${key} '${type}' is not supported (default, linear, dynamic and llama3 are)`,
      file,
      hint: 'Use a checkpoint with one of those RoPE types, or open an issue naming the model.',
    });
  }
  const num = (key: string, fallback: number): number => {
    const v = pick(key, fallback);
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      throw new LoraPlusError({
        code: 'model/bad-config',
        message: `the RoPE setting '${key}' must be a positive number, got ${JSON.stringify(v)}`,
        file,
        hint: 'Use the config.json that came with the checkpoint.',
      });
    }
    return v;
  };
  const maxPositions = typeof raw.max_position_embeddings === 'number' ? raw.max_position_embeddings : 2048;
  return {
    type: type as RopeType,
    theta: num('rope_theta', defaultTheta),
    partialRotaryFactor: num('partial_rotary_factor', 1),
    factor: type === 'default' ? 1 : num('factor', 1),
    lowFreqFactor: type === 'llama3' ? num('low_freq_factor', 1) : 1,
    highFreqFactor: type === 'llama3' ? num('high_freq_factor', 4) : 4,
    originalMaxPositions: num('original_max_position_embeddings', maxPositions),
    maxPositions,
  };
}

/** The dims of each head that rotate. */
export function rotaryDim(r: RopeParams, headDim: number): number {
  const dim = Math.floor(headDim * r.partialRotaryFactor);
  return dim - (dim % 2);
}

/** inv_freq, [rotaryDim / 2], for sequences of `seqLen` tokens (only dynamic scaling depends on it). */
export function invFreq(r: RopeParams, headDim: number, seqLen: number): Float32Array {
  const dim = rotaryDim(r, headDim);
  let base = r.theta;
  if (r.type === 'dynamic' && seqLen > r.maxPositions) {
    // transformers' _compute_dynamic_ntk_parameters: a larger base once the sequence outgrows the model's length
    const grown = (r.factor * seqLen) / r.maxPositions - (r.factor - 1);
    base = base * Math.pow(grown, dim / (dim - 2));
  }
  // torch computes base ** arange(...)/dim in float32, the base rounded to float32 first
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f(1 / f(Math.pow(f(base), f((2 * i) / dim))));
  if (r.type === 'linear') for (let i = 0; i < out.length; i++) out[i] = f(out[i] / r.factor);
  if (r.type === 'llama3') llama3Scale(out, r);
  return out;
}

/** transformers' _compute_llama3_parameters, each float32 tensor op as one rounding. */
function llama3Scale(inv: Float32Array, r: RopeParams): void {
  const old = r.originalMaxPositions;
  const lowWavelen = f(old / r.lowFreqFactor); // compared with a float32 tensor: rounded as torch does
  const highWavelen = f(old / r.highFreqFactor);
  for (let i = 0; i < inv.length; i++) {
    const wavelen = f((2 * Math.PI) / inv[i]);
    const scaled = wavelen > lowWavelen ? f(inv[i] / r.factor) : inv[i];
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    if (!medium) {
      inv[i] = scaled;
      continue;
    }
    const smooth = f(f(f(old / wavelen) - r.lowFreqFactor) / (r.highFreqFactor - r.lowFreqFactor));
    inv[i] = f(f(f(f(1 - smooth) * scaled) / r.factor) + f(smooth * scaled));
  }
}
