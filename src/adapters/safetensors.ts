// The safetensors format (https://github.com/huggingface/safetensors), read and written with plain typed arrays:
//   [u64 LE header length N][N bytes of UTF-8 JSON header][data section]
//   header: { "<name>": { dtype, shape, data_offsets: [begin, end] }, "__metadata__"?: { string: string } }
// Offsets are relative to the data section. Reading is strict (safetensors-header.ts): a damaged file fails here,
// naming the file and the tensor, rather than as NaNs three layers later.
import { closeSync, existsSync, fstatSync, openSync, readdirSync, readSync, statSync } from 'node:fs';
import { endianness } from 'node:os';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';
import { writeFileAtomic } from './files';
import {
  duplicateKey,
  failIn,
  headerLength,
  numel,
  parseHeader,
  type Fail,
  type SafetensorsHeader,
} from './safetensors-header';

export { FLOAT_DTYPES, numel, type SafetensorsHeader, type TensorEntry } from './safetensors-header';

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

const LITTLE_ENDIAN = endianness() === 'LE';
const INT_HINT = 'Integer tensors are read as int32: store ids and labels that fit in 32 bits.';

// The dtype each tensor read from a file had there (I32, BF16, ...), for messages: kept beside the tensor, not in
// it, so a HostTensor stays plain data.
const storedDtypes = new WeakMap<HostTensor, string>();

/** The safetensors dtype `t` was stored as, when it was read from a file. */
export function storedDtype(t: HostTensor): string | undefined {
  return storedDtypes.get(t);
}

// ---- reading ----------------------------------------------------------------------------------------------------

export function parseSafetensors(buf: Buffer, file: string): SafetensorsFile {
  const fail = failIn(file);
  const n = headerLength(buf, buf.length, fail);
  const header = parseHeader(buf.subarray(8, 8 + n), buf.length, fail);
  const tensors = new Map<string, HostTensor>();
  for (const { name, dtype, shape, begin, end } of header.tensors) {
    const bytes = buf.subarray(header.dataStart + begin, header.dataStart + end);
    const t = decode(dtype, bytes, numel(shape), shape, `tensor '${name}'`, fail);
    storedDtypes.set(t, dtype);
    tensors.set(name, t);
  }
  return { tensors, metadata: header.metadata };
}

export function readSafetensors(file: string): SafetensorsFile {
  return parseSafetensors(readWholeFile(file), file);
}

/** The header of a safetensors file, read and checked as readSafetensors checks it: only its first 8 + N bytes. */
export function readSafetensorsHeader(file: string): SafetensorsHeader {
  const fail = failIn(file);
  const fd = openFile(file);
  try {
    const size = fstatSync(fd).size;
    const first = readAt(fd, Math.min(24, size), 0);
    return parseHeader(readAt(fd, headerLength(first, size, fail), 8), size, fail);
  } finally {
    closeSync(fd);
  }
}

/** How many values of `data` are NaN or ±Inf: one tight pass, cheap next to reading the file. */
export function countNonFinite(data: Float32Array | Int32Array): number {
  if (!(data instanceof Float32Array)) return 0;
  let bad = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (v - v !== 0) bad++; // NaN for NaN and ±Inf, 0 for every finite value
  }
  return bad;
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
  const fd = openFile(file);
  try {
    return readAt(fd, fstatSync(fd).size, 0);
  } finally {
    closeSync(fd);
  }
}

/** An open file descriptor of a regular file, or the error that says why not. */
function openFile(file: string): number {
  const notFound = (message: string, hint: string, cause?: unknown): LoraPlusError =>
    new LoraPlusError({ code: 'safetensors/not-found', message, file, hint }, { cause });
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const message = code === 'ENOENT' ? 'file not found' : `cannot open the file (${code ?? String(err)})`;
    throw notFound(message, 'Check the path, and that the download finished.', err);
  }
  if (fstatSync(fd).isDirectory()) {
    closeSync(fd);
    throw notFound('expected a .safetensors file, found a folder', 'Point at the .safetensors file inside it.');
  }
  return fd;
}

/** `length` bytes from `pos` (fewer when the file is shorter), in chunks of at most 1 GiB. */
function readAt(fd: number, length: number, pos: number): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, Math.min(length - got, 1 << 30), pos + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
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
  const tensors = new Map<string, HostTensor>();
  for (const w of modelWeightFiles(modelDir)) {
    for (const [key, t] of pickTensors(readSafetensors(w.file).tensors, w)) tensors.set(key, t);
  }
  return tensors;
}

// Host tensors a model build may empty once it has made its own tensor of them: those of a checkpoint map that
// nobody reads after the build (buildModel's). Without this, a 1B model's float32 host copy (4.6 GiB) stays whole
// until the build ends, beside the backend's copy: twice the model at the peak.
const releasable = new WeakSet<HostTensor>();

/** Marks every tensor of `weights` as releasable (see releaseHostData); for a map no one reads after the build. */
export function releaseAfterUpload(weights: Map<string, HostTensor>): Map<string, HostTensor> {
  for (const t of weights.values()) releasable.add(t);
  return weights;
}

/** Drops the data of a releasable tensor, once the backend has its own copy; dtype and shape stay for checks. */
export function releaseHostData(t: HostTensor | undefined): void {
  if (t && releasable.delete(t)) t.data = t.dtype === 'float32' ? new Float32Array(0) : new Int32Array(0);
}

/** One weight file of a model folder, and the tensors to take from it (null: all it holds). */
export interface WeightFile {
  file: string;
  keys: string[] | null;
  index: string | null; // the model.safetensors.index.json that listed it
}

/**
 * The weight files of a model folder (model.safetensors, or the shards of model.safetensors.index.json with the
 * names its weight_map gives each), as loadModelWeights and the config checks read them. A folder without them gets
 * the diagnosis of what it holds instead.
 */
export function modelWeightFiles(modelDir: string): WeightFile[] {
  if (!existsSync(modelDir) || !statSync(modelDir).isDirectory()) {
    throw new LoraPlusError({
      code: 'weights/not-found',
      message: 'model folder not found',
      file: modelDir,
      hint: 'Point `model` at a folder downloaded from the Hugging Face Hub (config.json, model.safetensors, ...).',
    });
  }
  const single = join(modelDir, 'model.safetensors');
  if (existsSync(single)) return [{ file: single, keys: null, index: null }];
  const index = join(modelDir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    return [...readModelIndex(modelDir, index)].map(([file, keys]) => ({ file, keys, index }));
  }

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
      hint:
        'Point `model` at the base model (base_model_name_or_path in adapter_config.json), ' +
        'and this folder at lora.init_adapter.',
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

/** The tensors `w` provides out of everything its file holds (`all`): each name weight_map gives it must be there. */
export function pickTensors<T>(all: Map<string, T>, w: WeightFile): Map<string, T> {
  if (!w.keys) return all;
  const out = new Map<string, T>();
  for (const key of w.keys) {
    const t = all.get(key);
    if (t === undefined) {
      const shard = w.file.slice(w.file.lastIndexOf(sep) + 1);
      throw badIndex(`tensor '${key}' is mapped to ${shard}, but that shard does not contain it`, w.index!);
    }
    out.set(key, t);
  }
  return out;
}

// model.safetensors.index.json: {metadata?, weight_map: {tensor name: shard file name}} → shard path → its names.
function readModelIndex(modelDir: string, indexFile: string): Map<string, string[]> {
  const bad = (message: string): LoraPlusError => badIndex(message, indexFile);
  if (!statSync(indexFile).isFile()) throw bad('is a folder, not a JSON file');
  const bytes = readWholeFile(indexFile);
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    throw bad("starts with a UTF-8 byte-order mark (EF BB BF), which JSON readers such as Python's json refuse");
  }
  const text = bytes.toString('utf8');
  let index: unknown;
  try {
    index = JSON.parse(text);
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`);
  }
  const dup = duplicateKey(text);
  if (dup)
    throw bad(`${dup.parent ?? 'the top level'} has the key '${dup.key}' twice, so which one is meant is unknown`);
  const weightMap = isObject(index) ? index.weight_map : undefined;
  if (!isObject(weightMap) || Object.keys(weightMap).length === 0) {
    throw bad('weight_map must be a non-empty object mapping tensor names to shard files');
  }
  const byFile = new Map<string, { shard: string; keys: string[] }>();
  for (const [key, shard] of Object.entries(weightMap)) {
    if (typeof shard !== 'string' || shard === '' || isAbsolute(shard) || normalize(shard).startsWith('..')) {
      throw bad(`weight_map maps '${key}' to ${JSON.stringify(shard)}, not to a shard file in the model folder`);
    }
    const file = join(modelDir, shard);
    const entry = byFile.get(file) ?? { shard, keys: [] };
    entry.keys.push(key);
    byFile.set(file, entry);
  }
  for (const [file, { shard }] of byFile) {
    if (!existsSync(file)) throw bad(`shard ${shard} is listed in weight_map but missing`);
    if (!statSync(file).isFile()) throw bad(`shard ${shard} listed in weight_map is a folder, not a .safetensors file`);
  }
  return new Map([...byFile].map(([file, { keys }]) => [file, keys]));
}

const badIndex = (message: string, file: string): LoraPlusError =>
  new LoraPlusError({
    code: 'weights/bad-index',
    message,
    file,
    hint: 'Download the model again: the index does not match its shards.',
  });
