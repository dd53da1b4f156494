// config.json → the numbers the Qwen3 layout needs: Llama's, read with Qwen3Config's own defaults (head_dim 128, not
// hidden/heads), plus attention_bias. Sliding-window layers (use_sliding_window) are refused: no Qwen3 release uses
// them, and full attention would give other numbers past the window.
import { LoraPlusError } from '../../protocol/errors';
import { parseLlamaConfig, type LlamaConfig } from '../llama/config';
import type { HFConfig } from '../types';

export interface Qwen3Config extends LlamaConfig {
  attentionBias: boolean; // q/k/v/o biases (attention_bias, default false)
}

/** Qwen3Config's defaults where they differ from what the Llama parser falls back to. */
const QWEN3_DEFAULTS: HFConfig = { head_dim: 128, max_position_embeddings: 32768 };

/** config.json with Qwen3Config's defaults filled in where it omits them, as transformers reads it. */
export function withQwen3Defaults(raw: HFConfig): HFConfig {
  const out: HFConfig = { ...raw };
  for (const [k, v] of Object.entries(QWEN3_DEFAULTS)) out[k] ??= v;
  return out;
}

export function parseQwen3Config(raw: HFConfig, file: string): Qwen3Config {
  const c = parseLlamaConfig(withQwen3Defaults(raw), file);
  const window = slidingWindow(raw, c.numLayers);
  if (window !== null) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `${c.modelType} with sliding-window attention (sliding_window ${window}) is not supported`,
      file,
      hint: 'Qwen3 checkpoints use full attention: set use_sliding_window to false if this one was trained that way.',
    });
  }
  return { ...c, attentionBias: raw.attention_bias === true };
}

/** The window of the layers transformers builds as sliding_attention (Qwen3Config.__post_init__), or null. */
function slidingWindow(raw: HFConfig, numLayers: number): number | null {
  const window = raw.use_sliding_window === true ? (raw.sliding_window ?? 4096) : null;
  if (typeof window !== 'number') return null;
  const types = raw.layer_types;
  const maxWindowLayers = typeof raw.max_window_layers === 'number' ? raw.max_window_layers : 28;
  const sliding = Array.isArray(types) ? types.includes('sliding_attention') : numLayers > maxWindowLayers;
  return sliding ? window : null;
}
