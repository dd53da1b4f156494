// What the non-TensorFlow.js code needs to know of each family, by family name: how a checkpoint key becomes the
// module path the family builds (the loaders, the config checks and merge all rename keys with this, so they
// agree), and how many positions a model has. A family adds its layout.ts here; its model class goes in create.ts.
import { bertLayout } from './bert/layout';
import { gemma3Layout } from './gemma3/layout';
import { gpt2Layout } from './gpt2/layout';
import { llamaLayout } from './llama/layout';
import { phi3Layout } from './phi3/layout';
import { qwen3Layout } from './qwen3/layout';
import { renameKeys } from './keys';
import type { HFConfig } from './types';

export interface FamilyLayout {
  /** The module path of a checkpoint key (`h.0.attn.c_attn.weight` → `transformer.h.0.attn.c_attn.weight`). */
  keyRenamer(raw: HFConfig, configFile: string): (key: string) => string;
  /** Token positions: a learned table is a hard limit, rotary positions a soft one. */
  positions(raw: HFConfig, configFile: string): { max: number; learned: boolean };
}

export const LAYOUTS: Record<string, FamilyLayout> = {
  llama: llamaLayout,
  qwen3: qwen3Layout,
  gemma3: gemma3Layout,
  phi3: phi3Layout,
  gpt2: gpt2Layout,
  bert: bertLayout,
};

/** `weights` under the family's module paths; `where` (the model folder) is named when two keys collide. */
export function normalizeKeys<T>(
  family: string,
  weights: Map<string, T>,
  raw: HFConfig,
  where: string,
): Map<string, T> {
  const layout = LAYOUTS[family];
  return layout ? renameKeys(weights, layout.keyRenamer(raw, `${where}/config.json`), where) : weights;
}
