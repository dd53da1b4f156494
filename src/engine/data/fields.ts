// Reading one field of a data row, with errors that name the field, the file and the line. Pre-tokenized rows
// (`input_ids`, with optional `attention_mask` and `token_type_ids`) are checked id by id against the model's
// vocabulary: an id past it fails deep in the model (GatherV2), and one past 2^31 wraps silently in an Int32Array.
import { LoraPlusError } from '../../protocol/errors';
import { rowName } from './labels';
import { lineOf, type Row } from './rows';

/** What pre-tokenized ids must fit: the embedding rows of the model (and of its token types, where it has them). */
export interface IdLimits {
  vocabSize: number;
  typeVocabSize?: number | null;
}

export function field(row: Row, name: string, i: number, file: string, yamlPath: string): unknown {
  const v = Object.hasOwn(row, name) ? row[name] : undefined; // not `constructor` or `toString` of every object
  if (v !== undefined && v !== null) return v;
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

export function textOf(row: Row, name: string, i: number, file: string, yamlPath = 'data.text_field'): string {
  const v = field(row, name, i, file, yamlPath);
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw badValue(row, i, file, name, v, 'text');
}

export function isPretokenized(row: Row): boolean {
  return Object.hasOwn(row, 'input_ids');
}

/**
 * The ids of a pre-tokenized row and their token type ids, without the positions its attention_mask marks as
 * padding (batches are padded again). Every id must be an integer in [0, vocabSize).
 */
export function pretokenized(
  row: Row,
  i: number,
  file: string,
  limits: IdLimits,
): { ids: number[]; typeIds: number[] } {
  let ids = idList(row, 'input_ids', i, file, limits.vocabSize, `the model's vocabulary has ${limits.vocabSize} ids`);
  const types = limits.typeVocabSize ?? 2 ** 31; // unknown (Llama, GPT-2): only what an Int32Array holds
  let typeIds: number[] = Object.hasOwn(row, 'token_type_ids')
    ? idList(row, 'token_type_ids', i, file, types, `the model has ${types} token types`)
    : ids.map(() => 0);
  sameLength(row, i, file, 'token_type_ids', typeIds, ids);
  if (Object.hasOwn(row, 'attention_mask')) {
    const mask = idList(row, 'attention_mask', i, file, 2, '');
    sameLength(row, i, file, 'attention_mask', mask, ids);
    typeIds = typeIds.filter((_, k) => mask[k] !== 0);
    ids = ids.filter((_, k) => mask[k] !== 0);
  }
  return { ids, typeIds };
}

function idList(row: Row, name: string, i: number, file: string, limit: number, limitText: string): number[] {
  const v = row[name];
  if (!Array.isArray(v)) throw badValue(row, i, file, name, v, 'a list of non-negative integer token ids');
  const mask = name === 'attention_mask';
  const where = { file, line: lineOf(row), hint: pretokenizedHint };
  for (let k = 0; k < v.length; k++) {
    const x: unknown = v[k];
    const entry = `${name}[${k}] of ${rowName(row, i)} is ${shorten(x)}`;
    if (mask && x !== 0 && x !== 1) {
      throw new LoraPlusError({ code: 'data/bad-attention-mask', message: `${entry}; a mask holds 0 or 1`, ...where });
    }
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 0) {
      const message = `${entry}, not a token id (a non-negative integer)`;
      throw new LoraPlusError({ code: 'data/bad-token-id', message, ...where });
    }
    if (x >= limit) {
      throw new LoraPlusError({
        code: 'data/token-id-out-of-range',
        message: `${entry}, but ${limitText} (0 to ${limit - 1})`,
        ...where,
      });
    }
  }
  return v as number[];
}

const pretokenizedHint =
  "Pre-tokenized rows must come from this model's tokenizer: tokenize the text again with it, or drop input_ids " +
  'so that data.text_field is tokenized here.';

function sameLength(row: Row, i: number, file: string, name: string, list: number[], ids: number[]): void {
  if (list.length === ids.length) return;
  throw new LoraPlusError({
    code: 'data/length-mismatch',
    message: `${name} of ${rowName(row, i)} has ${list.length} entries but input_ids has ${ids.length}`,
    file,
    line: lineOf(row),
    hint: `${name} needs one entry per id of input_ids.`,
  });
}

export function badValue(row: Row, i: number, file: string, name: string, v: unknown, expected: string): LoraPlusError {
  return new LoraPlusError({
    code: 'data/bad-value',
    message: `field '${name}' of ${rowName(row, i)} should be ${expected} but is ${shorten(v)}`,
    file,
    line: lineOf(row),
  });
}

function shorten(v: unknown): string {
  const shown = typeof v === 'number' ? String(v) : (JSON.stringify(v) ?? String(v)); // Infinity, not null
  return shown.length > 60 ? `${shown.slice(0, 60)}…` : shown;
}

/** Runs `fn` (a tokenizer call) and places an error it throws without a file at the row's file and line. */
export function atRow<T>(row: Row, file: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof LoraPlusError && !err.info.file)
      throw new LoraPlusError({ ...err.info, file, line: lineOf(row) }, { cause: err });
    throw err;
  }
}
