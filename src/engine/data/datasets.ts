// Data sets for training and eval: rows (see rows.ts) → token ids, split off an eval set, the order of each epoch,
// and batches as flat row-major [batch, seq] arrays. No tensors here: train/inputs.ts moves batches to the device.
import { LoraPlusError } from '../../protocol/errors';
import type { TextTokenizer } from '../../models/tokenizer';
import { hashSeed, Rng } from './rng';
import { lineOf, type Row } from './rows';

export { lineOf, readRows, SUPPORTED_EXTENSIONS, type Row } from './rows';

// ---- causal LM: concatenate and pack (as run_clm.py's group_texts) -------------------------------------------

export interface CausalLMData {
  kind: 'causal-lm';
  blocks: Int32Array[]; // each exactly maxLength ids
  tokens: number; // ids in the blocks (the partial tail is dropped)
}

/**
 * Rows with `input_ids` are used as they are; otherwise the text field is encoded with the tokenizer's special
 * tokens (BOS for Llama) and EOS is appended, so documents are separated in the packed stream. Empty texts are skipped.
 */
export function buildCausalLM(
  rows: Row[],
  tok: TextTokenizer,
  o: { textField: string; maxLength: number; file: string },
): CausalLMData {
  const stream: number[] = [];
  rows.forEach((row, i) => {
    if ('input_ids' in row) {
      for (const id of idList(row, 'input_ids', i, o.file)) stream.push(id);
      return;
    }
    const text = textOf(row, o.textField, i, o.file);
    if (text === '') return;
    const ids = tok.encode(text, { addSpecialTokens: true }).ids;
    if (tok.eosId !== null && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
    for (const id of ids) stream.push(id);
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

export interface ClsOptions {
  textField: string;
  textPairField?: string | null;
  labelField: string;
  labels?: string[] | null; // names in label-id order; null: collected from these rows
  maxLength: number;
  file: string;
}

/**
 * Texts (or pairs: BERT's `[CLS] A [SEP] B [SEP]`, RoBERTa's `<s> A </s></s> B </s>`) are encoded with special
 * tokens and truncated to maxLength as transformers' fast tokenizers do with truncation=True: the texts are cut
 * (`longest_first` for pairs), the special tokens stay, so a long text still ends the way the model was trained to
 * see. Pre-tokenized rows (`input_ids`, optional `attention_mask` and `token_type_ids`) are only cut to maxLength.
 */
export function buildClassification(rows: Row[], tok: TextTokenizer, o: ClsOptions): ClsData {
  const labels = o.labels?.length ? o.labels.map(String) : collectLabels(rows, o);
  const examples = rows.map((row, i): ClsExample => {
    const label = labelIndex(row, i, labels, o);
    if ('input_ids' in row) {
      let ids = idList(row, 'input_ids', i, o.file);
      let typeIds = 'token_type_ids' in row ? idList(row, 'token_type_ids', i, o.file) : ids.map(() => 0);
      if ('attention_mask' in row) {
        const mask = idList(row, 'attention_mask', i, o.file);
        typeIds = typeIds.filter((_, k) => mask[k] !== 0); // padding is re-added per batch
        ids = ids.filter((_, k) => mask[k] !== 0);
      }
      return { ids: ids.slice(0, o.maxLength), typeIds: typeIds.slice(0, o.maxLength), label };
    }
    const text = textOf(row, o.textField, i, o.file);
    const pair = o.textPairField ? textOf(row, o.textPairField, i, o.file, 'data.text_pair_field') : undefined;
    const e = tok.encode(text, { addSpecialTokens: true, pair, maxLength: o.maxLength });
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
    return { ids: e.ids, typeIds: e.typeIds, label };
  });
  return { kind: 'sequence-classification', examples, labels };
}

const INT = /^-?\d+$/;

/**
 * Label names from the data: distinct values, sorted numerically when all are numbers (0, 1, 2, …), else as strings.
 */
export function collectLabels(rows: Row[], o: Pick<ClsOptions, 'labelField' | 'file'>): string[] {
  const values = [...new Set(rows.map((row, i) => rawLabel(row, i, o)))];
  const numeric = values.every((v) => v !== '' && Number.isFinite(Number(v)));
  return numeric ? values.sort((a, b) => Number(a) - Number(b)) : values.sort();
}

function labelIndex(row: Row, i: number, labels: string[], o: ClsOptions): number {
  const v = rawLabel(row, i, o);
  const byName = labels.indexOf(v);
  if (byName >= 0) return byName;
  if (INT.test(v) && Number(v) >= 0 && Number(v) < labels.length) return Number(v); // an index into data.labels
  throw new LoraPlusError({
    code: 'data/unknown-label',
    message:
      `label '${v}' (field '${o.labelField}' of ${rowName(row, i)}) ` +
      `is not one of the labels [${labels.join(', ')}]`,
    file: o.file,
    line: lineOf(row),
    hint: `Use one of those labels or its index 0..${labels.length - 1}, or add '${v}' to data.labels.`,
  });
}

function rawLabel(row: Row, i: number, o: Pick<ClsOptions, 'labelField' | 'file'>): string {
  const v = field(row, o.labelField, i, o.file, 'data.label_field');
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v).trim();
  throw badValue(row, i, o.file, o.labelField, v, 'a label (a name or an integer)');
}

// ---- row fields ------------------------------------------------------------------------------------------

/** Rows read from a file are placed by file:line; rows made in code by their index. */
function rowName(row: Row, i: number): string {
  return lineOf(row) ? 'the row' : `row ${i + 1}`;
}

function field(row: Row, name: string, i: number, file: string, yamlPath: string): unknown {
  if (row[name] !== undefined && row[name] !== null) return row[name];
  const fields = Object.keys(row);
  const known = fields.length ? fields.join(', ') : '(none)';
  throw new LoraPlusError({
    code: 'data/missing-field',
    message: `${rowName(row, i)} has no field '${name}'; its fields are: ${known}`,
    file,
    line: lineOf(row),
    yamlPath,
    hint: `Set ${yamlPath} to the field that holds it, or add '${name}' to every row.`,
  });
}

function textOf(row: Row, name: string, i: number, file: string, yamlPath = 'data.text_field'): string {
  const v = field(row, name, i, file, yamlPath);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw badValue(row, i, file, name, v, 'text');
}

function idList(row: Row, name: string, i: number, file: string): number[] {
  const v = row[name];
  if (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0)) return v as number[];
  throw badValue(row, i, file, name, v, 'a list of non-negative integer token ids');
}

function badValue(row: Row, i: number, file: string, name: string, v: unknown, expected: string): LoraPlusError {
  const shown = JSON.stringify(v) ?? String(v);
  return new LoraPlusError({
    code: 'data/bad-value',
    message:
      `field '${name}' of ${rowName(row, i)} should be ${expected} ` +
      `but is ${shown.length > 60 ? `${shown.slice(0, 60)}…` : shown}`,
    file,
    line: lineOf(row),
  });
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
