// Phi-3 checkpoints are keyed as Llama's (bare Phi3Model saves lack the `model.` prefix); positions are rotary.
import type { FamilyLayout } from '../layouts';
import { llamaLayout } from '../llama/layout';
import { parsePhi3Config } from './config';

export const phi3Layout: FamilyLayout = {
  keyRenamer: llamaLayout.keyRenamer,
  positions: (raw, file) => ({ max: parsePhi3Config(raw, file).maxPositions, learned: false }),
};
