// The seeded PRNG: the reference xoshiro128** sequence, reproducibility, and checkpointable state.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { hashSeed, Rng } from '../../../src/engine/data/rng';

describe('Rng', () => {
  it('is xoshiro128**: the reference C code from state {1, 2, 3, 4}', () => {
    const rng = new Rng(0);
    rng.state = [1, 2, 3, 4];
    const out = Array.from({ length: 5 }, () => rng.next() * 2 ** 32);
    assert.deepEqual(out, [11520, 0, 5927040, 70819200, 2031721883]);
    assert.deepEqual(rng.state, [15224335, 29364750, 272377353, 1125134346]);
  });

  it('gives the same sequence for the same seed and another for another seed', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 100 }, () => a.next());
    assert.deepEqual(
      Array.from({ length: 100 }, () => b.next()),
      xs,
    );
    assert.notDeepEqual(
      Array.from({ length: 100 }, () => c.next()),
      xs,
    );
    assert.ok(xs.every((x) => x >= 0 && x < 1));
    assert.ok(Math.abs(xs.reduce((s, x) => s + x, 0) / xs.length - 0.5) < 0.1);
  });

  it('tells large seeds apart from their low 32 bits', () => {
    assert.notEqual(new Rng(2 ** 32 + 5).next(), new Rng(5).next());
    assert.notEqual(hashSeed(1, 2), hashSeed(2, 1));
  });

  it('resumes the same sequence from a saved state', () => {
    const a = new Rng(7);
    for (let i = 0; i < 10; i++) a.next();
    const saved = JSON.parse(JSON.stringify(a.state)) as number[];
    const rest = Array.from({ length: 20 }, () => a.next());
    const b = new Rng(0);
    b.state = saved;
    assert.deepEqual(
      Array.from({ length: 20 }, () => b.next()),
      rest,
    );
  });

  it('rejects a state that is not four uint32 words', () => {
    const rng = new Rng(1);
    assert.throws(() => {
      rng.state = [1, 2, 3];
    }, /four uint32 words/);
    assert.throws(() => {
      rng.state = [0, 0, 0, 0];
    }, /not all zero/);
    assert.throws(() => {
      rng.state = [1, 2, 3, 2 ** 32];
    }, /four uint32 words/);
  });

  it('int(n) covers 0..n-1 and shuffle is a permutation', () => {
    const rng = new Rng(3);
    const seen = new Set(Array.from({ length: 1000 }, () => rng.int(6)));
    assert.deepEqual([...seen].sort(), [0, 1, 2, 3, 4, 5]);
    const a = Array.from({ length: 50 }, (_, i) => i);
    const s = rng.shuffle([...a]);
    assert.notDeepEqual(s, a);
    assert.deepEqual(
      [...s].sort((x, y) => x - y),
      a,
    );
  });
});
