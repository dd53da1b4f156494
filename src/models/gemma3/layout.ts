// Gemma 3 checkpoint keys → the module paths transformers 5 builds (and PEFT names adapters by). gemma3_text: the
// text model at `model.` (a bare Gemma3TextModel save lacks the prefix). gemma3: the text model at
// `model.language_model.`, as transformers 5 saves it; the Hub's multimodal checkpoints store it as
// `language_model.model.` with the head at `language_model.lm_head`, which transformers renames on load, as we do.
// The vision tower's keys move under `model.` as transformers moves them; nothing here builds it.
import type { FamilyLayout } from '../layouts';
import { parseGemma3Config } from './config';

const BARE = /^(embed_tokens|layers|norm)\./;
const LEGACY: [RegExp, string][] = [
  [/^language_model\.model\./, 'model.language_model.'],
  [/^language_model\.lm_head\./, 'lm_head.'],
  [/^(vision_tower|multi_modal_projector)\./, 'model.$1.'],
];

export const gemma3Layout: FamilyLayout = {
  keyRenamer: (raw) => {
    if (raw.model_type !== 'gemma3') return (k) => (BARE.test(k) ? `model.${k}` : k);
    return (k) => {
      for (const [from, to] of LEGACY) if (from.test(k)) return k.replace(from, to);
      return k;
    };
  },
  positions: (raw, file) => ({ max: parseGemma3Config(raw, file).maxPositions, learned: false }),
};
