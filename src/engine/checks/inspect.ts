// What the config checks need to know about a model folder and a data file, read cheaply: no weights, no
// tokenizing. A model's module names come from the safetensors headers (the JSON before the data: names, dtypes,
// shapes), passed through the family's key normalisation so they are the Hugging Face module paths that
// `target_modules` is matched against; its positions come from config.json through the family's config parser.
// Results are cached by file size and mtime, so an editor can re-check a config on every change.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { HostTensor } from '../../adapters/safetensors';
import { EMBEDDING_NAME } from '../../config/rules';
import { parseBertConfig } from '../../models/bert/config';
import { normalizeBertKeys } from '../../models/bert/weights';
import { parseGpt2Config } from '../../models/gpt2/config';
import { normalizeGpt2Keys } from '../../models/gpt2/weights';
import { parseLlamaConfig } from '../../models/llama/config';
import { normalizeLlamaKeys } from '../../models/llama/weights';
import { FAMILIES, type Family } from '../../models/registry';
import type { HFConfig } from '../../models/types';
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import { readRows, SUPPORTED_EXTENSIONS } from '../data/rows';

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
    const keys = layout ? layout.normalize(header, raw, configFile) : header;
    const linears = new Map<string, [number, number]>();
    const embeddings: string[] = [];
    for (const [key, t] of keys) {
      if (!key.endsWith('.weight') || t.shape.length !== 2) continue; // biases, norms, buffers
      const module = key.slice(0, -'.weight'.length);
      if (EMBEDDING_NAME.test(module)) embeddings.push(module);
      else linears.set(module, [t.shape[0], t.shape[1]]);
    }
    return {
      ok: true,
      value: { dir, config: raw, family, linears, embeddings, positions: layout?.positions(raw, configFile) ?? null },
    };
  } catch (err) {
    if (err instanceof LoraPlusError) return fail(err.code, err.info.message, err.info.hint);
    throw err;
  }
}

// The normalisers take tensors but only rename keys; the headers give shapes, so the data is an empty stand-in.
const NO_DATA = new Float32Array(0);

interface Layout {
  normalize(header: Map<string, HostTensor>, raw: HFConfig, file: string): Map<string, HostTensor>;
  positions(raw: HFConfig, file: string): { max: number; learned: boolean };
}

/** Per family: its key normalisation and its position limit (RoBERTa's ids start after padding_idx). */
const LAYOUTS: Record<string, Layout> = {
  llama: {
    normalize: (h) => normalizeLlamaKeys(h),
    positions: (raw, f) => ({ max: parseLlamaConfig(raw, f).maxPositions, learned: false }),
  },
  gpt2: {
    normalize: (h) => normalizeGpt2Keys(h),
    positions: (raw, f) => ({ max: parseGpt2Config(raw, f).maxPositions, learned: true }),
  },
  bert: {
    normalize: (h, raw, f) => normalizeBertKeys(h, parseBertConfig(raw, f)),
    positions: (raw, f) => {
      const c = parseBertConfig(raw, f);
      return { max: c.layout === 'roberta' ? c.positionRows - c.padTokenId - 1 : c.positionRows, learned: true };
    },
  },
};

/** Tensor names and shapes of `model.safetensors`, or of every shard in `model.safetensors.index.json`. */
function readWeightHeaders(dir: string): Map<string, HostTensor> {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const files = fs.existsSync(single) ? [single] : fs.existsSync(index) ? shardsOf(index) : missingWeights(dir);
  const out = new Map<string, HostTensor>();
  for (const file of files) {
    for (const [name, entry] of Object.entries(readHeader(file))) {
      const shape = (entry as { shape?: unknown }).shape;
      if (name !== '__metadata__' && Array.isArray(shape))
        out.set(name, { dtype: 'float32', shape: shape as number[], data: NO_DATA });
    }
  }
  return out;
}

function shardsOf(indexFile: string): string[] {
  let weightMap: unknown;
  try {
    weightMap = (JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: unknown }).weight_map;
  } catch (err) {
    throw new LoraPlusError({
      code: 'weights/bad-index',
      message: `${indexFile} is not valid JSON (${(err as Error).message})`,
    });
  }
  if (!weightMap || typeof weightMap !== 'object')
    throw new LoraPlusError({ code: 'weights/bad-index', message: `${indexFile} has no weight_map` });
  const shards = [...new Set(Object.values(weightMap as Record<string, string>))].map((s) =>
    path.join(path.dirname(indexFile), s),
  );
  const missing = shards.find((s) => !fs.existsSync(s));
  if (missing)
    throw new LoraPlusError({
      code: 'weights/bad-index',
      message: `shard ${path.basename(missing)} is listed in the index but missing`,
      hint: 'Download the model again.',
    });
  return shards;
}

/** The same diagnosis loadModelWeights gives a folder without safetensors weights. */
function missingWeights(dir: string): never {
  const files = fs.readdirSync(dir);
  const torch = files.filter((f) => /\.(bin|pt|pth|h5|msgpack|ckpt)$/.test(f));
  if (torch.length) {
    throw new LoraPlusError({
      code: 'weights/pytorch-format',
      message: `${dir} has ${torch.join(', ')} but no model.safetensors; only safetensors weights can be read`,
      hint:
        'Convert it once in Python: ' +
        '`AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`.',
    });
  }
  if (files.includes('adapter_config.json')) {
    throw new LoraPlusError({
      code: 'weights/is-adapter',
      message: `${dir} is a PEFT adapter folder, not a base model`,
      hint:
        'Point model at the base model (base_model_name_or_path in adapter_config.json), ' +
        'and this folder at lora.init_adapter.',
    });
  }
  throw new LoraPlusError({
    code: 'weights/not-found',
    message: `${dir} has no weights (model.safetensors or model.safetensors.index.json)`,
    hint: 'Download the whole model from the Hub, including its .safetensors files.',
  });
}

/** The JSON header of a safetensors file: [u64 LE length][JSON]; only those bytes are read. */
function readHeader(file: string): Record<string, unknown> {
  const bad = (
    message: string,
    hint = 'The file is damaged or not a safetensors file: download it again.',
  ): LoraPlusError => new LoraPlusError({ code: 'safetensors/bad-header', message: `${file}: ${message}`, hint });
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(Math.min(24, size));
    fs.readSync(fd, head, 0, head.length, 0);
    if (head.toString('latin1').startsWith('version https://git-lfs'))
      throw bad('this is a Git LFS pointer, not the weights', 'Run `git lfs pull` in the model folder.');
    if (size < 8) throw bad(`the file is ${size} bytes, shorter than the header length`);
    const len = Number(head.readBigUInt64LE(0));
    if (8 + len > size || len > 100_000_000) throw bad(`header length ${len} does not fit the file (${size} bytes)`);
    const json = Buffer.alloc(len);
    fs.readSync(fd, json, 0, len, 8);
    const header: unknown = JSON.parse(json.toString('utf8'));
    if (!isObject(header)) throw bad('the header is not a JSON object');
    return header;
  } catch (err) {
    if (err instanceof SyntaxError) throw bad(`the header is not valid JSON (${err.message})`);
    throw err;
  } finally {
    fs.closeSync(fd);
  }
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
    return { ok: true, value: { columns, pretokenized: sample.some((r) => 'input_ids' in r), rows: rows.length } };
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
    return { columns, pretokenized: false, rows: Math.max(0, lines - 1) };
  }
  if (ext === '.jsonl') {
    const sample = first.slice(0, SAMPLE_ROWS).flatMap((l) => {
      try {
        const v: unknown = JSON.parse(l);
        return isObject(v) ? [Object.keys(v)] : [];
      } catch {
        return []; // the last, cut-off line of the sample
      }
    });
    const columns = [...new Set(sample.flat())];
    return { columns, pretokenized: columns.includes('input_ids'), rows: lines };
  }
  return { columns: ext === '.txt' ? ['text'] : [], pretokenized: false, rows: lines };
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
