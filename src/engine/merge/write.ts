// The merged model's files, written as transformers' save_pretrained writes them: safetensors in the checkpoint's own
// dtypes (tensors the merge does not touch are copied byte for byte), split into shards of at most max_shard_size
// with model.safetensors.index.json ({metadata: {total_size}, weight_map}) when larger, and the tokenizer files
// copied. Tensors are read from and written to disk one at a time, so a large model is never held twice.
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';

/** One tensor of a checkpoint on disk: where its bytes are. */
export interface StoredTensor {
  key: string;
  dtype: string; // safetensors dtype: F32, F16, BF16, F64, I64, ...
  shape: number[];
  file: string;
  begin: number; // absolute byte offsets in `file`
  end: number;
}

/** A tensor to write: its bytes are produced when its turn comes. */
export interface OutTensor {
  key: string;
  dtype: string;
  shape: number[];
  byteLength: number;
  bytes: () => Buffer;
}

export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja', // the chat template, when it is not in tokenizer_config.json
  'special_tokens_map.json',
  'vocab.txt',
  'merges.txt',
  'vocab.json',
  'tokenizer.model',
  'added_tokens.json',
  'generation_config.json',
];

const FLOAT_BYTES: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8 };
const LITTLE_ENDIAN = endianness() === 'LE';

/** Every tensor of a model folder (model.safetensors, or the shards of model.safetensors.index.json). */
export function listStoredTensors(dir: string): StoredTensor[] {
  const single = path.join(dir, 'model.safetensors');
  if (fs.existsSync(single)) return readHeader(single);
  const indexFile = path.join(dir, 'model.safetensors.index.json');
  if (!fs.existsSync(indexFile)) {
    throw new LoraPlusError({
      code: 'merge/no-weights',
      message: 'the base model folder has no model.safetensors or model.safetensors.index.json',
      file: dir,
      hint: 'Merging needs the base model in safetensors format.',
    });
  }
  const index = JSON.parse(fs.readFileSync(indexFile, 'utf8')) as { weight_map?: Record<string, string> };
  const shards = [...new Set(Object.values(index.weight_map ?? {}))];
  return shards.flatMap((s) => readHeader(path.join(dir, s)));
}

function readHeader(file: string): StoredTensor[] {
  const fd = fs.openSync(file, 'r');
  try {
    const len = Buffer.alloc(8);
    fs.readSync(fd, len, 0, 8, 0);
    const n = Number(len.readBigUInt64LE(0));
    const head = Buffer.alloc(n);
    fs.readSync(fd, head, 0, n, 8);
    const header = JSON.parse(head.toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    return Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([key, e]) => ({
        key,
        dtype: e.dtype,
        shape: e.shape,
        file,
        begin: 8 + n + e.data_offsets[0],
        end: 8 + n + e.data_offsets[1],
      }));
  } finally {
    fs.closeSync(fd);
  }
}

export function readStoredBytes(t: StoredTensor): Buffer {
  const fd = fs.openSync(t.file, 'r');
  try {
    const buf = Buffer.alloc(t.end - t.begin);
    let pos = 0;
    while (pos < buf.length) pos += fs.readSync(fd, buf, pos, buf.length - pos, t.begin + pos);
    return buf;
  } finally {
    fs.closeSync(fd);
  }
}

export function isFloatDtype(dtype: string): boolean {
  return dtype in FLOAT_BYTES;
}

// ---- float encodings ------------------------------------------------------------------------------------------

/** Little-endian F32/F16/BF16/F64 bytes → float32 values. */
export function decodeFloats(dtype: string, bytes: Buffer): Float32Array {
  const n = bytes.length / FLOAT_BYTES[dtype];
  const out = new Float32Array(n);
  if (dtype === 'F32' && LITTLE_ENDIAN)
    new Uint8Array(out.buffer).set(bytes); // a copy into aligned memory
  else if (dtype === 'F32') for (let i = 0; i < n; i++) out[i] = bytes.readFloatLE(4 * i);
  else if (dtype === 'F64') for (let i = 0; i < n; i++) out[i] = bytes.readDoubleLE(8 * i);
  else if (dtype === 'BF16') for (let i = 0; i < n; i++) out[i] = bf16ToFloat(bytes.readUInt16LE(2 * i));
  else if (dtype === 'F16') for (let i = 0; i < n; i++) out[i] = f16ToFloat(bytes.readUInt16LE(2 * i));
  else throw new Error(`internal: ${dtype} is not a float dtype`);
  return out;
}

/** float32 values → little-endian bytes of `dtype`, rounding to nearest even as torch's casts do. */
export function encodeFloats(dtype: string, values: Float32Array): Buffer {
  if (dtype === 'F32' && LITTLE_ENDIAN) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  const buf = Buffer.alloc(values.length * FLOAT_BYTES[dtype]);
  if (dtype === 'F32') for (let i = 0; i < values.length; i++) buf.writeFloatLE(values[i], 4 * i);
  else if (dtype === 'F64') for (let i = 0; i < values.length; i++) buf.writeDoubleLE(values[i], 8 * i);
  else if (dtype === 'BF16') for (let i = 0; i < values.length; i++) buf.writeUInt16LE(floatToBf16(values[i]), 2 * i);
  else if (dtype === 'F16') for (let i = 0; i < values.length; i++) buf.writeUInt16LE(floatToF16(values[i]), 2 * i);
  else throw new Error(`internal: ${dtype} is not a float dtype`);
  return buf;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0];
}

function floatToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if (Number.isNaN(x)) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff; // round to nearest, ties to even
}

function f16ToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const man = h & 0x3ff;
  if (exp === 0) return sign * man * 2 ** -24;
  if (exp === 31) return man ? NaN : sign * Infinity;
  return sign * (1 + man / 1024) * 2 ** (exp - 15);
}

function floatToF16(x: number): number {
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const a = Math.abs(x);
  if (a >= 65520) return sign | 0x7c00; // rounds past the largest half (65504): infinity
  if (a < 2 ** -24 / 2) return sign; // below half the smallest subnormal
  let exp = Math.floor(Math.log2(a));
  if (2 ** exp > a) exp--; // log2 rounding at powers of two
  // Subnormal: units of 2^-24 (a carry into 0x400 is the smallest normal).
  if (exp < -14) return sign | roundEven(a / 2 ** -24);
  const man = roundEven((a / 2 ** exp - 1) * 1024);
  return man === 1024 ? sign | ((exp + 16) << 10) : sign | ((exp + 15) << 10) | man; // a carry bumps the exponent
}

function roundEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  return d > 0.5 || (d === 0.5 && f % 2 === 1) ? f + 1 : f;
}

// ---- sizes and shards ---------------------------------------------------------------------------------------------

/**
 * transformers' convert_file_size_to_int: "5GB" = 5·10⁹ bytes, "5GiB" = 5·2³⁰, "200MB", "100KB",
 * or a byte count.
 */
export function parseShardSize(size: string | number): number {
  if (typeof size === 'number') return size;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$/i.exec(size);
  if (!m) {
    throw new LoraPlusError({
      code: 'merge/bad-shard-size',
      message: `--max-shard-size '${size}' is not a size`,
      hint: 'Write it as transformers does, e.g. 5GB, 500MB, 2GiB, or a number of bytes.',
    });
  }
  const unit = (m[2] ?? 'B').toUpperCase();
  const pow = { B: 0, K: 1, M: 2, G: 3, T: 4 }[unit[0] as 'B' | 'K' | 'M' | 'G' | 'T'];
  const base = unit.includes('I') ? 1024 : 1000;
  return Math.floor(Number(m[1]) * base ** pow);
}

/**
 * Writes `tensors` into `dir` as model.safetensors, or as model-0000i-of-0000n.safetensors shards of at most
 * `maxShardSize` bytes each (a larger tensor gets a shard of its own, as in transformers) plus the index.
 * Returns the file names written.
 */
export function writeShards(dir: string, tensors: OutTensor[], maxShardSize: number): string[] {
  const sorted = [...tensors].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const shards: OutTensor[][] = [[]];
  let size = 0;
  for (const t of sorted) {
    const current = shards[shards.length - 1];
    if (current.length && size + t.byteLength > maxShardSize) {
      shards.push([]);
      size = 0;
    }
    shards[shards.length - 1].push(t);
    size += t.byteLength;
  }
  if (shards.length === 1) {
    writeShard(path.join(dir, 'model.safetensors'), shards[0]);
    return ['model.safetensors'];
  }
  const n = shards.length;
  const names = shards.map(
    (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`,
  );
  const weightMap: Record<string, string> = {};
  let total = 0;
  shards.forEach((shard, i) => {
    writeShard(path.join(dir, names[i]), shard);
    for (const t of shard) {
      weightMap[t.key] = names[i];
      total += t.byteLength;
    }
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return [...names, 'model.safetensors.index.json'];
}

// [u64 header length][header JSON, space-padded to 8 bytes][data in key order], as the Rust crate writes.
function writeShard(file: string, tensors: OutTensor[]): void {
  const parts: string[] = [];
  let offset = 0;
  for (const t of tensors) {
    const entry = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.byteLength] };
    parts.push(`${JSON.stringify(t.key)}:${JSON.stringify(entry)}`);
    offset += t.byteLength;
  }
  parts.push('"__metadata__":{"format":"pt"}');
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    writeAll(fd, len);
    writeAll(fd, header);
    for (const t of tensors) {
      const bytes = t.bytes();
      if (bytes.length !== t.byteLength)
        throw new Error(`internal: tensor ${t.key} has ${bytes.length} bytes, expected ${t.byteLength}`);
      writeAll(fd, bytes);
    }
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

function writeAll(fd: number, buf: Buffer): void {
  let pos = 0;
  while (pos < buf.length) pos += fs.writeSync(fd, buf, pos, buf.length - pos);
}

/** Copies the tokenizer (and generation config) files the base folder has; returns their names. */
export function copyTokenizerFiles(from: string, to: string): string[] {
  const copied: string[] = [];
  for (const name of TOKENIZER_FILES) {
    const src = path.join(from, name);
    if (fs.existsSync(src)) {
      fs.copyFileSync(src, path.join(to, name));
      copied.push(name);
    }
  }
  return copied;
}
