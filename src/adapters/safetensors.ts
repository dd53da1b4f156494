// The safetensors format (https://github.com/huggingface/safetensors), read and written with plain typed arrays:
//   [u64 LE header length N][N bytes of UTF-8 JSON header][data section]
//   header: { "<name>": { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }
// Offsets are relative to the data section. Reading is strict: a damaged file fails here, naming the file and the
// tensor, rather than as NaNs three layers later.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { join } from 'node:path';
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';
import { writeFileAtomic } from './files';

/** A tensor on the host. Float data is always float32 and int data int32, whatever the file stored.
 *  Float32/int32 tensors read from a file may be views into the file's buffer (no copy). */
export interface HostTensor {
  dtype: 'float32' | 'int32';
  shape: number[];
  data: Float32Array | Int32Array;
}

export interface SafetensorsFile {
  tensors: Map<string, HostTensor>;
  metadata: Record<string, string>;
}

const MAX_HEADER_BYTES = 100_000_000; // the Rust crate's limit; anything larger is a damaged length field
const LITTLE_ENDIAN = endianness() === 'LE';
const DTYPE_BYTES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};
const CORRUPT_HINT = 'The file is damaged or not a safetensors file: download or export it again.';
const INT_HINT = 'Integer tensors are read as int32: store ids and labels that fit in 32 bits.';

// ---- reading ----------------------------------------------------------------------------------------------------

export function parseSafetensors(buf: Buffer, file: string): SafetensorsFile {
  const fail: Fail = (code, message, hint = CORRUPT_HINT) => {
    throw new LoraPlusError({ code: `safetensors/${code}`, message, file, hint });
  };
  // A clone without `git lfs` leaves a 130-byte text pointer where the weights should be.
  if (buf.subarray(0, 24).toString('latin1') === 'version https://git-lfs.') {
    fail('lfs-pointer', 'this is a Git LFS pointer, not the weights', 'Run `git lfs pull` in the model folder.');
  }
  if (buf.length < 8) fail('truncated', `file is ${buf.length} bytes, shorter than the 8-byte header length`);
  const headerLen = buf.readBigUInt64LE(0);
  if (headerLen > BigInt(MAX_HEADER_BYTES)) {
    fail('bad-header', `header length ${headerLen} is absurd (limit ${MAX_HEADER_BYTES} bytes)`);
  }
  if (8n + headerLen > BigInt(buf.length)) {
    fail('truncated', `header length ${headerLen} runs past the end of the file (${buf.length} bytes)`);
  }
  const dataStart = 8 + Number(headerLen);
  const header = parseHeader(buf.subarray(8, dataStart), fail);

  const tensors = new Map<string, HostTensor>();
  const ranges: { name: string; begin: number; end: number }[] = [];
  let metadata: Record<string, string> = {};
  const dataLen = buf.length - dataStart;
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') {
      metadata = parseMetadata(entry, fail);
      continue;
    }
    const at = `tensor '${name}'`;
    if (!isObject(entry)) fail('bad-entry', `${at}: header entry is not an object`);
    const { dtype, shape, data_offsets: offsets } = entry;
    if (dtype === undefined || shape === undefined || offsets === undefined) {
      const missing = ['dtype', 'shape', 'data_offsets'].filter((k) => entry[k] === undefined);
      fail('bad-entry', `${at}: header entry lacks ${missing.join(', ')}`);
    }
    if (typeof dtype !== 'string' || !(dtype in DTYPE_BYTES)) {
      fail(
        'unsupported-dtype',
        `${at}: unsupported dtype ${JSON.stringify(dtype)}`,
        `Supported: ${Object.keys(DTYPE_BYTES).join(', ')}. Re-save the weights as float32, float16 or bfloat16.`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail('bad-entry', `${at}: shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail('bad-offsets', `${at}: data_offsets ${JSON.stringify(offsets)} is not [begin, end] with begin <= end`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLen) {
      fail('truncated', `${at}: data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes)`);
    }
    const dims = shape as number[];
    const n = numel(dims);
    const size = DTYPE_BYTES[dtype as string];
    if (end - begin !== n * size) {
      fail('length-mismatch', `${at}: ${end - begin} bytes stored, but shape [${dims}] of ${dtype} needs ${n * size}`);
    }
    ranges.push({ name, begin, end });
    const bytes = buf.subarray(dataStart + begin, dataStart + end);
    tensors.set(name, decode(dtype as string, bytes, n, dims, at, fail));
  }
  checkOverlaps(ranges, fail);
  return { tensors, metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  return parseSafetensors(readWholeFile(file), file);
}

type Fail = (code: string, message: string, hint?: string) => never;

function parseHeader(bytes: Buffer, fail: Fail): Record<string, unknown> {
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return fail('bad-header', 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    return fail('bad-header', `header is not valid JSON (${(err as Error).message})`);
  }
  if (!isObject(header)) return fail('bad-header', 'header is not a JSON object');
  return header;
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (value === null) return {};
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    return fail('bad-header', '__metadata__ must map strings to strings');
  }
  return { ...(value as Record<string, string>) };
}

// Gaps between tensors are tolerated (some writers align data); shared bytes are not.
function checkOverlaps(ranges: { name: string; begin: number; end: number }[], fail: Fail): void {
  const sorted = ranges.filter((r) => r.end > r.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < sorted.length; i++) {
    const [prev, cur] = [sorted[i - 1], sorted[i]];
    if (cur.begin < prev.end) {
      fail(
        'overlap',
        `tensors '${prev.name}' [${prev.begin}, ${prev.end}] and '${cur.name}' ` +
          `[${cur.begin}, ${cur.end}] overlap in the data section`,
      );
    }
  }
}

function decode(dtype: string, bytes: Uint8Array, n: number, shape: number[], at: string, fail: Fail): HostTensor {
  const float = (data: Float32Array): HostTensor => ({ dtype: 'float32', shape, data });
  const int = (data: Int32Array): HostTensor => ({ dtype: 'int32', shape, data });
  switch (dtype) {
    case 'F32':
      return float(view(bytes, Float32Array, n));
    case 'F64':
      return float(Float32Array.from(view(bytes, Float64Array, n)));
    case 'F16': {
      const half = view(bytes, Uint16Array, n);
      const table = f16Table();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[half[i]];
      return float(out);
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32: shifting the bits back is exact
      const half = view(bytes, Uint16Array, n);
      const bits = new Uint32Array(n);
      for (let i = 0; i < n; i++) bits[i] = half[i] << 16;
      return float(new Float32Array(bits.buffer));
    }
    case 'I32':
      return int(view(bytes, Int32Array, n));
    case 'I64': {
      // token ids and labels: keep them if they fit int32 (hi word is the sign of lo)
      const words = view(bytes, Int32Array, 2 * n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const [lo, hi] = [words[2 * i], words[2 * i + 1]];
        if (hi !== lo >> 31) fail('int-overflow', `${at}: I64 element ${i} is out of int32 range`, INT_HINT);
        out[i] = lo;
      }
      return int(out);
    }
    case 'U32': {
      const u = view(bytes, Uint32Array, n);
      for (let i = 0; i < n; i++) {
        if (u[i] > 0x7fffffff) fail('int-overflow', `${at}: U32 element ${i} is out of int32 range`, INT_HINT);
      }
      return int(Int32Array.from(u));
    }
    case 'I16':
      return int(Int32Array.from(view(bytes, Int16Array, n)));
    case 'U16':
      return int(Int32Array.from(view(bytes, Uint16Array, n)));
    case 'I8':
      return int(Int32Array.from(view(bytes, Int8Array, n)));
    default:
      return int(Int32Array.from(bytes)); // U8, BOOL
  }
}

type TypedCtor<T> = { new (buffer: ArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number };

// Typed arrays need aligned, native-endian bytes: view in place when we can, else copy (and swap on big-endian).
function view<T>(bytes: Uint8Array, Ctor: TypedCtor<T>, n: number): T {
  const size = Ctor.BYTES_PER_ELEMENT;
  if (LITTLE_ENDIAN && bytes.byteOffset % size === 0) return new Ctor(bytes.buffer as ArrayBuffer, bytes.byteOffset, n);
  const copy = new Uint8Array(bytes); // a real copy (Buffer#slice would share memory)
  if (!LITTLE_ENDIAN) for (let i = 0; i < copy.length; i += size) copy.subarray(i, i + size).reverse();
  return new Ctor(copy.buffer, 0, n);
}

let f16Lookup: Float32Array | undefined;
// All 65,536 half-precision values, each exact in float32.
function f16Table(): Float32Array {
  if (f16Lookup) return f16Lookup;
  f16Lookup = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const man = h & 0x3ff;
    if (exp === 0)
      f16Lookup[h] = sign * man * 2 ** -24; // zero and subnormals
    else if (exp === 31) f16Lookup[h] = man ? NaN : sign * Infinity;
    else f16Lookup[h] = sign * (1 + man / 1024) * 2 ** (exp - 15);
  }
  return f16Lookup;
}

// readFileSync stops at 2 GiB; big single-file checkpoints are read in chunks into one buffer.
function readWholeFile(file: string): Buffer {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LoraPlusError(
      {
        code: 'safetensors/not-found',
        message: code === 'ENOENT' ? 'file not found' : `cannot open the file (${code ?? String(err)})`,
        file,
        hint: 'Check the path, and that the download finished.',
      },
      { cause: err },
    );
  }
  try {
    const stat = fstatSync(fd);
    if (stat.isDirectory()) {
      throw new LoraPlusError({
        code: 'safetensors/not-found',
        message: 'expected a .safetensors file, found a folder',
        file,
        hint: 'Point at the .safetensors file inside it.',
      });
    }
    const buf = Buffer.allocUnsafe(stat.size);
    let pos = 0;
    while (pos < buf.length) {
      const got = readSync(fd, buf, pos, Math.min(buf.length - pos, 1 << 30), pos);
      if (got === 0) break;
      pos += got;
    }
    return buf.subarray(0, pos);
  } finally {
    closeSync(fd);
  }
}

// ---- writing ----------------------------------------------------------------------------------------------------

/** Serialize as the Rust crate does: F32/I32, keys sorted, data in key order, header space-padded to 8 bytes. */
export function serializeSafetensors(
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata: Record<string, string> = { format: 'pt' },
): Buffer {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  // Built by hand, not JSON.stringify(object): JS objects reorder integer-like keys such as "0".
  const parts: string[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    checkHostTensor(name, t);
    const end = offset + t.data.byteLength;
    const entry = { dtype: t.dtype === 'float32' ? 'F32' : 'I32', shape: t.shape, data_offsets: [offset, end] };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(entry)}`);
    offset = end;
  }
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw badTensor(`__metadata__ value for '${k}' is not a string`);
  }
  parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  let header = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const pad = (8 - (header.length % 8)) % 8;
  if (pad) header = Buffer.concat([header, Buffer.alloc(pad, 0x20)]);

  const out = Buffer.allocUnsafe(8 + header.length + offset);
  out.writeBigUInt64LE(BigInt(header.length), 0);
  header.copy(out, 8);
  let pos = 8 + header.length;
  for (const [, t] of entries) {
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    out.set(bytes, pos);
    if (!LITTLE_ENDIAN) for (let i = pos; i < pos + bytes.length; i += 4) out.subarray(i, i + 4).reverse();
    pos += bytes.length;
  }
  return out;
}

export function writeSafetensors(
  file: string,
  tensors: Map<string, HostTensor> | Record<string, HostTensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomic(file, serializeSafetensors(tensors, metadata));
}

function checkHostTensor(name: string, t: HostTensor): void {
  if (name === '' || name === '__metadata__') throw badTensor(`'${name}' is not a valid tensor name`);
  const typeOk =
    t.dtype === 'float32' ? t.data instanceof Float32Array : t.dtype === 'int32' && t.data instanceof Int32Array;
  if (!typeOk) throw badTensor(`tensor '${name}': dtype ${t.dtype} does not match its ${t.data?.constructor?.name}`);
  if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw badTensor(`tensor '${name}': shape [${t.shape}] is not a list of non-negative integers`);
  }
  if (numel(t.shape) !== t.data.length) {
    throw badTensor(`tensor '${name}': shape [${t.shape}] holds ${numel(t.shape)} values, data has ${t.data.length}`);
  }
}

const badTensor = (message: string): LoraPlusError =>
  new LoraPlusError({ code: 'safetensors/bad-tensor', message, hint: 'This is a bug: please report it.' });

// ---- model folders ----------------------------------------------------------------------------------------------

/** A Hugging Face model folder's weights: `model.safetensors`, or shards listed in `model.safetensors.index.json`. */
export function loadModelWeights(modelDir: string): Map<string, HostTensor> {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    throw new LoraPlusError({
      code: 'weights/not-found',
      message: 'model folder not found',
      file: modelDir,
      hint: 'Point `model` at a folder downloaded from the Hugging Face Hub (config.json, model.safetensors, ...).',
    });
  }
  const single = join(modelDir, 'model.safetensors');
  if (existsSync(single)) return readSafetensors(single).tensors;
  const index = join(modelDir, 'model.safetensors.index.json');
  if (existsSync(index)) return loadSharded(modelDir, index);

  const files = readdirSync(modelDir);
  const torchFiles = files.filter((f) => /\.(bin|pt|pth|h5|msgpack|ckpt)$/.test(f));
  if (torchFiles.length > 0) {
    throw new LoraPlusError({
      code: 'weights/pytorch-format',
      message: `found ${torchFiles.join(', ')} but no model.safetensors; only safetensors weights can be read`,
      file: modelDir,
      hint:
        'Convert it once in Python: `AutoModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True)`' +
        ' (transformers), or download the safetensors files from the Hub.',
    });
  }
  if (files.includes('adapter_config.json')) {
    throw new LoraPlusError({
      code: 'weights/is-adapter',
      message: 'this is a PEFT adapter folder, not a base model',
      file: modelDir,
      hint: 'Point `model` at the base model (base_model_name_or_path in adapter_config.json).',
    });
  }
  const other = files.filter((f) => f.endsWith('.safetensors'));
  throw new LoraPlusError({
    code: 'weights/not-found',
    message: other.length
      ? `no model.safetensors or model.safetensors.index.json (found ${other.join(', ')})`
      : 'no model weights in this folder (model.safetensors or model.safetensors.index.json)',
    file: modelDir,
    hint: 'Download the whole model from the Hub, including its .safetensors files.',
  });
}

function loadSharded(modelDir: string, indexFile: string): Map<string, HostTensor> {
  const bad = (message: string): LoraPlusError =>
    new LoraPlusError({
      code: 'weights/bad-index',
      message,
      file: indexFile,
      hint: 'Download the model again: the index does not match its shards.',
    });
  let index: unknown;
  try {
    index = JSON.parse(readWholeFile(indexFile).toString('utf8'));
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`);
  }
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (
    !isObject(weightMap) ||
    Object.keys(weightMap).length === 0 ||
    !Object.values(weightMap).every((v) => typeof v === 'string')
  ) {
    throw bad('weight_map must be a non-empty object mapping tensor names to shard files');
  }
  const byShard = new Map<string, string[]>();
  for (const [key, shard] of Object.entries(weightMap as Record<string, string>)) {
    byShard.set(shard, [...(byShard.get(shard) ?? []), key]);
  }
  for (const shard of byShard.keys()) {
    if (!existsSync(join(modelDir, shard))) throw bad(`shard ${shard} is listed in weight_map but missing`);
  }
  const tensors = new Map<string, HostTensor>();
  for (const [shard, keys] of byShard) {
    const shardFile = join(modelDir, shard);
    const loaded = readSafetensors(shardFile).tensors;
    for (const key of keys) {
      const t = loaded.get(key);
      if (!t) throw bad(`tensor '${key}' is mapped to ${shard}, but that shard does not contain it`);
      tensors.set(key, t);
    }
  }
  return tensors;
}

// ---- helpers ----------------------------------------------------------------------------------------------------

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
