// BERT-family checkpoints: bare encoder keys get the base model's prefix, and old LayerNorm names (gamma/beta)
// become weight/bias, as transformers' _fix_key renames them (only the final name: modules that merely contain the
// words keep their names). Positions are a learned table; RoBERTa's ids start after padding_idx.
import type { FamilyLayout } from '../layouts';
import { parseBertConfig } from './config';

const OLD_NAMES: [RegExp, string][] = [
  [/\.gamma$/, '.weight'],
  [/\.beta$/, '.bias'],
];

export const bertLayout: FamilyLayout = {
  keyRenamer: (raw, file) => {
    const c = parseBertConfig(raw, file);
    const bare = c.layout === 'distilbert' ? /^(embeddings|transformer)\./ : /^(embeddings|encoder|pooler)\./;
    return (k) => {
      const key = OLD_NAMES.reduce((s, [from, to]) => s.replace(from, to), k);
      return bare.test(key) ? `${c.prefix}.${key}` : key;
    };
  },
  positions: (raw, file) => {
    const c = parseBertConfig(raw, file);
    return { max: c.layout === 'roberta' ? c.positionRows - c.padTokenId - 1 : c.positionRows, learned: true };
  },
};
