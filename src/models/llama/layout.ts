// Llama-family checkpoints saved from the bare LlamaModel have no `model.` prefix; positions are rotary.
import type { FamilyLayout } from '../layouts';
import { parseLlamaConfig } from './config';

const BARE = /^(embed_tokens|layers|norm)\./;

export const llamaLayout: FamilyLayout = {
  keyRenamer: () => (k) => (BARE.test(k) ? `model.${k}` : k),
  positions: (raw, file) => ({ max: parseLlamaConfig(raw, file).maxPositions, learned: false }),
};
