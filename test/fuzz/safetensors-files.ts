// Mutations of real safetensors files, and an independent, strict reading of bytes (the oracle) that a reader's
// result is compared with, for the fuzz tests of damaged files (safetensors.test.ts).
import type { HostTensor } from '../../src/adapters/safetensors';
import { int, pick } from './harness';

// ---- mutations ------------------------------------------------------------------------------------------------

export type Mutation = { buf: Buffer; label: string; data: boolean }; // data: the data section's bytes were changed

const ENTRY = /"((?:[^"\\]|\\.)*)":\{"dtype":"(\w+)","shape":\[([\d,]*)\],"data_offsets":\[(\d+),(\d+)\]\}/g;
const DTYPES = ['F64', 'F32', 'F16', 'BF16', 'I64', 'I32', 'I16', 'U8', 'BOOL', 'F8_E4M3', 'Q4'];

export function parts(buf: Buffer): { header: string; data: Buffer } {
  const n = Number(buf.readBigUInt64LE(0));
  return { header: buf.subarray(8, 8 + n).toString('utf8'), data: buf.subarray(8 + n) };
}

export function join(header: string | Buffer, data: Buffer, len?: number): Buffer {
  const h = Buffer.from(header);
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(BigInt(len ?? h.length));
  return Buffer.concat([l, h, data]);
}

/** The header with the `i`th tensor entry replaced by `edit(match)`. */
function editEntry(header: string, i: number, edit: (m: RegExpMatchArray) => string): string {
  const ms = [...header.matchAll(ENTRY)];
  const m = ms[i % ms.length];
  return header.slice(0, m.index) + edit(m) + header.slice(m.index! + m[0].length);
}

/** One random mutation of a safetensors file's bytes. */
export function mutate(r: () => number, orig: Buffer): Mutation {
  const { header, data } = parts(orig);
  const n = header.length;
  const entries = [...header.matchAll(ENTRY)].length;
  const e = int(r, 0, entries - 1);
  const kind = pick(r, [
    'length',
    'header-byte',
    'padding',
    'dtype',
    'shape',
    'offset',
    'duplicate',
    'truncate',
    'append',
    'nan',
    'bom',
    'data-byte',
    'harmless',
  ] as const);
  const same = (buf: Buffer, label: string): Mutation => ({ buf, label: `${kind}: ${label}`, data: false });
  switch (kind) {
    case 'length': {
      const k = pick(r, [-1, 1, -2, 2, -3, 3, -5, -6, 4, 8, -8, -16, 16, 1000]);
      return same(join(header, data, n + k), `${k}`);
    }
    case 'header-byte': {
      const buf = Buffer.from(orig);
      const at = 8 + int(r, 0, n - 1);
      buf[at] = int(r, 0, 255);
      return same(buf, `byte ${at} = ${buf[at]}`);
    }
    case 'padding': {
      const pad = pick(r, [' ', '\n', '\t', '\0', 'x', '}', '        ']);
      const trimmed = header.trimEnd();
      const padded = r() < 0.5 ? trimmed + pad : trimmed + pad + header.slice(trimmed.length);
      return same(join(padded, data), JSON.stringify(pad));
    }
    case 'dtype': {
      const to = pick(r, DTYPES);
      return same(
        join(
          editEntry(header, e, (m) => m[0].replace(`"dtype":"${m[2]}"`, `"dtype":"${to}"`)),
          data,
        ),
        to,
      );
    }
    case 'shape': {
      const edited = editEntry(header, e, (m) => {
        const dims = m[3] ? m[3].split(',').map(Number) : [];
        const d = int(r, 0, Math.max(0, dims.length - 1));
        const op = pick(r, ['+1', '-1', 'swap', 'x2', 'drop', 'add1']);
        if (op === '+1' && dims.length) dims[d] += 1;
        if (op === '-1' && dims.length) dims[d] = Math.max(0, dims[d] - 1);
        if (op === 'swap') dims.reverse();
        if (op === 'x2' && dims.length) dims[d] *= 2;
        if (op === 'drop') dims.pop();
        if (op === 'add1') dims.push(1);
        return m[0].replace(`"shape":[${m[3]}]`, `"shape":[${dims}]`);
      });
      return same(join(edited, data), edited === header ? 'no-op' : `entry ${e}`);
    }
    case 'offset': {
      const k = pick(r, [-4, 4, -1, 1, 8, -8, 2, 256]);
      const which = pick(r, ['begin', 'end', 'both']);
      const edited = editEntry(header, e, (m) => {
        const [b, en] = [Number(m[4]) + (which !== 'end' ? k : 0), Number(m[5]) + (which !== 'begin' ? k : 0)];
        return m[0].replace(`[${m[4]},${m[5]}]`, `[${b},${en}]`);
      });
      return same(join(edited, data), `${which} ${k} of entry ${e}`);
    }
    case 'duplicate': {
      const m = [...header.matchAll(ENTRY)][e];
      const copy = r() < 0.5 ? m[0] : m[0].replace(/"data_offsets":\[\d+,\d+\]/, `"data_offsets":[${m[4]},${m[5]}]`);
      const where = r() < 0.5 ? 1 : header.lastIndexOf('}') - 0;
      const edited = where === 1 ? `{${copy},${header.slice(1)}` : `${header.slice(0, where).trimEnd()},${copy}}${' '}`;
      return same(join(edited, data), `entry ${e}`);
    }
    case 'truncate': {
      const at = int(r, 0, orig.length - 1);
      return same(orig.subarray(0, at), `at ${at}`);
    }
    case 'append':
      return same(Buffer.concat([orig, Buffer.alloc(int(r, 1, 16), int(r, 0, 255))]), '');
    case 'nan': {
      const floats = [...header.matchAll(ENTRY)].filter((m) => m[2] === 'F32' && Number(m[5]) > Number(m[4]));
      const buf = Buffer.from(orig);
      const m = floats[e % floats.length];
      const count = int(r, 1, 3);
      for (let i = 0; i < count; i++) {
        const at = 8 + n + Number(m[4]) + 4 * int(r, 0, (Number(m[5]) - Number(m[4])) / 4 - 1);
        buf.writeFloatLE(pick(r, [NaN, Infinity, -Infinity]), at);
      }
      return { buf, label: `nan: ${m[1]}`, data: true };
    }
    case 'bom': {
      const k = pick(r, [3, 0]);
      return same(join(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(header)]), data, n + k), `+${k}`);
    }
    case 'data-byte': {
      const buf = Buffer.from(orig);
      if (!data.length) return same(buf, 'no data');
      buf[8 + n + int(r, 0, data.length - 1)] ^= 1 << int(r, 0, 7);
      return { buf, label: 'data-byte', data: true };
    }
    default: {
      // Changes that must not change the result: more padding, __metadata__ null, an entry moved to the front.
      const h = pick(r, ['pad', 'null', 'reorder']);
      if (h === 'pad') return same(join(`${header}        `, data), 'pad');
      if (h === 'null') return same(join(header.replace(/"__metadata__":\{[^}]*\}/, '"__metadata__":null'), data), h);
      const m = [...header.matchAll(ENTRY)][e];
      const without = header.replace(m[0], '').replace(',,', ',').replace('{,', '{').replace(',}', '}');
      return same(join(`{${m[0]},${without.slice(1)}`, data), h);
    }
  }
}

// ---- an independent, strict reading (the oracle) ---------------------------------------------------------------

const SIZES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  U32: 4,
  U16: 2,
  I8: 1,
};
Object.assign(SIZES, { U8: 1, BOOL: 1 });
export type Read = { dtype: string; shape: number[]; begin: number; end: number; values: number[] };

/** What the bytes hold when they are a valid safetensors file, else why not. Slow and simple on purpose. */
export function oracle(buf: Buffer): Map<string, Read> | string {
  if (buf.length < 8) return 'shorter than 8 bytes';
  const n = Number(buf.readBigUInt64LE(0));
  if (8 + n > buf.length) return 'header past the end';
  const hb = buf.subarray(8, 8 + n);
  const text = hb.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(hb)) return 'not UTF-8';
  const json = text.replace(/ +$/, '');
  if (!json.startsWith('{') || !json.endsWith('}')) return 'not exactly one JSON object';
  let h: Record<string, unknown>;
  try {
    h = JSON.parse(json);
  } catch {
    return 'not JSON';
  }
  if (typeof h !== 'object' || h === null || Array.isArray(h)) return 'not an object';
  const names = Object.keys(h).filter((k) => k !== '__metadata__');
  if ((json.match(/"data_offsets"/g) ?? []).length !== names.length) return 'duplicate tensor';
  if ((json.match(/"dtype"/g) ?? []).length !== names.length) return 'duplicate field';
  const meta = h.__metadata__;
  if (meta !== undefined && meta !== null) {
    if (typeof meta !== 'object' || Array.isArray(meta) || !Object.values(meta).every((v) => typeof v === 'string'))
      return 'bad metadata';
  }
  const dataStart = 8 + n;
  const spans: [number, number][] = [];
  const out = new Map<string, Read>();
  for (const name of names) {
    const e = h[name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (!e || typeof e !== 'object' || !(e.dtype in SIZES)) return `bad dtype of ${name}`;
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) return `bad shape`;
    const [b, en] = e.data_offsets ?? [];
    if (!Number.isInteger(b) || !Number.isInteger(en) || b > en || e.data_offsets.length !== 2) return 'bad offsets';
    const count = e.shape.reduce((a, d) => a * d, 1);
    if (en - b !== count * SIZES[e.dtype]) return 'length mismatch';
    if (dataStart + en > buf.length) return 'past the end';
    spans.push([b, en]);
    const dv = new DataView(buf.buffer, buf.byteOffset + dataStart + b, en - b);
    const values: number[] = [];
    for (let i = 0; i < count; i++) values.push(element(dv, e.dtype, i));
    if (values.some((v) => v === null)) return 'an integer outside int32';
    out.set(name, { dtype: e.dtype, shape: e.shape, begin: b, end: en, values });
  }
  spans.sort((x, y) => x[0] - y[0] || x[1] - y[1]);
  let at = 0;
  for (const [b, en] of spans) {
    if (b !== at) return 'not tiled';
    at = en;
  }
  if (at !== buf.length - dataStart) return 'not tiled to the end';
  return out;
}

function element(dv: DataView, dtype: string, i: number): number {
  switch (dtype) {
    case 'F64':
      return Math.fround(dv.getFloat64(8 * i, true));
    case 'F32':
      return dv.getFloat32(4 * i, true);
    case 'BF16':
      return new Float32Array(new Uint32Array([dv.getUint16(2 * i, true) << 16]).buffer)[0];
    case 'F16': {
      const h = dv.getUint16(2 * i, true);
      const [s, ex, m] = [h >> 15 ? -1 : 1, (h >> 10) & 31, h & 1023];
      return ex === 0 ? s * m * 2 ** -24 : ex === 31 ? (m ? NaN : s * Infinity) : s * (1 + m / 1024) * 2 ** (ex - 15);
    }
    case 'I64': {
      const v = dv.getBigInt64(8 * i, true);
      return v >= -(2n ** 31n) && v < 2n ** 31n ? Number(v) : (null as unknown as number);
    }
    case 'I32':
      return dv.getInt32(4 * i, true);
    case 'U32': {
      const v = dv.getUint32(4 * i, true);
      return v <= 0x7fffffff ? v : (null as unknown as number);
    }
    case 'I16':
      return dv.getInt16(2 * i, true);
    case 'U16':
      return dv.getUint16(2 * i, true);
    case 'I8':
      return dv.getInt8(i);
    default:
      return dv.getUint8(i); // U8, BOOL
  }
}

export const sameValue = (a: number, b: number): boolean => a === b || (Number.isNaN(a) && Number.isNaN(b));

/** Tensors whose header entry a mutation left alone must read as in the original file (nothing read shifted). */
export function unchanged(
  got: Map<string, HostTensor>,
  now: Map<string, Read>,
  orig: Map<string, Read>,
): string | null {
  for (const [name, w] of now) {
    const o = orig.get(name);
    if (!o || o.dtype !== w.dtype || o.begin !== w.begin || o.end !== w.end || o.shape.join() !== w.shape.join())
      continue;
    const why = differs(new Map([[name, got.get(name)!]]), new Map([[name, o]]));
    if (why) return `unchanged entry: ${why}`;
  }
  return null;
}

/** Why `got` is not what the file holds (`want`, from the oracle), or null. */
export function differs(got: Map<string, HostTensor>, want: Map<string, Read>): string | null {
  if (got.size !== want.size) return `${got.size} tensors read, the file holds ${want.size}`;
  for (const [name, w] of want) {
    const t = got.get(name);
    if (!t) return `'${name}' missing`;
    if (t.shape.join() !== w.shape.join()) return `'${name}' shape [${t.shape}] vs [${w.shape}]`;
    for (let i = 0; i < w.values.length; i++)
      if (!sameValue(t.data[i], w.values[i])) return `'${name}'[${i}] = ${t.data[i]}, the file holds ${w.values[i]}`;
  }
  return null;
}

/** Mutations a safetensors reader cannot see but a model loader must: a bare and a prefixed name for one weight,
 *  a float weight relabelled as an integer dtype of the same size. */
export function keyMutation(r: () => number, orig: Buffer): Mutation {
  const { header, data } = parts(orig);
  const entries = [...header.matchAll(ENTRY)];
  const m = pick(r, entries);
  if (r() < 0.5) {
    const name =
      m[1].startsWith('model.') || m[1].startsWith('transformer.') ? m[1].replace(/^\w+\./, '') : `transformer.${m[1]}`;
    const [b, e] = [Number(m[4]), Number(m[5])];
    const copy = m[0]
      .replace(`"${m[1]}"`, `"${name}"`)
      .replace(`[${b},${e}]`, `[${data.length},${data.length + e - b}]`);
    const edited = `{${copy},${header.slice(1)}`;
    return {
      buf: join(edited, Buffer.concat([data, data.subarray(b, e)])),
      label: `bare/prefixed ${m[1]}`,
      data: false,
    };
  }
  const relabelled = header.replace(m[0], m[0].replace('"dtype":"F32"', '"dtype":"I32"'));
  return { buf: join(relabelled, data), label: `I32 ${m[1]}`, data: false };
}
