// What the config checks need to know about a model folder and a data file, read cheaply: no weights, no
// tokenizing. A model's module names come from the safetensors headers (the JSON before the data: names, dtypes,
// shapes), read and checked by the loader's own header reader and index reader (so `validate`, `info` and `train`
// agree on what a damaged file is), and passed through the family's key normalisation so they are the Hugging Face
// module paths that `target_modules` is matched against; positions come from config.json through the family's parser.
// Results are cached by file size and mtime, so an editor can re-check a config on every change.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  FLOAT_DTYPES,
  modelWeightFiles,
  pickTensors,
  readSafetensorsHeader,
  type HostTensor,
  type TensorEntry,
} from '../../adapters/safetensors';
import { EMBEDDING_NAME } from '../../config/rules';
import { LAYOUTS, normalizeKeys } from '../../models/layouts';
import { FAMILIES, type Family } from '../../models/registry';
import type { HFConfig } from '../../models/types';
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import { detectFormat, toChatExample, type ChatFormat } from '../data/chat';
import { lineOf, readRows, SUPPORTED_EXTENSIONS, type Row } from '../data/rows';

/** A problem with the folder or file itself, reported at the config key that names it. */
export interface InspectProblem {
  code: string;
  message: string;
  hint?: string;
}

export interface ModelSummary {
  dir: string;
  config: HFConfig;
  family: Family;
  /** Every Linear module (Hugging Face path, e.g. `model.layers.0.self_attn.q_proj`) with its weight's two dims. */
  linears: Map<string, [number, number]>;
  /** Embedding tables (`model.embed_tokens`, `transformer.wte`): LoRA cannot adapt them here. */
  embeddings: string[];
  /** Token positions the model has, and whether they are a learned table (a hard limit) or rotary (a soft one). */
  positions: { max: number; learned: boolean } | null;
  /** Numbers in every float tensor, by module path + `.weight`/`.bias`: float32 in memory whatever the file's dtype. */
  tensors: Map<string, number>;
  /** Of those, the numbers stored as F32: the loader reads them as views of the file's bytes. */
  storedF32: number;
}

export type Inspected<T> = { ok: true; value: T } | { ok: false; problem: InspectProblem };

export function inspectModel(dir: string): Inspected<ModelSummary> {
  const files = [
    dir,
    ...['config.json', 'model.safetensors', 'model.safetensors.index.json'].map((f) => path.join(dir, f)),
  ];
  return cached(modelCache, dir, files, () => readModel(dir));
}

export interface DataSummary {
  columns: string[]; // field names of the first rows (or the header)
  pretokenized: boolean; // rows carry input_ids: no text field is needed
  rows: number; // data rows (exact up to BIG_FILE, else counted lines)
  chat: ChatSummary | null; // what task sft sees in the first rows; null when there are none
}

/** The rows as chat data (task sft): the format the first row has, and the assistant turns of the sample. */
export interface ChatSummary {
  format: ChatFormat | null; // detected from the first row as data.format: auto does; null: no chat format's fields
  sample: SampleRow[]; // the first SAMPLE_ROWS rows, to check against another data.format and to render
  turns: ChatTurns | null; // for the detected format, when it is a conversation (messages, sharegpt, alpaca, lists)
}
export interface SampleRow {
  row: Row;
  line: number | undefined; // 1-based, in the file
}
/** How many sampled rows have an assistant turn (what assistant_only_loss trains on); `without`: the first that has
 *  none. Rows that are not of the format are left out (the checks report the first of them). */
export interface ChatTurns {
  conversational: boolean; // false: plain text, or prompt/completion strings (nothing to pick turns from)
  rows: number;
  withAssistant: number;
  without?: SampleRow;
  roles: string[]; // the roles seen, for messages
  bad?: { at: SampleRow; error: LoraPlusError }; // the first row that is not of the format
}

export function inspectData(file: string): Inspected<DataSummary> {
  return cached(dataCache, file, [file], () => readData(file));
}

// ---- Models ----

function readModel(dir: string): Inspected<ModelSummary> {
  const configFile = path.join(dir, 'config.json');
  let raw: HFConfig;
  try {
    raw = JSON.parse(fs.readFileSync(configFile, 'utf8')) as HFConfig;
  } catch (err) {
    return fail(
      'model/bad-config',
      `${configFile} is not valid JSON (${(err as Error).message})`,
      'Use the config.json that came with the checkpoint.',
    );
  }
  const family = FAMILIES[String(raw.model_type)];
  if (!family)
    return fail(
      'model/unsupported',
      `model_type '${raw.model_type}' is not supported`,
      `Supported model types: ${Object.keys(FAMILIES).join(', ')}.`,
    );
  try {
    const layout = LAYOUTS[family.name];
    const header = readWeightHeaders(dir);
    const keys = normalizeKeys(family.name, header, raw, dir);
    const linears = new Map<string, [number, number]>();
    const embeddings: string[] = [];
    const tensors = new Map<string, number>();
    let storedF32 = 0;
    for (const [key, t] of keys) {
      if (t.dtype === 'float32') tensors.set(key, numbers(t.shape));
      if (dtypes.get(t) === 'F32') storedF32 += numbers(t.shape);
      if (!key.endsWith('.weight') || t.shape.length !== 2) continue; // biases, norms, buffers
      const module = key.slice(0, -'.weight'.length);
      // The loader refuses these when it builds the model (Weights.tensor): an integer table read as floats.
      if (t.dtype !== 'float32') {
        return fail(
          'model/bad-dtype',
          `${dir}: weight ${key} is stored as ${dtypes.get(t)}, but the model uses it as floats ` +
            `(${FLOAT_DTYPES.join(', ')})`,
          'The checkpoint is damaged or was converted wrongly: download or export it again.',
        );
      }
      if (EMBEDDING_NAME.test(module)) embeddings.push(module);
      else linears.set(module, [t.shape[0], t.shape[1]]);
    }
    return {
      ok: true,
      value: {
        dir,
        config: raw,
        family,
        linears,
        embeddings,
        positions: layout?.positions(raw, configFile) ?? null,
        tensors,
        storedF32,
      },
    };
  } catch (err) {
    if (!(err instanceof LoraPlusError)) throw err;
    const where = err.info.file && !err.info.message.includes(err.info.file) ? `${err.info.file}: ` : '';
    return fail(err.code, `${where}${err.info.message}`, err.info.hint);
  }
}

// The normalisers take tensors but only rename keys; the headers give shapes, so the data is an empty stand-in
// (int32 for an integer dtype, whose name `dtypes` keeps for the message).
const NO_FLOATS = new Float32Array(0);
const NO_INTS = new Int32Array(0);
const dtypes = new WeakMap<HostTensor, string>();

/** Tensor names and shapes of `model.safetensors`, or of every shard in `model.safetensors.index.json`. */
function readWeightHeaders(dir: string): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const w of modelWeightFiles(dir)) {
    const entries = new Map(readSafetensorsHeader(w.file).tensors.map((e) => [e.name, e]));
    for (const [name, e] of pickTensors<TensorEntry>(entries, w)) out.set(name, standIn(e));
  }
  return out;
}

const numbers = (shape: number[]): number => shape.reduce((n, d) => n * d, 1);

function standIn(e: TensorEntry): HostTensor {
  const float = FLOAT_DTYPES.includes(e.dtype);
  const t: HostTensor = { dtype: float ? 'float32' : 'int32', shape: e.shape, data: float ? NO_FLOATS : NO_INTS };
  dtypes.set(t, e.dtype);
  return t;
}

// ---- Data ----

/** Files up to this size are read whole (exact rows, and parse errors found now); larger ones only at the start. */
const BIG_FILE = 64 * 1024 * 1024;
const SAMPLE_ROWS = 100;

function readData(file: string): Inspected<DataSummary> {
  const ext = path.extname(file).toLowerCase();
  if (!(SUPPORTED_EXTENSIONS as readonly string[]).includes(ext)) {
    return fail(
      'data/unsupported-format',
      `cannot read '${ext || path.basename(file)}' files`,
      `Supported data files: ${SUPPORTED_EXTENSIONS.join(', ')}.`,
    );
  }
  if (!fs.existsSync(file)) return fail('data/not-found', `data file ${file} does not exist`);
  if (fs.statSync(file).size > BIG_FILE) return { ok: true, value: peekBigFile(file, ext) };
  try {
    const rows = readRows(file);
    const sample = rows.slice(0, SAMPLE_ROWS);
    const columns = [...new Set(sample.flatMap((r) => Object.keys(r)))];
    const chat = chatSummary(
      sample.map((row) => ({ row, line: lineOf(row) })),
      file,
    );
    return {
      ok: true,
      value: { columns, pretokenized: sample.some((r) => 'input_ids' in r), rows: rows.length, chat },
    };
  } catch (err) {
    if (!(err instanceof LoraPlusError)) throw err;
    const where = err.info.line ? `${file}:${err.info.line}: ` : `${file}: `;
    return fail(err.code, `${where}${err.info.message}`, err.info.hint);
  }
}

/** Columns from the header or the first lines, rows from counting lines (a CSV field with line breaks counts twice). */
function peekBigFile(file: string, ext: string): DataSummary {
  const fd = fs.openSync(file, 'r');
  const head = Buffer.alloc(1024 * 1024);
  let lines = 0;
  let text = '';
  try {
    let pos = 0;
    for (let n; (n = fs.readSync(fd, head, 0, head.length, pos)) > 0; pos += n) {
      if (pos === 0)
        text = head
          .subarray(0, n)
          .toString('utf8')
          .replace(/^\uFEFF/, '');
      for (let i = head.indexOf(10); i >= 0 && i < n; i = head.indexOf(10, i + 1)) lines++;
    }
  } finally {
    fs.closeSync(fd);
  }
  const first = text.split(/\r?\n/);
  if (ext === '.tsv' || ext === '.csv') {
    const columns = first[0].split(ext === '.tsv' ? '\t' : ',').map((h) => h.trim().replace(/^"(.*)"$/, '$1'));
    return { columns, pretokenized: false, rows: Math.max(0, lines - 1), chat: null };
  }
  if (ext === '.jsonl') {
    const sample = first.slice(0, SAMPLE_ROWS).flatMap((l, i): SampleRow[] => {
      try {
        const v: unknown = JSON.parse(l);
        return isObject(v) ? [{ row: v, line: i + 1 }] : [];
      } catch {
        return []; // the last, cut-off line of the sample
      }
    });
    const columns = [...new Set(sample.flatMap((s) => Object.keys(s.row)))];
    return { columns, pretokenized: columns.includes('input_ids'), rows: lines, chat: chatSummary(sample, file) };
  }
  return { columns: ext === '.txt' ? ['text'] : [], pretokenized: false, rows: lines, chat: null };
}

// ---- Chat data (task sft) ----

function chatSummary(sample: SampleRow[], file: string): ChatSummary | null {
  if (!sample.length) return null;
  const format = detectFormat(sample[0].row);
  return { format, sample, turns: format ? chatTurns(sample, format, file) : null };
}

/**
 * The sampled rows read as `format` (chat.ts toChatExample, as training reads them): which have an assistant turn.
 * `textField` only matters for the text format, which has no turns.
 */
export function chatTurns(
  sample: readonly SampleRow[],
  format: ChatFormat,
  file: string,
  textField = 'text',
): ChatTurns {
  const t: ChatTurns = { conversational: format !== 'text', rows: 0, withAssistant: 0, roles: [] };
  const roles = new Set<string>();
  for (const at of sample) {
    let ex;
    try {
      ex = toChatExample(at.row, format, file, textField);
    } catch (err) {
      if (!(err instanceof LoraPlusError)) throw err;
      t.bad ??= { at, error: err };
      continue;
    }
    if (ex.kind === 'text' || ex.kind === 'prompt_completion_text') {
      t.conversational = false;
      continue;
    }
    const messages = ex.kind === 'messages' ? ex.messages : [...ex.prompt, ...ex.completion];
    for (const m of messages) roles.add(m.role);
    t.rows++;
    if (messages.some((m) => m.role === 'assistant')) t.withAssistant++;
    else t.without ??= at;
  }
  t.roles = [...roles];
  return t;
}

// ---- Helpers ----

function fail<T>(code: string, message: string, hint?: string): Inspected<T> {
  return { ok: false, problem: { code, message, ...(hint ? { hint } : {}) } };
}

const modelCache = new Map<string, { stamp: string; value: Inspected<ModelSummary> }>();
const dataCache = new Map<string, { stamp: string; value: Inspected<DataSummary> }>();

/** `read()` once per version of `files` (sizes and mtimes; the folder's own mtime changes when files come or go). */
function cached<T>(
  cache: Map<string, { stamp: string; value: Inspected<T> }>,
  key: string,
  files: string[],
  read: () => Inspected<T>,
): Inspected<T> {
  const stamp = files
    .map((f) => {
      try {
        const s = fs.statSync(f);
        return `${s.size}:${s.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join('|');
  const hit = cache.get(key);
  if (hit?.stamp === stamp) return hit.value;
  const value = read();
  cache.set(key, { stamp, value });
  return value;
}
