// Combining adapters as PEFT's add_weighted_adapter: cat is exact, linear is PEFT's √(w·s) formula, svd is the best
// rank-k factorisation of Σ wᵢ·ΔWᵢ; each checked against a direct computation on the host.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { combinationError, combineAdapters, weightedDelta } from '../../src/adapters/combine';
import {
  loadAdapter,
  loraScaling,
  makeAdapterConfig,
  moduleLoraParams,
  saveAdapter,
  type Adapter,
  type AdapterConfig,
} from '../../src/adapters/peft';
import type { HostTensor } from '../../src/adapters/safetensors';
import { matrix, svd } from '../../src/adapters/svd';
import { Rng } from '../../src/engine/data/rng';
import { tempDir } from '../helpers/shared';

const OUT = 6;
const IN = 5;

function rand(shape: number[], rng: Rng): HostTensor {
  return {
    dtype: 'float32',
    shape,
    data: Float32Array.from({ length: shape[0] * shape[1] }, () => rng.next() * 2 - 1),
  };
}

function adapter(seed: number, r: number, modules: string[], extra: Partial<AdapterConfig> = {}): Adapter {
  const rng = new Rng(seed);
  const lora = new Map(modules.map((m) => [m, { A: rand([r, IN], rng), B: rand([OUT, r], rng) }]));
  return {
    config: makeAdapterConfig({
      r,
      lora_alpha: 2 * r + seed,
      target_modules: modules.map((m) => m.split('.').pop()!),
      ...extra,
    }),
    lora,
    modulesToSave: new Map(),
  };
}

/** scaling · B · A of one module of `a`, formed directly. */
function delta(a: Adapter, module: string): Float64Array {
  return weightedDelta([a], [1], module);
}

function maxDiff(x: ArrayLike<number>, y: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

function maxAbs(x: ArrayLike<number>): number {
  return maxDiff(x, new Float64Array(x.length));
}

describe('combineAdapters', () => {
  const q = 'layers.0.q_proj';
  const v = 'layers.0.v_proj';

  it('cat equals Σ wᵢ·ΔWᵢ, with different ranks, alphas, rsLoRA, a negative weight and a module one adapter lacks', () => {
    const a = adapter(1, 2, [q, v]);
    const b = adapter(2, 3, [q], { use_rslora: true });
    const weights = [0.7, -1.3];
    const c = combineAdapters([a, b], { combination: 'cat', weights });
    assert.equal(c.config.r, 5);
    assert.equal(c.config.lora_alpha, 5);
    assert.equal(c.config.use_rslora, false);
    assert.deepEqual(c.config.target_modules, ['q_proj', 'v_proj']);
    for (const m of [q, v]) {
      const want = new Float64Array(OUT * IN);
      for (const [x, w] of [
        [a, weights[0]],
        [b, weights[1]],
      ] as const)
        if (x.lora.has(m)) delta(x, m).forEach((d, i) => (want[i] += w * d));
      const got = delta(c, m);
      assert.ok(maxAbs(want) > 0.1);
      assert.ok(maxDiff(got, want) < 1e-6 * maxAbs(want), `${m}: ${maxDiff(got, want)}`);
      assert.deepEqual(c.lora.get(m)!.A.shape, [5, IN], 'padded to r with zero rows, as PEFT');
    }
    assert.ok(combinationError(c, [a, b], weights) < 1e-6);
  });

  it("linear is PEFT's Σ√(wᵢsᵢ)Aᵢ, Σ√(wᵢsᵢ)Bᵢ: exact for one adapter, not Σ wᵢ·ΔWᵢ for two different ones", () => {
    const a = adapter(3, 2, [q]);
    const b = adapter(4, 2, [q]);
    const weights = [0.6, 0.4];
    const c = combineAdapters([a, b], { combination: 'linear', weights });
    const [sa, sb] = [a, b].map((x) => loraScaling(moduleLoraParams(x.config, q)));
    const wantA = a.lora
      .get(q)!
      .A.data.map((x, i) => Math.sqrt(weights[0] * sa) * x + Math.sqrt(weights[1] * sb) * b.lora.get(q)!.A.data[i]);
    const wantB = a.lora
      .get(q)!
      .B.data.map((x, i) => Math.sqrt(weights[0] * sa) * x + Math.sqrt(weights[1] * sb) * b.lora.get(q)!.B.data[i]);
    assert.ok(maxDiff(c.lora.get(q)!.A.data, wantA) < 1e-6);
    assert.ok(maxDiff(c.lora.get(q)!.B.data, wantB) < 1e-6);
    assert.equal(c.config.r, 2);
    assert.equal(c.config.lora_alpha, 2);
    assert.ok(combinationError(c, [a, b], weights) > 0.05, 'cross terms: not the weighted sum');

    const single = combineAdapters([a], { combination: 'svd', weights: [2.5] }); // one adapter: always linear
    const want = delta(a, q).map((d) => 2.5 * d);
    assert.ok(maxDiff(delta(single, q), want) < 1e-5 * maxAbs(want));
  });

  it('linear refuses unequal ranks and negative weights (no square root), naming the way out', () => {
    assert.throws(
      () => combineAdapters([adapter(1, 2, [q]), adapter(2, 3, [q])], { combination: 'linear', weights: [1, 1] }),
      /equal r.*cat/s,
    );
    assert.throws(
      () => combineAdapters([adapter(1, 2, [q]), adapter(2, 2, [q])], { combination: 'linear', weights: [1, -1] }),
      (e: Error) => /negative|< 0/.test(e.message) && /cat or svd/.test(e.message),
    );
  });

  it('svd at full rank is exact; truncated, it is the best rank-k approximation of Σ wᵢ·ΔWᵢ', () => {
    const a = adapter(5, 2, [q]);
    const b = adapter(6, 2, [q]);
    const weights = [1, 0.5];
    const want = weightedDelta([a, b], weights, q);
    const full = combineAdapters([a, b], { combination: 'svd', weights, svdRank: 4 });
    assert.ok(maxDiff(delta(full, q), want) < 1e-5 * maxAbs(want));

    const k2 = combineAdapters([a, b], { combination: 'svd', weights }); // default rank: max rᵢ = 2
    assert.equal(k2.config.r, 2);
    const s = svd(matrix(want, OUT, IN)).s;
    const got = delta(k2, q);
    let err2 = 0;
    for (let i = 0; i < got.length; i++) err2 += (got[i] - want[i]) ** 2;
    const dropped = s[2] ** 2 + s[3] ** 2; // Eckart–Young: ‖ΔW − ΔW₂‖²_F = σ₃² + σ₄²
    assert.ok(dropped > 1e-3);
    assert.ok(Math.abs(err2 - dropped) < 1e-5 * (1 + dropped), `${err2} vs ${dropped}`);
  });

  it('svd clamp bounds both factors by the quantile of their values', () => {
    const c = combineAdapters([adapter(7, 2, [q]), adapter(8, 2, [q])], {
      combination: 'svd',
      weights: [1, 1],
      svdClamp: 0.9,
    });
    const p = c.lora.get(q)!;
    const values = Float64Array.from([...p.B.data, ...p.A.data]).sort();
    const hi = values[values.length - 1];
    assert.ok(hi > 0);
    const count = values.filter((x) => x === hi).length;
    assert.ok(count > 1, 'the largest values were clamped to one bound');
    assert.ok(values.every((x) => Math.abs(x) <= hi + 1e-7));
  });

  it('modules_to_save come from the one adapter that has them; two adapters training one head are refused', () => {
    const a = adapter(1, 2, [q], { modules_to_save: ['classifier'] });
    a.modulesToSave.set('classifier.weight', rand([2, IN], new Rng(9)));
    const b = adapter(2, 2, [q]);
    const c = combineAdapters([a, b], { combination: 'cat', weights: [1, 1] });
    assert.equal(c.modulesToSave.get('classifier.weight'), a.modulesToSave.get('classifier.weight'));
    assert.deepEqual(c.config.modules_to_save, ['classifier']);
    assert.throws(
      () => combineAdapters([a, a], { combination: 'cat', weights: [1, 1] }),
      /both train 'classifier.weight'/,
    );
  });

  it('per-module ranks (rank_pattern sources) come out as one rank, zero-padded, and load back as a PEFT adapter', () => {
    const a = adapter(1, 2, [q, v]);
    const b = adapter(2, 2, [q], { rank_pattern: { q_proj: 4 }, alpha_pattern: { q_proj: 3 } });
    b.lora.set(q, { A: rand([4, IN], new Rng(3)), B: rand([OUT, 4], new Rng(4)) }); // rank_pattern: q has r = 4
    const c = combineAdapters([a, b], { combination: 'cat', weights: [1, 1] });
    assert.equal(c.config.r, 6); // PEFT's Σ r = 4 grows to q's 2 + 4
    assert.deepEqual(
      [c.lora.get(q)!.A.shape, c.lora.get(v)!.B.shape],
      [
        [6, IN],
        [OUT, 6],
      ],
    );
    assert.deepEqual([c.config.rank_pattern, c.config.alpha_pattern], [{}, {}]);
    const dir = tempDir();
    saveAdapter(dir, c);
    const back = loadAdapter(dir);
    for (const m of [q, v]) assert.ok(maxDiff(delta(back, m), delta(c, m)) === 0);
    assert.ok(combinationError(back, [a, b], [1, 1]) < 1e-6);
  });
});
