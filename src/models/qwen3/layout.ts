// Qwen3 checkpoints are keyed as Llama's (bare Qwen3Model saves lack the `model.` prefix); positions are rotary.
import type { FamilyLayout } from '../layouts';
import { llamaLayout } from '../llama/layout';
import { parseQwen3Config } from './config';

export const qwen3Layout: FamilyLayout = {
  keyRenamer: llamaLayout.keyRenamer,
  positions: (raw, file) => ({ max: parseQwen3Config(raw, file).maxPositions, learned: false }),
};
