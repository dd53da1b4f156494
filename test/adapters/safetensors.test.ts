import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { writeFileAtomic, writeJsonAtomic } from '../../src/adapters/files';
import {
  type HostTensor,
  loadModelWeights,
  parseSafetensors,
  readSafetensors,
  serializeSafetensors,
  writeSafetensors,
} from '../../src/adapters/safetensors';
import { LoraPlusError } from '../../src/protocol/errors';

const SHARED = join(import.meta.dirname, '../../../shared');
const tmp = mkdtempSync(join(tmpdir(), 'loraplus-safetensors-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

const f32 = (shape: number[], values: number[]): HostTensor => ({
  dtype: 'float32',
  shape,
  data: Float32Array.from(values),
});
const i32 = (shape: number[], values: number[]): HostTensor => ({
  dtype: 'int32',
  shape,
  data: Int32Array.from(values),
});

/** A safetensors file built by hand: header object (or raw text), data bytes, optional lying length. */
function rawFile(header: unknown, data: Buffer | number[] = [], headerLen?: bigint): Buffer {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(headerLen ?? BigInt(text.length));
  return Buffer.concat([len, text, Buffer.from(data)]);
}

/** Asserts that parsing throws a LoraPlusError with this code, naming the file, with a message matching `re`. */
function rejects(buf: Buffer, code: string, re: RegExp): void {
  assert.throws(
    () => parseSafetensors(buf, '/models/x/model.safetensors'),
    (err: unknown) => {
      assert.ok(err instanceof LoraPlusError, `expected LoraPlusError, got ${String(err)}`);
      assert.equal(err.code, code);
      assert.equal(err.info.file, '/models/x/model.safetensors');
      assert.match(err.message, re);
      assert.ok(err.info.hint, 'every error says what to do');
      return true;
    },
  );
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LoraPlusError, String(err));
    return err.code;
  }
  assert.fail('expected an error');
}

describe('safetensors round trip', () => {
  test('write then read gives the same tensors and metadata', () => {
    const file = join(tmp, 'rt/sub/round.safetensors'); // parent folders are created
    const tensors = new Map<string, HostTensor>([
      ['w', f32([2, 3], [1, -2.5, 3e-8, 4, 5, 6])],
      ['ids', i32([4], [0, -1, 2147483647, -2147483648])],
      ['scalar', f32([], [42])],
      ['empty', f32([0, 5], [])],
      ['0', f32([1], [7])], // integer-like name: must not be reordered by JSON objects
    ]);
    writeSafetensors(file, tensors, { format: 'pt', note: 'hi' });
    const back = readSafetensors(file);
    assert.deepEqual(back.metadata, { format: 'pt', note: 'hi' });
    assert.deepEqual([...back.tensors.keys()].sort(), [...tensors.keys()].sort());
    for (const [name, t] of tensors) assert.deepEqual(back.tensors.get(name), t, name);
  });

  test('header is sorted, 8-byte aligned, space padded, with default __metadata__', () => {
    const buf = serializeSafetensors({ b: f32([1], [1]), a: i32([1], [2]) });
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const text = buf.subarray(8, 8 + n).toString('utf8');
    assert.equal(
      text.trimEnd(),
      '{"a":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},' +
        '"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"__metadata__":{"format":"pt"}}',
    );
    assert.match(text, /} *$/);
    assert.equal(buf.length, 8 + n + 8);
  });

  for (const rel of [
    'models/stories260k/model.safetensors',
    'models/tiny-random-bert/model.safetensors',
    'reference/loraplus_bert_cls.final_head.safetensors',
    'reference/loraplus_llama.init_adapter.safetensors',
  ]) {
    test(`re-serializing shared ${rel} is byte-identical`, () => {
      const file = join(SHARED, rel);
      const { tensors, metadata } = readSafetensors(file);
      assert.ok(serializeSafetensors(tensors, metadata).equals(readFileSync(file)));
    });
  }

  test('shared values match what python struct reads', () => {
    const t = readSafetensors(join(SHARED, 'models/stories260k/model.safetensors')).tensors;
    assert.equal(t.size, 47);
    const w = t.get('model.layers.0.mlp.down_proj.weight')!;
    assert.deepEqual(w.shape, [64, 172]);
    assert.equal(w.dtype, 'float32');
    assert.equal(w.data[0], 0.13498419523239136);
    assert.equal(w.data[1], 0.06711847335100174);
    assert.equal(w.data[w.data.length - 1], -0.11420675367116928);
  });

  test('serialize rejects data that does not match shape or dtype', () => {
    assert.equal(
      codeOf(() => serializeSafetensors({ x: f32([2, 2], [1, 2, 3]) })),
      'safetensors/bad-tensor',
    );
    const wrong = { dtype: 'int32', shape: [1], data: new Float32Array(1) } as HostTensor;
    assert.equal(
      codeOf(() => serializeSafetensors({ x: wrong })),
      'safetensors/bad-tensor',
    );
  });
});

describe('dtype conversion', () => {
  const one = (dtype: string, bytes: Buffer, shape = [bytes.length / sizeOf(dtype)]): HostTensor =>
    parseSafetensors(rawFile({ t: { dtype, shape, data_offsets: [0, bytes.length] } }, bytes), 'x').tensors.get('t')!;
  const sizeOf = (d: string): number => ({ F16: 2, BF16: 2, F64: 8, I64: 8, I16: 2, U8: 1, I8: 1, BOOL: 1 })[d]!;
  const u16 = (...v: number[]): Buffer => Buffer.from(new Uint16Array(v).buffer);

  test('F16 → float32, exactly (normals, subnormals, ±0, ±inf, NaN)', () => {
    const t = one('F16', u16(0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x8000, 0x7c00, 0xfc00, 0x3555, 0x7e00));
    assert.equal(t.dtype, 'float32');
    assert.ok(t.data instanceof Float32Array);
    const v = [...t.data];
    assert.deepEqual(v.slice(0, 9), [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, -0, Infinity, -Infinity, 0.333251953125]);
    assert.ok(Object.is(v[5], -0));
    assert.ok(Number.isNaN(v[9]));
  });

  test('BF16 → float32, exactly', () => {
    const t = one('BF16', u16(0x3f80, 0xc049, 0x7f80, 0x0001, 0x4780));
    assert.deepEqual([...t.data], [1, -3.140625, Infinity, 2 ** -133, 65536]);
  });

  test('F64 → float32 (rounded), I64/I16/I8/U8/BOOL → int32', () => {
    assert.deepEqual([...one('F64', Buffer.from(new Float64Array([0.1, -2]).buffer)).data], [Math.fround(0.1), -2]);
    const i64 = one('I64', Buffer.from(new BigInt64Array([-2147483648n, 2147483647n, 5n, -1n]).buffer));
    assert.equal(i64.dtype, 'int32');
    assert.deepEqual([...i64.data], [-2147483648, 2147483647, 5, -1]);
    assert.deepEqual([...one('I16', Buffer.from(new Int16Array([-300, 7]).buffer)).data], [-300, 7]);
    assert.deepEqual([...one('I8', Buffer.from([0xff, 3])).data], [-1, 3]);
    assert.deepEqual([...one('U8', Buffer.from([0xff, 3])).data], [255, 3]);
    assert.deepEqual([...one('BOOL', Buffer.from([1, 0])).data], [1, 0]);
  });

  test('I64 outside int32 is an error naming the tensor', () => {
    const bytes = Buffer.from(new BigInt64Array([1n, 2147483648n]).buffer);
    rejects(
      rawFile({ labels: { dtype: 'I64', shape: [2], data_offsets: [0, 16] } }, bytes),
      'safetensors/int-overflow',
      /labels.*I64 element 1 is out of int32 range/,
    );
  });

  test('unaligned data is copied, not misread', () => {
    // header of odd length puts the data at an odd offset; no padding
    const bytes = Buffer.from(new Float32Array([1.5, -2]).buffer);
    const buf = rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, bytes);
    assert.notEqual((buf.length - 8) % 4, 0);
    assert.deepEqual([...parseSafetensors(buf, 'x').tensors.get('t')!.data], [1.5, -2]);
  });
});

describe('strict header checks', () => {
  const ok = { t: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } };
  const eight = Buffer.alloc(8);

  test('file shorter than 8 bytes', () =>
    rejects(Buffer.from([1, 2, 3]), 'safetensors/truncated', /3 bytes, shorter than/));
  test('truncated data section', () =>
    rejects(rawFile(ok, Buffer.alloc(4)), 'safetensors/truncated', /'t'.*past the data section/));
  test('header length larger than the file', () => {
    rejects(rawFile(ok, eight, 5000n), 'safetensors/truncated', /header length 5000 runs past the end/);
  });
  test('absurd header length', () => rejects(rawFile(ok, eight, 1n << 40n), 'safetensors/bad-header', /absurd/));
  test('header not UTF-8', () => {
    const buf = Buffer.concat([Buffer.from([3, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0xff, 0x7d])]);
    rejects(buf, 'safetensors/bad-header', /not valid UTF-8/);
  });
  test('header not JSON', () => rejects(rawFile('{"t": {'), 'safetensors/bad-header', /not valid JSON/));
  test('header not an object', () => rejects(rawFile('[1,2]'), 'safetensors/bad-header', /not a JSON object/));
  test('entry missing fields', () => {
    rejects(rawFile({ t: { dtype: 'F32' } }, eight), 'safetensors/bad-entry', /'t'.*lacks shape, data_offsets/);
  });
  test('unknown dtype', () => {
    rejects(
      rawFile({ t: { dtype: 'F8_E4M3', shape: [8], data_offsets: [0, 8] } }, eight),
      'safetensors/unsupported-dtype',
      /'t'.*unsupported dtype "F8_E4M3"/,
    );
  });
  test('bad shape', () => {
    rejects(
      rawFile({ t: { dtype: 'F32', shape: [2, -1], data_offsets: [0, 8] } }, eight),
      'safetensors/bad-entry',
      /non-negative/,
    );
    rejects(
      rawFile({ t: { dtype: 'F32', shape: [1.5], data_offsets: [0, 8] } }, eight),
      'safetensors/bad-entry',
      /non-negative/,
    );
  });
  test('bad offsets', () => {
    rejects(
      rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [8, 0] } }, eight),
      'safetensors/bad-offsets',
      /begin <= end/,
    );
    rejects(rawFile({ t: { dtype: 'F32', shape: [2], data_offsets: [0] } }, eight), 'safetensors/bad-offsets', /'t'/);
  });
  test('byte length differs from shape × dtype size', () => {
    rejects(
      rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, eight),
      'safetensors/length-mismatch',
      /'t': 8 bytes stored, but shape \[3\] of F32 needs 12/,
    );
  });
  test('overlapping tensors', () => {
    const header = {
      a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
      b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] },
    };
    rejects(rawFile(header, Buffer.alloc(12)), 'safetensors/overlap', /'a' \[0, 8\] and 'b' \[4, 12\] overlap/);
  });
  test('gaps between tensors are refused, as the Rust crate refuses them ("invalid offset")', () => {
    const header = {
      a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] },
      b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] },
    };
    rejects(
      rawFile(header, Buffer.alloc(12)),
      'safetensors/bad-offsets',
      /no tensor holds the 4 bytes between tensors 'a' .* and 'b'/,
    );
  });
  test('metadata must be string → string', () => {
    rejects(rawFile({ __metadata__: { format: 1 } }), 'safetensors/bad-header', /__metadata__/);
  });
  test('a Git LFS pointer gets its own message', () => {
    const pointer = Buffer.from('version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
    rejects(pointer, 'safetensors/lfs-pointer', /Git LFS pointer.*git lfs pull/);
  });
  test('missing file', () => {
    const file = join(tmp, 'nope.safetensors');
    assert.throws(
      () => readSafetensors(file),
      (err: LoraPlusError) => err.code === 'safetensors/not-found' && err.info.file === file && !!err.info.hint,
    );
  });
});

describe('loadModelWeights', () => {
  const folder = (name: string): string => {
    const dir = join(tmp, name);
    mkdirSync(dir, { recursive: true });
    return dir;
  };
  const expectError = (dir: string, code: string, re: RegExp): void => {
    assert.throws(
      () => loadModelWeights(dir),
      (err: unknown) => {
        assert.ok(err instanceof LoraPlusError);
        assert.equal(err.code, code);
        assert.match(err.message, re);
        return true;
      },
    );
  };

  test('single model.safetensors', () => {
    const w = loadModelWeights(join(SHARED, 'models/tiny-random-gpt2'));
    assert.deepEqual(w.get('h.0.attn.c_attn.weight')?.shape, [32, 96]);
  });

  test('sharded: index weight_map → shard files', () => {
    const dir = folder('sharded');
    const [s1, s2] = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const index = join(dir, 'model.safetensors.index.json');
    writeSafetensors(join(dir, s1), { a: f32([2], [1, 2]), b: i32([1], [3]) });
    writeSafetensors(join(dir, s2), { c: f32([1, 1], [4]) });
    writeJsonAtomic(index, { metadata: { total_size: 16 }, weight_map: { a: s1, b: s1, c: s2 } });
    const w = loadModelWeights(dir);
    assert.deepEqual([...w.keys()].sort(), ['a', 'b', 'c']);
    assert.deepEqual([...w.get('c')!.data], [4]);
    assert.deepEqual([...w.get('b')!.data], [3]);

    writeJsonAtomic(index, { weight_map: { a: s1, z: s2 } });
    expectError(dir, 'weights/bad-index', /'z' is mapped to model-00002-of-00002.safetensors, but that shard does not/);
    writeJsonAtomic(index, { weight_map: { a: 'model-00003-of-00003.safetensors' } });
    expectError(dir, 'weights/bad-index', /shard model-00003-of-00003.safetensors is listed in weight_map but missing/);
    writeFileSync(index, '{"weight_map": ');
    expectError(dir, 'weights/bad-index', /not valid JSON/);
  });

  test('pytorch_model.bin only: convert to safetensors', () => {
    const dir = folder('torch-only');
    writeFileSync(join(dir, 'config.json'), '{}');
    writeFileSync(join(dir, 'pytorch_model.bin'), 'PK');
    assert.throws(
      () => loadModelWeights(dir),
      (err: LoraPlusError) => {
        assert.equal(err.code, 'weights/pytorch-format');
        assert.equal(err.info.file, dir);
        assert.match(err.message, /pytorch_model\.bin/);
        assert.match(err.info.hint ?? '', /save_pretrained\(dir, safe_serialization=True\)/);
        return true;
      },
    );
  });

  test('no weights, or no folder: error names the folder', () => {
    const dir = folder('empty');
    writeFileSync(join(dir, 'config.json'), '{}');
    expectError(dir, 'weights/not-found', /no model weights/);
    assert.throws(
      () => loadModelWeights(join(tmp, 'missing')),
      (err: LoraPlusError) => err.code === 'weights/not-found' && err.info.file === join(tmp, 'missing'),
    );
  });
});

describe('atomic files', () => {
  test('writeFileAtomic creates folders, replaces, leaves no temp files', () => {
    const file = join(tmp, 'atomic/a/b/out.txt');
    writeFileAtomic(file, 'one');
    writeFileAtomic(file, Buffer.from('two'));
    assert.equal(readFileSync(file, 'utf8'), 'two');
    assert.deepEqual(readdirSync(join(tmp, 'atomic/a/b')), ['out.txt']);
  });

  test('writeJsonAtomic writes pretty JSON with a trailing newline', () => {
    const file = join(tmp, 'atomic/x.json');
    writeJsonAtomic(file, { a: 1, b: [true] });
    assert.equal(readFileSync(file, 'utf8'), '{\n  "a": 1,\n  "b": [\n    true\n  ]\n}\n');
  });

  test('a failed write leaves the old file alone', () => {
    const dir = join(tmp, 'atomic/dir-target');
    mkdirSync(dir, { recursive: true });
    assert.throws(() => writeFileAtomic(dir, 'x')); // cannot rename a file over a folder
    assert.ok(existsSync(dir));
    assert.deepEqual(
      readdirSync(join(tmp, 'atomic')).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });
});
