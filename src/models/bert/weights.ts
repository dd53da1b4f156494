// The weights of BertForSequenceClassification, RobertaForSequenceClassification and
// DistilBertForSequenceClassification checkpoints, under their module paths (layout.ts renames the file's keys:
// bare encoder keys without the `bert.` / `roberta.` / `distilbert.` prefix, old gamma/beta LayerNorm names).
import type { BertConfig, BertLayout } from './config';

/** Module names inside one encoder layer, relative to `<prefix>.encoder.layer.N` (`distilbert.transformer.layer.N`). */
export interface LayerNames {
  q: string;
  k: string;
  v: string;
  o: string; // attention output projection
  attnNorm: string; // LayerNorm after attention + residual
  up: string; // FFN H → I
  down: string; // FFN I → H
  outNorm: string; // LayerNorm after FFN + residual
}

const BERT_NAMES: LayerNames = {
  q: 'attention.self.query',
  k: 'attention.self.key',
  v: 'attention.self.value',
  o: 'attention.output.dense',
  attnNorm: 'attention.output.LayerNorm',
  up: 'intermediate.dense',
  down: 'output.dense',
  outNorm: 'output.LayerNorm',
};
const DISTILBERT_NAMES: LayerNames = {
  q: 'attention.q_lin',
  k: 'attention.k_lin',
  v: 'attention.v_lin',
  o: 'attention.out_lin',
  attnNorm: 'sa_layer_norm',
  up: 'ffn.lin1',
  down: 'ffn.lin2',
  outNorm: 'output_layer_norm',
};

export function layerNames(layout: BertLayout): LayerNames {
  return layout === 'distilbert' ? DISTILBERT_NAMES : BERT_NAMES;
}

/** Module path of encoder layer i, e.g. `bert.encoder.layer.0`, `distilbert.transformer.layer.0`. */
export function layerPath(c: BertConfig, i: number): string {
  return c.layout === 'distilbert' ? `distilbert.transformer.layer.${i}` : `${c.prefix}.encoder.layer.${i}`;
}

/**
 * The classification head as two Linears on the first token's hidden state, `first` (H → H, then `act`) and `last`
 * (H → labels). BERT's `first` is the pooler, part of the base model; RoBERTa's and DistilBERT's belong to the head.
 */
export interface HeadLayout {
  first: string;
  act: 'tanh' | 'relu';
  last: string;
}

export function headLayout(c: BertConfig): HeadLayout {
  if (c.layout === 'bert') return { first: `${c.prefix}.pooler.dense`, act: 'tanh', last: 'classifier' };
  if (c.layout === 'roberta') return { first: 'classifier.dense', act: 'tanh', last: 'classifier.out_proj' };
  return { first: 'pre_classifier', act: 'relu', last: 'classifier' };
}

/** Adds the base-model prefix to bare encoder keys and renames gamma/beta to weight/bias; `where` (the model
 *  folder) is named when two keys become the same weight. */

/** The weights every checkpoint of this layout must have, with their shapes (the head and pooler are optional). */
export function requiredBertWeights(c: BertConfig): Map<string, number[]> {
  const h = c.hiddenSize;
  const emb = `${c.prefix}.embeddings`;
  const req = new Map<string, number[]>([
    [`${emb}.word_embeddings.weight`, [c.vocabSize, h]],
    [`${emb}.position_embeddings.weight`, [c.positionRows, h]],
    [`${emb}.LayerNorm.weight`, [h]],
    [`${emb}.LayerNorm.bias`, [h]],
  ]);
  if (c.typeVocabSize > 0) req.set(`${emb}.token_type_embeddings.weight`, [c.typeVocabSize, h]);
  const n = layerNames(c.layout);
  for (let i = 0; i < c.numLayers; i++) {
    const p = layerPath(c, i);
    const linear = (name: string, out: number, inp: number) => {
      req.set(`${p}.${name}.weight`, [out, inp]);
      req.set(`${p}.${name}.bias`, [out]);
    };
    for (const name of [n.q, n.k, n.v, n.o]) linear(name, h, h);
    linear(n.up, c.intermediateSize, h);
    linear(n.down, h, c.intermediateSize);
    for (const name of [n.attnNorm, n.outNorm]) {
      req.set(`${p}.${name}.weight`, [h]);
      req.set(`${p}.${name}.bias`, [h]);
    }
  }
  return req;
}
