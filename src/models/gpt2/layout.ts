// The Hub's `gpt2` stores the bare GPT2Model's keys (`h.0.attn.c_attn.weight`, no `transformer.` prefix); its
// positions are a learned table.
import type { FamilyLayout } from '../layouts';
import { parseGpt2Config } from './config';

const BARE = /^(wte|wpe|h|ln_f)\./;

export const gpt2Layout: FamilyLayout = {
  keyRenamer: () => (k) => (BARE.test(k) ? `transformer.${k}` : k),
  positions: (raw, file) => ({ max: parseGpt2Config(raw, file).maxPositions, learned: true }),
};
