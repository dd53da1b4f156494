// A seeded, portable PRNG: xoshiro128** (Blackman & Vigna) seeded through splitmix32. Math.random cannot be seeded,
// and a run must be reproducible from its seed alone: shuffles, dropout seeds, fresh head and LoRA A init.
// The 128-bit state is four uint32s, saved in checkpoints as a plain number[] and restored with `rng.state = saved`.

/** Mixes any number of integers (seed, epoch, a purpose tag) into one well-spread uint32 seed. */
export function hashSeed(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    // Both halves of a safe integer count, so seeds beyond 2^32 are not folded onto small ones.
    const v = Number.isFinite(p) ? Math.trunc(p) : 0;
    h = splitmix32(h ^ (v >>> 0));
    h = splitmix32(h ^ (Math.floor(v / 0x100000000) >>> 0));
  }
  return h;
}

function splitmix32(x: number): number {
  let z = (x + 0x9e3779b9) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

export class Rng {
  private s = new Uint32Array(4);

  constructor(seed: number) {
    let x = hashSeed(seed);
    for (let i = 0; i < 4; i++) this.s[i] = x = splitmix32(x);
    if (this.s.every((v) => v === 0)) this.s[0] = 1; // the all-zero state is a fixed point
  }

  /** A uniform float in [0, 1) with 32 random bits. */
  next(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result / 0x100000000;
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Fisher–Yates, in place; returns the same array. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** The four uint32 words of the state, for checkpoints. */
  get state(): number[] {
    return Array.from(this.s);
  }

  set state(words: readonly number[]) {
    if (
      words.length !== 4 ||
      words.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff) ||
      words.every((w) => w === 0)
    ) {
      throw new Error(`Rng state must be four uint32 words, not all zero; got [${words.join(', ')}]`);
    }
    this.s.set(words);
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
