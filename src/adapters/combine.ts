// Combining several LoRA adapters of one base model into one, as PEFT's LoraModel.add_weighted_adapter does.
// For adapters i with weights wᵢ, scalings sᵢ (alpha/r) and pairs (Aᵢ [rᵢ, in], Bᵢ [out, rᵢ]),
// ΔWᵢ = sᵢ·Bᵢ·Aᵢ:
//
//   cat     A = [w₁s₁A₁; w₂s₂A₂; …] (rows), B = [B₁ B₂ …] (columns), r = Σ rᵢ.
//           B·A = Σ wᵢ·ΔWᵢ exactly.
//   linear  A = Σ √(wᵢsᵢ)·Aᵢ, B = Σ √(wᵢsᵢ)·Bᵢ, all rᵢ equal, r = rᵢ. This is PEFT's formula
//           and it is NOT Σ wᵢ·ΔWᵢ when the adapters differ: B·A = Σᵢⱼ √(wᵢsᵢ wⱼsⱼ)·Bᵢ·Aⱼ
//           has cross terms Bᵢ·Aⱼ. It is exact for one adapter (a re-weighting) or identical ones;
//           negative wᵢsᵢ have no square root, so they are refused.
//   svd     Σ wᵢ·ΔWᵢ re-factored to rank k (svd_rank, default max rᵢ): its top k singular triplets,
//           B = U·diag(S), A = Vᵀ, with PEFT's optional clamp of both to the `svd_clamp` quantile of
//           their values. Exact when k ≥ Σ rᵢ; else the best rank-k approximation. PEFT's svd
//           multiplies each ΔWᵢ by sᵢ once more (get_delta_weight already includes sᵢ, and it weights
//           by wᵢ·sᵢ): here the weighted ΔW is Σ wᵢ·ΔWᵢ, the same sum `cat` realises; the two agree
//           when every scaling is 1.
//
// The new adapter gets PEFT's config: adapter 0's, with r = lora_alpha = the new rank (scaling 1) and use_rslora
// false (PEFT's fix for rsLoRA sources, which otherwise came out scaled by √r), target_modules the union. A module
// some adapters lack takes the others' pairs (PEFT skips the missing ones). A module of lower rank than r is padded
// with zero rows/columns, as PEFT's `cat` does; where rank_pattern sources make a module's rank exceed PEFT's r, r
// grows to it (rather than a rank_pattern entry). modules_to_save (e.g. a classification head) are not LoRA: each
// parameter is taken from the one adapter that has it; two adapters training the same module are refused, as in PEFT.
// Math in Float64 on host arrays; the result is float32, as adapters are stored.
import { LoraPlusError } from '../protocol/errors';
import {
  loraScaling,
  makeAdapterConfig,
  moduleLoraParams,
  type Adapter,
  type AdapterConfig,
  type LoraPair,
} from './peft';
import type { HostTensor } from './safetensors';
import { lowRankSvd, matrix, truncateSvd } from './svd';
import type { Combination } from '../protocol/merge';

export interface CombineOptions {
  combination: Combination;
  weights: number[]; // one per adapter
  svdRank?: number | null; // svd: the new rank (default: the largest r of the inputs)
  svdClamp?: number | null; // svd: clamp lora_A/lora_B to this quantile of their values, in (0, 1]
}

/** One adapter from several, as PEFT's add_weighted_adapter. A single adapter is always combined `linear`. */
export function combineAdapters(adapters: Adapter[], o: CombineOptions): Adapter {
  if (adapters.length === 0) throw usage('no adapters to combine');
  if (o.weights.length !== adapters.length || !o.weights.every(Number.isFinite)) {
    throw usage(`expected ${adapters.length} finite weight(s), got [${o.weights.join(', ')}]`);
  }
  const combination: Combination = adapters.length === 1 ? 'linear' : o.combination; // as PEFT
  const ranks = adapters.map((a) => a.config.r);
  let r: number;
  if (combination === 'linear') {
    if (new Set(ranks).size > 1) {
      throw new LoraPlusError({
        code: 'combine/rank-mismatch',
        message: `linear combination needs adapters of equal r, got r = ${ranks.join(', ')}`,
        hint: 'Use --combination cat (exact) or svd.',
      });
    }
    r = ranks[0];
  } else if (combination === 'cat') {
    r = ranks.reduce((a, b) => a + b, 0);
  } else {
    r = o.svdRank ?? Math.max(...ranks);
    if (!Number.isInteger(r) || r <= 0) throw usage(`svd rank must be a positive integer, got ${r}`);
  }
  if (o.svdClamp != null && !(o.svdClamp > 0 && o.svdClamp <= 1))
    throw usage(`svd clamp must be a quantile in (0, 1], got ${o.svdClamp}`);

  const pairs = new Map<string, LoraPair>();
  for (const module of unionOf(adapters.map((a) => [...a.lora.keys()]))) {
    const parts = partsOf(adapters, o.weights, module);
    pairs.set(
      module,
      combination === 'cat'
        ? catPair(parts, r)
        : combination === 'linear'
          ? linearPair(parts, module)
          : svdPair(parts, r, o.svdClamp ?? null),
    );
  }
  // One rank for every module (zero rows/columns change no product): no rank_pattern, whose alpha_pattern not
  // every reader honours. Only rank_pattern sources can make a module's rank exceed PEFT's r.
  r = Math.max(r, ...[...pairs.values()].map((p) => p.A.shape[0]));
  const lora = new Map([...pairs].map(([m, p]) => [m, padRank(p, r)]));

  const modulesToSave = new Map<string, HostTensor>();
  const owner = new Map<string, number>();
  adapters.forEach((a, i) => {
    for (const [param, t] of a.modulesToSave) {
      if (owner.has(param)) {
        throw new LoraPlusError({
          code: 'combine/modules-to-save-conflict',
          message:
            `adapters ${owner.get(param)! + 1} and ${i + 1} both train '${param}' in full (modules_to_save); ` +
            'such weights cannot be combined',
          hint: 'Combine adapters of which at most one trains each head (PEFT refuses this too).',
        });
      }
      owner.set(param, i);
      modulesToSave.set(param, t);
    }
  });

  const first = adapters[0].config;
  const { loraplus_lr_ratio: _ratio, ...inherited } = first; // a training setting, not true of the combination
  const saveLists = adapters.map((a) => a.config.modules_to_save ?? []);
  const config: AdapterConfig = makeAdapterConfig({
    ...inherited,
    r,
    lora_alpha: r,
    use_rslora: false,
    target_modules: combinedTargets(
      adapters.map((a) => a.config),
      [...lora.keys()],
    ),
    rank_pattern: {}, // adapter 0's patterns no longer apply: scaling is 1 everywhere
    alpha_pattern: {},
    modules_to_save: modulesToSave.size ? unionOf(saveLists) : null,
    fan_in_fan_out: adapters.some((a) => a.config.fan_in_fan_out),
  });
  return { config, lora, modulesToSave };
}

/** Σ wᵢ·sᵢ·Bᵢ·Aᵢ [out, in] for one module, formed directly (for checks and tests on small models). */
export function weightedDelta(adapters: Adapter[], weights: number[], module: string): Float64Array {
  const parts = partsOf(adapters, weights, module);
  const { out, inF } = parts[0];
  const delta = new Float64Array(out * inF);
  for (const { A, B, k, coef } of parts) {
    for (let i = 0; i < out; i++) {
      for (let p = 0; p < k; p++) {
        const b = coef * B[i * k + p];
        if (b === 0) continue;
        for (let j = 0; j < inF; j++) delta[i * inF + j] += b * A[p * inF + j];
      }
    }
  }
  return delta;
}

/**
 * How far a combined adapter is from Σ wᵢ·ΔWᵢ, probed rather than formed (O((out + in)·r) per module, so it
 * is cheap on large models): max over modules of ‖ΔW·x − Σ wᵢ·ΔWᵢ·x‖∞ / ‖Σ wᵢ·ΔWᵢ·x‖∞
 * for a fixed pseudo-random x.
 * About 1e-7 for `cat` (float32 storage); large for `linear` of different adapters.
 */
export function combinationError(combined: Adapter, adapters: Adapter[], weights: number[]): number {
  let worst = 0;
  for (const [module] of combined.lora) {
    const want = partsOf(adapters, weights, module);
    const got = partsOf([combined], [1], module);
    const x = probeVector(want[0].inF);
    const yWant = applyParts(want, x);
    const yGot = applyParts(got, x);
    let diff = 0,
      scale = 0;
    for (let i = 0; i < yWant.length; i++) {
      diff = Math.max(diff, Math.abs(yGot[i] - yWant[i]));
      scale = Math.max(scale, Math.abs(yWant[i]));
    }
    worst = Math.max(worst, scale > 0 ? diff / scale : diff);
  }
  return worst;
}

// ---- the three combinations, per module ------------------------------------------------------------------------

interface Part {
  A: Float32Array; // [k, in]
  B: Float32Array; // [out, k]
  k: number;
  out: number;
  inF: number;
  coef: number; // wᵢ·sᵢ
}

// The adapters that have `module`, with their weight × scaling; checks that they agree on [out, in].
function partsOf(adapters: Adapter[], weights: number[], module: string): Part[] {
  const parts: Part[] = [];
  adapters.forEach((a, i) => {
    const pair = a.lora.get(module);
    if (!pair) return;
    const [k, inF] = pair.A.shape;
    const out = pair.B.shape[0];
    if (parts.length && (parts[0].out !== out || parts[0].inF !== inF)) {
      throw new LoraPlusError({
        code: 'combine/shape-mismatch',
        message:
          `module '${module}' is [${out} × ${inF}] in adapter ${i + 1} ` +
          `but [${parts[0].out} × ${parts[0].inF}] in an earlier one`,
        hint: 'Combine only adapters trained on the same base model.',
      });
    }
    parts.push({
      A: pair.A.data as Float32Array,
      B: pair.B.data as Float32Array,
      k,
      out,
      inF,
      coef: weights[i] * loraScaling(moduleLoraParams(a.config, module)),
    });
  });
  if (!parts.length) throw new Error(`internal: no adapter has module ${module}`);
  return parts;
}

function catPair(parts: Part[], r: number): LoraPair {
  const { out, inF } = parts[0];
  const total = parts.reduce((s, p) => s + p.k, 0);
  const k = Math.max(r, total); // zero-padded up to r, as PEFT's target_lora_A.data[:n] = …
  const A = new Float32Array(k * inF);
  const B = new Float32Array(out * k);
  let row = 0;
  for (const p of parts) {
    for (let q = 0; q < p.k; q++) for (let j = 0; j < inF; j++) A[(row + q) * inF + j] = p.coef * p.A[q * inF + j];
    for (let i = 0; i < out; i++) for (let q = 0; q < p.k; q++) B[i * k + row + q] = p.B[i * p.k + q];
    row += p.k;
  }
  return pair(A, [k, inF], B, [out, k]);
}

function linearPair(parts: Part[], module: string): LoraPair {
  const { out, inF, k } = parts[0];
  if (parts.some((p) => p.k !== k)) {
    throw new LoraPlusError({
      code: 'combine/rank-mismatch',
      message: `linear combination: module '${module}' has ranks ${parts.map((p) => p.k).join(', ')}`,
      hint: 'Use --combination cat (exact) or svd.',
    });
  }
  const A = new Float64Array(k * inF);
  const B = new Float64Array(out * k);
  for (const p of parts) {
    if (p.coef < 0) {
      const negative = `module '${module}' has weight·scaling ${p.coef} < 0`;
      throw new LoraPlusError({
        code: 'combine/negative-weight',
        message: `linear combination takes √(weight·scaling), and ${negative}`,
        hint: 'Use --combination cat or svd for negative weights.',
      });
    }
    const c = Math.sqrt(p.coef);
    for (let i = 0; i < A.length; i++) A[i] += c * p.A[i];
    for (let i = 0; i < B.length; i++) B[i] += c * p.B[i];
  }
  return pair(Float32Array.from(A), [k, inF], Float32Array.from(B), [out, k]);
}

function svdPair(parts: Part[], r: number, clamp: number | null): LoraPair {
  const { out, inF } = parts[0];
  // Σ wᵢsᵢ·Bᵢ·Aᵢ = [B₁ B₂ …]·[w₁s₁A₁; w₂s₂A₂; …]:
  // the SVD of that product, from its factors.
  const cat = catPair(parts, 0);
  const kk = cat.A.shape[0];
  const res = truncateSvd(lowRankSvd(matrix(cat.B.data, out, kk), matrix(cat.A.data, kk, inF)), r);
  const k = res.s.length;
  const B = new Float64Array(out * r); // U·diag(S), zero columns past the rank
  const A = new Float64Array(r * inF); // Vᵀ, zero rows past the rank
  for (let i = 0; i < out; i++) for (let q = 0; q < k; q++) B[i * r + q] = res.u.data[i * k + q] * res.s[q];
  A.set(res.vt.data.subarray(0, k * inF));
  if (clamp !== null) {
    // PEFT: hi = torch.quantile(cat(U.flatten(), Vh.flatten()), clamp); both clamped to [-hi, hi].
    const values = Float64Array.from([...B, ...A]).sort();
    const hi = quantile(values, clamp);
    for (const m of [A, B]) for (let i = 0; i < m.length; i++) m[i] = Math.min(hi, Math.max(-hi, m[i]));
  }
  return pair(Float32Array.from(A), [r, inF], Float32Array.from(B), [out, r]);
}

// torch.quantile's default ('linear' interpolation) on sorted values.
function quantile(sorted: Float64Array, q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

// ---- helpers ------------------------------------------------------------------------------------------------------

// A [k, in] and B [out, k] padded with zero rows/columns to rank r ≥ k.
function padRank(p: LoraPair, r: number): LoraPair {
  const [k, inF] = p.A.shape;
  if (k === r) return p;
  const out = p.B.shape[0];
  const A = new Float32Array(r * inF);
  A.set(p.A.data as Float32Array);
  const B = new Float32Array(out * r);
  for (let i = 0; i < out; i++) B.set((p.B.data as Float32Array).subarray(i * k, (i + 1) * k), i * r);
  return pair(A, [r, inF], B, [out, r]);
}

function pair(A: Float32Array, aShape: number[], B: Float32Array, bShape: number[]): LoraPair {
  return { A: { dtype: 'float32', shape: aShape, data: A }, B: { dtype: 'float32', shape: bShape, data: B } };
}

function applyParts(parts: Part[], x: Float64Array): Float64Array {
  const { out, inF } = parts[0];
  const y = new Float64Array(out);
  for (const { A, B, k, coef } of parts) {
    const ax = new Float64Array(k); // A·x [k]
    for (let q = 0; q < k; q++) {
      let s = 0;
      for (let j = 0; j < inF; j++) s += A[q * inF + j] * x[j];
      ax[q] = s;
    }
    for (let i = 0; i < out; i++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += B[i * k + q] * ax[q];
      y[i] += coef * s;
    }
  }
  return y;
}

// A fixed, well-spread vector in [-1, 1]: the probe needs no randomness, only no accidental structure.
function probeVector(n: number): Float64Array {
  return Float64Array.from(
    { length: n },
    (_, i) => Math.sin(12.9898 * (i + 1)) * 0.5 + Math.cos(78.233 * (i + 1)) * 0.5,
  );
}

function unionOf(lists: string[][]): string[] {
  return [...new Set(lists.flat())];
}

// PEFT: lists are united; regex strings are joined as (a)|(b). A mix of both: the module names the weights hold.
function combinedTargets(configs: AdapterConfig[], modules: string[]): string[] | string {
  const targets = configs.map((c) => c.target_modules);
  if (targets.every((t) => typeof t === 'string'))
    return targets.length === 1 ? targets[0] : targets.map((t) => `(${t})`).join('|');
  if (targets.every(Array.isArray)) return unionOf(targets as string[][]).sort();
  return unionOf([modules.map((m) => m.slice(m.lastIndexOf('.') + 1))]).sort();
}

function usage(message: string): LoraPlusError {
  return new LoraPlusError({
    code: 'combine/usage',
    message,
    hint: 'Give one --weight per --adapter, and a combination of linear, cat or svd.',
  });
}
