// config.json → the numbers the Phi-3 layout needs: Llama's, read with Phi3Config's own defaults, plus the rotary
// dims of each head (partial_rotary_factor) and the sliding window. transformers accepts only the default RoPE and
// longrope for phi3; longrope (Phi-3-mini-128k, Phi-3.5, Phi-4-mini) is refused here, saying so.
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import { parseLlamaConfig, type LlamaConfig } from '../llama/config';
import { rotaryDim } from '../rope';
import type { HFConfig } from '../types';

export interface Phi3Config extends LlamaConfig {
  rotaryDim: number; // the leading dims of each head that RoPE rotates; the rest pass through
  slidingWindow: number | null; // keys i−w < j ≤ i for query i (sliding_window), or plain causal
}

/** Phi3Config's defaults where they differ from what the Llama parser falls back to. */
const PHI3_DEFAULTS: HFConfig = { max_position_embeddings: 4096, rms_norm_eps: 1e-5 };

export function parsePhi3Config(raw: HFConfig, file: string): Phi3Config {
  const type = ropeType(raw);
  if (type !== 'default') {
    const known = ['longrope', 'su', 'yarn'].includes(type); // transformers reads su and yarn as longrope for phi3
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: known
        ? `phi3 with longrope RoPE scaling ('${type}') is not supported yet`
        : `phi3 does not take the RoPE type '${type}' (transformers accepts default and longrope)`,
      file,
      hint: known
        ? 'Use a Phi-3 checkpoint without rope scaling (e.g. Phi-3-mini-4k), or open an issue naming the model.'
        : 'Use the config.json that came with the checkpoint.',
    });
  }
  const withDefaults: HFConfig = { ...raw };
  for (const [k, v] of Object.entries(PHI3_DEFAULTS)) withDefaults[k] ??= v;
  const c = parseLlamaConfig(withDefaults, file);
  const window = raw.sliding_window ?? null;
  if (window !== null && (typeof window !== 'number' || !Number.isInteger(window) || window < 1)) {
    throw new LoraPlusError({
      code: 'model/bad-config',
      message: `sliding_window must be a positive integer or null, got ${JSON.stringify(window)}`,
      file,
      hint: 'Use the config.json that came with the checkpoint.',
    });
  }
  return { ...c, rotaryDim: rotaryDim(c.rope, c.headDim), slidingWindow: window };
}

/** rope_type (or the older `type`) of rope_parameters / rope_scaling. */
function ropeType(raw: HFConfig): string {
  const p = isObject(raw.rope_parameters) ? raw.rope_parameters : isObject(raw.rope_scaling) ? raw.rope_scaling : {};
  return String(p.rope_type ?? p.type ?? 'default');
}
