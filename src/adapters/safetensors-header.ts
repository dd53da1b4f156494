// The safetensors header, checked as strictly as the Rust crate that wrote it:
//   [u64 LE header length N][N bytes: the JSON object, then only spaces][data section]
// Every tensor's data_offsets are relative to the data section, and the tensors tile it exactly: the first begins
// at 0, each begins where the one before ended, the last ends at the end of the file. A header length off by a few
// bytes, a byte flipped in the padding, a duplicated key or a gap therefore fails here, naming the file and the
// tensor, instead of every tensor being read shifted. The full reader and the header-only reader (the config checks)
// both go through parseHeader, so they agree on what a valid file is.
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';

export const DTYPE_BYTES: Record<string, number> = {
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
export const FLOAT_DTYPES: readonly string[] = ['F64', 'F32', 'F16', 'BF16'];

/** One tensor's header entry; begin and end are byte offsets into the data section. */
export interface TensorEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  tensors: TensorEntry[]; // in the header's order
  metadata: Record<string, string>;
  dataStart: number; // 8 + N: where the data section begins in the file
}

export type Fail = (code: string, message: string, hint?: string) => never;

const MAX_HEADER_BYTES = 100_000_000; // the Rust crate's limit; anything larger is a damaged length field
export const CORRUPT_HINT = 'The file is damaged or not a safetensors file: download or export it again.';
const TILE_HINT =
  'In a safetensors file every data byte belongs to exactly one tensor, so the header or the file is damaged: ' +
  'download or export it again.';

export function failIn(file: string): Fail {
  return (code, message, hint = CORRUPT_HINT) => {
    throw new LoraPlusError({ code: `safetensors/${code}`, message, file, hint });
  };
}

/** N, from the file's first bytes (at least min(24, size) of them), for a file of `size` bytes. */
export function headerLength(first: Buffer, size: number, fail: Fail): number {
  // A clone without `git lfs` leaves a 130-byte text pointer where the weights should be.
  if (first.subarray(0, 24).toString('latin1') === 'version https://git-lfs.') {
    fail('lfs-pointer', 'this is a Git LFS pointer, not the weights', 'Run `git lfs pull` in the model folder.');
  }
  if (size < 8) fail('truncated', `file is ${size} bytes, shorter than the 8-byte header length`);
  const n = first.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER_BYTES))
    fail('bad-header', `header length ${n} is absurd (limit ${MAX_HEADER_BYTES} bytes)`);
  if (8n + n > BigInt(size)) fail('truncated', `header length ${n} runs past the end of the file (${size} bytes)`);
  return Number(n);
}

/** The header's N bytes, checked against a file of `size` bytes (nothing of the data section is read). */
export function parseHeader(bytes: Buffer, size: number, fail: Fail): SafetensorsHeader {
  const header = headerObject(bytes, fail);
  const dataStart = 8 + bytes.length;
  const dataLen = size - dataStart;
  const tensors: TensorEntry[] = [];
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header)) {
    if (name === '__metadata__') metadata = parseMetadata(entry, fail);
    else tensors.push(parseEntry(name, entry, dataLen, fail));
  }
  checkTiling(tensors, dataLen, fail);
  return { tensors, metadata, dataStart };
}

// Exactly one JSON object, then only spaces: what is left over means the length field or the header is damaged.
function headerObject(bytes: Buffer, fail: Fail): Record<string, unknown> {
  if (bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf) {
    fail(
      'bad-header',
      'header starts with a UTF-8 byte-order mark (EF BB BF); a safetensors header is plain JSON starting with "{"',
      'Re-save the file with the safetensors library, or strip the 3 bytes and shorten the header length by 3.',
    );
  }
  if (bytes[0] !== 0x7b) {
    return fail('bad-header', `header is not a JSON object from its first byte (it starts with ${show(bytes)})`);
  }
  // The JSON's structure is ASCII (UTF-8 never puts an ASCII byte inside a multi-byte character), so its end is
  // found on the bytes: the length field is then blamed, not the encoding, when it takes in bytes of the data.
  const end = objectEnd(bytes);
  if (end < 0) {
    return fail(
      'bad-header',
      `header is not valid JSON: its object does not close within the declared length of ${bytes.length} bytes ` +
        '(the header length is too short, or the header is damaged)',
    );
  }
  const at = bytes.subarray(end).findIndex((b) => b !== 0x20);
  if (at >= 0) {
    return fail(
      'bad-header',
      `header holds ${show(bytes.subarray(end + at))} at byte ${end + at} of ${bytes.length}, after its JSON, where ` +
        `only space padding may follow (the header length ${bytes.length} is too long, or the header is damaged)`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes.subarray(0, end));
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
  const dup = duplicateKey(text);
  if (dup) {
    fail(
      'duplicate-key',
      dup.parent === null
        ? `header names tensor '${dup.key}' twice`
        : `header entry '${dup.parent}' has '${dup.key}' twice`,
      'JSON keeps only the last of duplicate keys, so which one is meant is unknown: export the file again.',
    );
  }
  return header;
}

function parseMetadata(value: unknown, fail: Fail): Record<string, string> {
  if (value === null) return {}; // the Rust crate accepts null
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) {
    return fail('bad-header', '__metadata__ must map strings to strings');
  }
  return { ...(value as Record<string, string>) };
}

function parseEntry(name: string, entry: unknown, dataLen: number, fail: Fail): TensorEntry {
  const at = `tensor '${name}'`;
  if (!isObject(entry)) return fail('bad-entry', `${at}: header entry is not an object`);
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
  const bytes = numel(dims) * DTYPE_BYTES[dtype as string];
  if (end - begin !== bytes) {
    fail('length-mismatch', `${at}: ${end - begin} bytes stored, but shape [${dims}] of ${dtype} needs ${bytes}`);
  }
  return { name, dtype: dtype as string, shape: dims, begin, end };
}

// In order of begin, the tensors must start at 0, follow each other without gaps or overlaps, and end at the end.
function checkTiling(tensors: TensorEntry[], dataLen: number, fail: Fail): void {
  const sorted = [...tensors].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let prev: TensorEntry | null = null;
  for (const cur of sorted) {
    const edge = prev?.end ?? 0;
    if (cur.begin < edge) {
      fail(
        'overlap',
        `tensors '${prev!.name}' [${prev!.begin}, ${prev!.end}] and '${cur.name}' ` +
          `[${cur.begin}, ${cur.end}] overlap in the data section`,
      );
    }
    if (cur.begin > edge) {
      const where = prev ? `between tensors '${prev.name}' (ends at ${edge}) and` : 'before the first tensor,';
      fail(
        'bad-offsets',
        `no tensor holds the ${plural(cur.begin - edge, 'byte')} ${where} '${cur.name}' (begins at ${cur.begin})`,
        TILE_HINT,
      );
    }
    prev = cur;
  }
  const end = prev?.end ?? 0;
  if (end !== dataLen) {
    fail(
      'trailing-data',
      `the tensors end at byte ${end} of the data section, but it is ${dataLen} bytes long: ` +
        `no tensor holds its last ${plural(dataLen - end, 'byte')}`,
      TILE_HINT,
    );
  }
}

// ---- JSON scanning ------------------------------------------------------------------------------------------------

/** The index just past the top-level object that opens `bytes`, or -1 when it does not close. */
function objectEnd(bytes: Uint8Array): number {
  let depth = 0;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (c === 0x22) {
      for (i++; i < bytes.length && bytes[i] !== 0x22; i++) if (bytes[i] === 0x5c) i++;
    } else if (c === 0x7b || c === 0x5b) depth++;
    else if ((c === 0x7d || c === 0x5d) && --depth === 0) return i + 1;
  }
  return -1;
}

/** The index of the quote closing the string that opens at `i` (text.length when it does not close). */
function stringEnd(text: string, i: number): number {
  let j = i + 1;
  while (j < text.length && text.charCodeAt(j) !== 0x22) j += text.charCodeAt(j) === 0x5c ? 2 : 1;
  return j;
}

/**
 * The first key that appears twice in one object of valid JSON `text` (JSON.parse silently keeps the last), with
 * the key of the object holding it (null: the top level).
 */
export function duplicateKey(text: string): { key: string; parent: string | null } | null {
  // One frame per open object or array: its keys so far, the key it sits under, whether a key comes next.
  const stack: { keys: Set<string> | null; name: string | null; expectKey: boolean }[] = [];
  let lastKey: string | null = null;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const top = stack[stack.length - 1];
    if (c === 0x22) {
      const j = stringEnd(text, i);
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, parent: stack.length > 1 ? top.name : null };
        top.keys.add(key);
        top.expectKey = false;
        lastKey = key;
      }
      i = j;
    } else if (c === 0x7b || c === 0x5b) {
      stack.push({
        keys: c === 0x7b ? new Set() : null,
        name: top?.keys ? lastKey : (top?.name ?? null),
        expectKey: true,
      });
    } else if (c === 0x7d || c === 0x5d) stack.pop();
    else if (c === 0x2c && top?.keys) top.expectKey = true;
  }
  return null;
}

export function numel(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`;

/** A short, visible rendering of unexpected header bytes. */
function show(bytes: Uint8Array): string {
  const text = JSON.stringify(Buffer.from(bytes.subarray(0, 16)).toString('latin1'));
  return bytes.length > 16 ? `${text.slice(0, -1)}…"` : text;
}
