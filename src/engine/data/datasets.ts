// Data sets for training and eval: rows (see rows.ts) → token ids, split off an eval set, the order of each epoch,
// and batches as flat row-major [batch, seq] arrays. No tensors here: train/inputs.ts moves batches to the device.
import { LoraPlusError } from '../../protocol/errors';
import type { TextTokenizer } from '../../models/tokenizer';
import { atRow, isPretokenized, pretokenized, textOf } from './fields';
import { collectLabels, labelIndexer, rowName } from './labels';
import { hashSeed, Rng } from './rng';
import { lineOf, type Row } from './rows';

export { lineOf, readRows, SUPPORTED_EXTENSIONS, type Row } from './rows';
export { collectLabels } from './labels';

// ---- causal LM: concatenate and pack (as run_clm.py's group_texts) -------------------------------------------

export interface CausalLMData {
  kind: 'causal-lm';
  blocks: Int32Array[]; // each exactly maxLength ids
  tokens: number; // ids in the blocks (the partial tail is dropped)
}

/** What building a data set needs besides the rows and the tokenizer. */
interface BuildOptions {
  maxLength: number;
  file: string;
  /** The model's vocabulary (embedding rows) that pre-tokenized ids must fit; the tokenizer's size by default. */
  vocabSize?: number;
  typeVocabSize?: number | null;
  /** Called after each row with the rows done so far: long preparations report progress through it. */
  onRow?: (done: number) => void;
}

/**
 * Rows with `input_ids` are used as they are (less the padding an attention_mask marks); otherwise the text field
 * is encoded with the tokenizer's special tokens (BOS for Llama) and EOS is appended, so documents are separated
 * in the packed stream. Empty texts are skipped.
 */
export function buildCausalLM(rows: Row[], tok: TextTokenizer, o: BuildOptions & { textField: string }): CausalLMData {
  const limits = { vocabSize: o.vocabSize ?? tok.vocabSize, typeVocabSize: o.typeVocabSize };
  const stream: number[] = [];
  rows.forEach((row, i) => {
    if (isPretokenized(row)) {
      for (const id of pretokenized(row, i, o.file, limits).ids) stream.push(id);
    } else {
      const text = textOf(row, o.textField, i, o.file);
      if (text !== '') {
        const ids = atRow(row, o.file, () => tok.encode(text, { addSpecialTokens: true }).ids);
        if (tok.eosId !== null && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
        for (const id of ids) stream.push(id);
      }
    }
    o.onRow?.(i + 1);
  });
  const n = Math.floor(stream.length / o.maxLength);
  if (n === 0) {
    throw new LoraPlusError({
      code: 'data/too-short',
      message: `max_length ${o.maxLength} is longer than the data (${stream.length} tokens in ${rows.length} rows)`,
      file: o.file,
      yamlPath: 'data.max_length',
      hint: `Lower data.max_length to at most ${stream.length}, or add more text.`,
    });
  }
  const blocks: Int32Array[] = [];
  for (let b = 0; b < n; b++) blocks.push(Int32Array.from(stream.slice(b * o.maxLength, (b + 1) * o.maxLength)));
  return { kind: 'causal-lm', blocks, tokens: n * o.maxLength };
}

// ---- sequence classification -----------------------------------------------------------------------------

export interface ClsExample {
  ids: number[];
  typeIds: number[];
  label: number;
}
export interface ClsData {
  kind: 'sequence-classification';
  examples: ClsExample[];
  labels: string[];
}

export interface ClsOptions extends BuildOptions {
  textField: string;
  textPairField?: string | null;
  labelField: string;
  labels?: string[] | null; // names in label-id order; null: collected from these rows
  /**
   * The training file `labels` were collected from (null: they are data.labels, and an integer label may also be
   * an index into them). A label that is not among them is then an error that says so.
   */
  labelsFrom?: string | null;
}

/**
 * Texts (or pairs: BERT's `[CLS] A [SEP] B [SEP]`, RoBERTa's `<s> A </s></s> B </s>`) are encoded with special
 * tokens and truncated to maxLength as transformers' fast tokenizers do with truncation=True: the texts are cut
 * (`longest_first` for pairs), the special tokens stay, so a long text still ends the way the model was trained to
 * see. Pre-tokenized rows (`input_ids`, optional `attention_mask` and `token_type_ids`) are only cut to maxLength.
 * Labels are matched by value: 1, 1.0 and "1" are one class.
 */
export function buildClassification(rows: Row[], tok: TextTokenizer, o: ClsOptions): ClsData {
  const given = o.labels?.length ? o.labels.map(String) : null;
  const labels = given ?? collectLabels(rows, o);
  const labelOf = labelIndexer(
    { labels, byIndex: given !== null && !o.labelsFrom, from: o.labelsFrom ?? undefined },
    o,
  );
  const limits = { vocabSize: o.vocabSize ?? tok.vocabSize, typeVocabSize: o.typeVocabSize };
  const examples = rows.map((row, i): ClsExample => {
    const label = labelOf(row, i);
    let e: { ids: number[]; typeIds: number[] };
    if (isPretokenized(row)) {
      const p = pretokenized(row, i, o.file, limits);
      e = { ids: p.ids.slice(0, o.maxLength), typeIds: p.typeIds.slice(0, o.maxLength) };
    } else {
      const text = textOf(row, o.textField, i, o.file);
      const pair = o.textPairField ? textOf(row, o.textPairField, i, o.file, 'data.text_pair_field') : undefined;
      e = atRow(row, o.file, () => tok.encode(text, { addSpecialTokens: true, pair, maxLength: o.maxLength }));
      if (e.ids.length > o.maxLength) {
        // Only the special tokens are left, and they alone are longer than max_length (e.g. RoBERTa's 4 for a pair).
        throw new LoraPlusError({
          code: 'data/max-length-too-short',
          message:
            `max_length ${o.maxLength} cannot hold ` +
            `the ${e.ids.length} special tokens the tokenizer adds${pair === undefined ? '' : ' to a pair'}`,
          file: o.file,
          yamlPath: 'data.max_length',
          hint: `Set data.max_length to at least ${e.ids.length + 2}.`,
        });
      }
    }
    if (e.ids.length === 0) {
      // A classifier reads the last token (or [CLS]): with none there is nothing to classify.
      throw new LoraPlusError({
        code: 'data/empty-example',
        message: `${rowName(row, i)} has no tokens (${isPretokenized(row) ? 'input_ids is empty' : 'an empty text'})`,
        file: o.file,
        line: lineOf(row),
        hint: 'Remove the row, or give it text.',
      });
    }
    o.onRow?.(i + 1);
    return { ids: e.ids, typeIds: e.typeIds, label };
  });
  return { kind: 'sequence-classification', examples, labels };
}

// ---- splits, order, batches ------------------------------------------------------------------------------

/**
 * A seeded random eval split; both parts keep the file's order. The same (items, fraction, seed) → the same split.
 */
export function splitEval<T>(items: T[], fraction: number, seed: number): { train: T[]; eval: T[] } {
  if (!(fraction >= 0 && fraction < 1)) {
    throw new LoraPlusError({
      code: 'data/bad-eval-fraction',
      message: `eval_fraction must be in [0, 1), got ${fraction}`,
      yamlPath: 'data.eval_fraction',
    });
  }
  const n = items.length;
  const nEval = fraction === 0 ? 0 : Math.min(n - 1, Math.max(1, Math.round(n * fraction)));
  if (nEval <= 0) return { train: [...items], eval: [] };
  const picked = new Uint8Array(n);
  const order = new Rng(hashSeed(seed, 0x5e1ec7)).shuffle(Array.from({ length: n }, (_, k) => k));
  for (let k = 0; k < nEval; k++) picked[order[k]] = 1;
  return { train: items.filter((_, k) => !picked[k]), eval: items.filter((_, k) => picked[k]) };
}

/** The example order of one epoch, a function of (seed, epoch) only, so a resumed run continues the same order. */
export function epochOrder(n: number, seed: number, epoch: number, shuffle: boolean): number[] {
  const order = Array.from({ length: n }, (_, k) => k);
  return shuffle ? new Rng(hashSeed(seed, 0xe90c, epoch)).shuffle(order) : order;
}

/** A batch as flat row-major [batch, seq] int32 arrays. */
export interface Batch {
  inputIds: Int32Array;
  attentionMask: Int32Array; // 1 = token, 0 = padding
  typeIds: Int32Array;
  labels: Int32Array | null; // [batch] class ids; null for causal LM (the model shifts inputIds)
  lossMask?: Int32Array; // sft: 1 where the token is a target (its prediction from the token before carries loss)
  segmentIds?: Int32Array; // packed sft: 1, 2, … per example in a row, 0 for padding; examples see only themselves
  positionIds?: Int32Array; // packed sft: positions restart at 0 for each example
  batch: number;
  seq: number;
  tokens: number; // real (non-padding) tokens
}

export function collateCausal(blocks: Int32Array[]): Batch {
  if (blocks.length === 0) throw new Error('collateCausal: empty batch');
  const seq = blocks[0].length;
  const inputIds = new Int32Array(blocks.length * seq);
  blocks.forEach((b, r) => {
    if (b.length !== seq) throw new Error(`collateCausal: block ${r} has ${b.length} ids, block 0 has ${seq}`);
    inputIds.set(b, r * seq);
  });
  return {
    inputIds,
    attentionMask: new Int32Array(inputIds.length).fill(1),
    typeIds: new Int32Array(inputIds.length),
    labels: null,
    batch: blocks.length,
    seq,
    tokens: inputIds.length,
  };
}

/**
 * Right-pads to the longest example in the batch (dynamic padding) with padId and mask 0, rounded up to a multiple
 * of `multipleOf` (transformers' pad_to_multiple_of).
 */
export function collateClassification(ex: ClsExample[], padId: number, multipleOf = 1): Batch {
  if (ex.length === 0) throw new Error('collateClassification: empty batch');
  const seq = Math.ceil(Math.max(...ex.map((e) => e.ids.length)) / multipleOf) * multipleOf;
  const inputIds = new Int32Array(ex.length * seq).fill(padId);
  const attentionMask = new Int32Array(ex.length * seq);
  const typeIds = new Int32Array(ex.length * seq);
  let tokens = 0;
  ex.forEach((e, r) => {
    inputIds.set(e.ids, r * seq);
    attentionMask.fill(1, r * seq, r * seq + e.ids.length);
    typeIds.set(e.typeIds.slice(0, e.ids.length), r * seq);
    tokens += e.ids.length;
  });
  return {
    inputIds,
    attentionMask,
    typeIds,
    labels: Int32Array.from(ex.map((e) => e.label)),
    batch: ex.length,
    seq,
    tokens,
  };
}

/** Tokens in a data set that training sees: packed blocks, or the unpadded examples. */
export function countTokens(ds: CausalLMData | ClsData): number {
  return ds.kind === 'causal-lm' ? ds.tokens : ds.examples.reduce((s, e) => s + e.ids.length, 0);
}
