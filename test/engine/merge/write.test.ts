// The merge's file layer: float16/bfloat16 conversions (every half value round-trips, ties go to even, as torch's
// casts), transformers' size strings, and shard files that our safetensors reader accepts.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadModelWeights } from '../../../src/adapters/safetensors';
import {
  decodeFloats,
  encodeFloats,
  parseShardSize,
  writeShards,
  type OutTensor,
} from '../../../src/engine/merge/write';
import { tempDir } from '../../helpers/shared';

const bits = (dtype: string, x: number[]) =>
  Array.from(new Uint16Array(Uint8Array.from(encodeFloats(dtype, Float32Array.from(x))).buffer));

describe('merge files', () => {
  it('every float16 and bfloat16 value survives decode → encode bit for bit (NaN stays NaN)', () => {
    for (const dtype of ['F16', 'BF16']) {
      const all = new Uint16Array(65536).map((_, i) => i);
      const values = decodeFloats(dtype, Buffer.from(all.buffer));
      const back = new Uint16Array(Uint8Array.from(encodeFloats(dtype, values)).buffer);
      for (let i = 0; i < 65536; i++) {
        if (Number.isNaN(values[i]))
          assert.ok(Number.isNaN(decodeFloats(dtype, Buffer.from(Uint16Array.of(back[i]).buffer))[0]));
        else assert.equal(back[i], i, `${dtype} 0x${i.toString(16)}`);
      }
    }
  });

  it('rounds to nearest, ties to even, and overflows to infinity as torch does', () => {
    // float16: 1 + 2⁻¹¹ is halfway between 1 and 1 + 2⁻¹⁰ → 1 (even); 1 + 3·2⁻¹¹ → 1 + 2⁻⁹ (even); 65520 → inf
    assert.deepEqual(
      bits('F16', [1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, -(2 ** -24), 2 ** -25]),
      [0x3c00, 0x3c02, 0x7bff, 0x7c00, 0x8001, 0x0000],
    );
    // bfloat16 keeps 7 mantissa bits: 1 + 2⁻⁸ → 1 (even), 1 + 3·2⁻⁸ → 1 + 2⁻⁶
    assert.deepEqual(bits('BF16', [1 + 2 ** -8, 1 + 3 * 2 ** -8, -2]), [0x3f80, 0x3f82, 0xc000]);
  });

  it('reads sizes as transformers does', () => {
    assert.equal(parseShardSize('5GB'), 5e9);
    assert.equal(parseShardSize('2GiB'), 2 * 2 ** 30);
    assert.equal(parseShardSize('200MB'), 2e8);
    assert.equal(parseShardSize('100kb'), 1e5);
    assert.equal(parseShardSize('1234'), 1234);
    assert.throws(() => parseShardSize('big'), /not a size/);
  });

  it('shards hold whole tensors (a tensor larger than the limit gets its own) and load back', () => {
    const t = (key: string, n: number): OutTensor => {
      const data = Float32Array.from({ length: n }, (_, i) => i + key.length);
      return { key, dtype: 'F32', shape: [n], byteLength: 4 * n, bytes: () => Buffer.from(data.buffer) };
    };
    const dir = tempDir();
    const files = writeShards(dir, [t('a', 10), t('b', 100), t('c', 5), t('d', 5)], 60);
    assert.deepEqual(files, [
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const w = loadModelWeights(dir);
    assert.deepEqual([...w.keys()].sort(), ['a', 'b', 'c', 'd']);
    assert.equal(w.get('b')!.data[99], 100);
    assert.deepEqual(writeShards(path.join(dir), [t('x', 3)], 1e9), ['model.safetensors']);
  });
});
