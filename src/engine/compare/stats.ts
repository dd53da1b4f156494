// The adapter statistics `loraplus compare` reports, on host matrices in Float64 (src/adapters/svd.ts):
//   - the spectrum of ΔW = scaling · B [out, r] · A [r, in], from the factors (the [out, in] product is never
//     formed);
//   - three ranks of that spectrum (see `spectrumStats`);
//   - the subspace similarity of Hu et al. 2021 (LoRA, §7) between two adapters' top singular directions, on the
//     input side (right-singular vectors: A's row space) and on the output side (left-singular vectors: B's span);
//   - the cosine of two updates, ⟨ΔW₁, ΔW₂⟩ / (‖ΔW₁‖‖ΔW₂‖), from r×r Gram products (again no [out, in] product).
import type { LoraPair } from '../../adapters/peft';
import { lowRankSvd, matmul, matrix, svd, transpose, type Matrix, type SvdResult } from '../../adapters/svd';
import type { ModuleStat, SubspaceSimilarity } from '../../protocol/compare';

/** σ below this fraction of σ_max count as zero for `numerical_rank` (float32 weights carry ~1e-7 noise; LoRA
 *  directions that matter are far above 1e-3 of the largest). */
export const NUMERICAL_RANK_TOL = 1e-3;
/** The energy fraction of `energy_rank_90`. */
export const ENERGY_FRACTION = 0.9;

/**
 * SVD of ΔW = scaling · B·A of one LoRA pair: s [k], vt [k, in] (right-singular vectors as rows),
 * k = min(r, out, in).
 */
export function deltaSvd(pair: LoraPair, scaling: number): SvdResult {
  const [r, inF] = pair.A.shape;
  const out = pair.B.shape[0];
  return lowRankSvd(matrix(pair.B.data, out, r), matrix(pair.A.data, r, inF), scaling);
}

/** SVD of lora_A [r, in] alone: the paper's §7 compares these right-singular vectors. */
export function loraASvd(pair: LoraPair): SvdResult {
  const [r, inF] = pair.A.shape;
  return svd(matrix(pair.A.data, r, inF));
}

/**
 * Three readings of how many directions a spectrum σ₁ ≥ … ≥ σ_k ≥ 0 really uses:
 *   effective_rank  exp(H(p)) with p_i = σ_i / Σσ (Roy & Vetterli 2007, "The effective rank"): a continuous count,
 *                   k for a flat spectrum, 1 for a single direction, 0 for ΔW = 0;
 *   numerical_rank  #{σ_i > 1e-3 · σ_max};
 *   energy_rank_90  the least k with σ₁² + … + σ_k² ≥ 90% of ‖ΔW‖_F².
 */
export function spectrumStats(
  sigma: ArrayLike<number>,
): Pick<ModuleStat, 'norm' | 'effective_rank' | 'numerical_rank' | 'energy_rank_90'> {
  const s = Array.from(sigma);
  const energy = s.reduce((t, x) => t + x * x, 0);
  const max = s.reduce((m, x) => Math.max(m, x), 0);
  let energyRank = 0;
  for (let acc = 0; energyRank < s.length && acc < ENERGY_FRACTION * energy; energyRank++) acc += s[energyRank] ** 2;
  return {
    norm: Math.sqrt(energy),
    effective_rank: effectiveRank(s),
    numerical_rank: max > 0 ? s.filter((x) => x > NUMERICAL_RANK_TOL * max).length : 0,
    energy_rank_90: energy > 0 ? energyRank : 0,
  };
}

/** exp of the Shannon entropy of σ / Σσ (0 · log 0 = 0); 0 when every σ is 0. */
export function effectiveRank(sigma: ArrayLike<number>): number {
  const s = Array.from(sigma);
  const total = s.reduce((t, x) => t + x, 0);
  if (!(total > 0)) return 0;
  let h = 0;
  for (const x of s) if (x > 0) h -= (x / total) * Math.log(x / total);
  return Math.exp(h);
}

/**
 * Hu et al.'s φ(i, j) = ‖U_iᵀ V_j‖_F² / min(i, j) for every 1 ≤ i ≤ k1, 1 ≤ j ≤ k2, where U_i is the
 * top-i rows of vt1 [k1, n] and V_j the top-j rows of vt2 [k2, n] (orthonormal rows, most important first).
 * φ is 1 when one span contains the other and about max(i, j)/n for unrelated random subspaces. Returns [k1][k2].
 */
export function subspaceGrid(vt1: Matrix, vt2: Matrix): number[][] {
  if (vt1.cols !== vt2.cols) throw new Error(`subspaceGrid: directions in ${vt1.cols} vs ${vt2.cols} dimensions`);
  const g = matmul(vt1, transpose(vt2)); // [k1, k2]: cosines between the directions
  const [k1, k2] = [g.rows, g.cols];
  // prefix[i][j] = Σ_{a<i, b<j} g_ab² = ‖U_iᵀ V_j‖_F²
  const prefix = Array.from({ length: k1 + 1 }, () => new Float64Array(k2 + 1));
  for (let i = 1; i <= k1; i++) {
    for (let j = 1; j <= k2; j++) {
      prefix[i][j] = g.data[(i - 1) * k2 + (j - 1)] ** 2 + prefix[i - 1][j] + prefix[i][j - 1] - prefix[i - 1][j - 1];
    }
  }
  return Array.from({ length: k1 }, (_, i) =>
    Array.from({ length: k2 }, (_, j) => clamp01(prefix[i + 1][j + 1] / Math.min(i + 1, j + 1))),
  );
}

/** φ at full ranks, its diagonal φ(i, i), and (when asked) the whole grid; φ is null when a side has no directions
 *  (σ_max = 0: an untrained ΔW, whose singular vectors are arbitrary). `side` picks the right-singular vectors
 *  (input side, the paper's) or the left-singular ones (output side). */
export function subspaceSimilarity(
  a: SvdResult,
  b: SvdResult,
  grid: boolean,
  side: 'in' | 'out' = 'in',
): SubspaceSimilarity {
  if (!(a.s[0] > 0) || !(b.s[0] > 0)) return { phi: null, diag: [] };
  const full = side === 'in' ? subspaceGrid(a.vt, b.vt) : subspaceGrid(transpose(a.u), transpose(b.u));
  const [k1, k2] = [full.length, full[0]?.length ?? 0];
  const out: SubspaceSimilarity = {
    phi: full[k1 - 1][k2 - 1],
    diag: Array.from({ length: Math.min(k1, k2) }, (_, i) => round6(full[i][i])),
  };
  if (grid) out.grid = full.map((row) => row.map(round6));
  return out;
}

/**
 * ⟨s₁·B₁A₁, s₂·B₂A₂⟩_F = s₁s₂·tr(A₁ᵀB₁ᵀB₂A₂) = s₁s₂·tr((B₁ᵀB₂)(A₂A₁ᵀ)): two r×r Gram products, O((out + in)·r²).
 */
export function deltaInner(p1: LoraPair, s1: number, p2: LoraPair, s2: number): number {
  const bb = matmul(transpose(toMatrix(p1.B)), toMatrix(p2.B)); // [r1, r2]
  const aa = matmul(toMatrix(p2.A), transpose(toMatrix(p1.A))); // [r2, r1]
  let trace = 0;
  for (let i = 0; i < bb.rows; i++)
    for (let j = 0; j < bb.cols; j++) trace += bb.data[i * bb.cols + j] * aa.data[j * aa.cols + i];
  return s1 * s2 * trace;
}

/**
 * cos(ΔW₁, ΔW₂) = ⟨ΔW₁, ΔW₂⟩_F / (‖ΔW₁‖_F ‖ΔW₂‖_F) ∈ [-1, 1]: 1 for the same update up to scale, 0 for unrelated
 * ones. Null when a ΔW is zero or the shapes differ.
 */
export function deltaCosine(p1: LoraPair, s1: number, p2: LoraPair, s2: number): number | null {
  if (p1.B.shape[0] !== p2.B.shape[0] || p1.A.shape[1] !== p2.A.shape[1]) return null;
  const n1 = Math.sqrt(Math.max(0, deltaInner(p1, s1, p1, s1)));
  const n2 = Math.sqrt(Math.max(0, deltaInner(p2, s2, p2, s2)));
  if (!(n1 > 0) || !(n2 > 0)) return null;
  return clampCos(deltaInner(p1, s1, p2, s2) / (n1 * n2));
}

/** The entrywise cosine of two lora_A of the same shape (null otherwise): near 1 when both stayed at one start. */
export function matrixCosine(a: LoraPair['A'], b: LoraPair['A']): number | null {
  if (a.shape.join() !== b.shape.join()) return null;
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.data.length; i++) {
    ab += a.data[i] * b.data[i];
    aa += a.data[i] * a.data[i];
    bb += b.data[i] * b.data[i];
  }
  return aa > 0 && bb > 0 ? clampCos(ab / Math.sqrt(aa * bb)) : null;
}

const toMatrix = (t: LoraPair['A']): Matrix => matrix(t.data, t.shape[0], t.shape[1]);
const clampCos = (x: number): number => Math.min(1, Math.max(-1, x)); // rounding can step past ±1 by ~1e-16

/**
 * Where a module sits, for the layer × module-kind heatmap: model.layers.3.self_attn.q_proj → 3, self_attn.q_proj.
 */
export function moduleLocation(module: string): { layer: number | null; kind: string } {
  const m = /(?:^|\.)(\d+)\.(.+)$/.exec(module);
  return m ? { layer: Number(m[1]), kind: m[2] } : { layer: null, kind: module };
}

const clamp01 = (x: number): number => Math.min(1, Math.max(0, x)); // rounding can step past 1 by ~1e-16
const round6 = (x: number): number => Math.round(x * 1e6) / 1e6;

/** The statistics of one module; `svd` is its deltaSvd (kept by the caller for the similarity). */
export function moduleStat(module: string, pair: LoraPair, scaling: number, dsvd: SvdResult): ModuleStat {
  return {
    module,
    ...moduleLocation(module),
    r: pair.A.shape[0],
    scaling,
    shape: [pair.B.shape[0], pair.A.shape[1]],
    sigma: Array.from(dsvd.s),
    ...spectrumStats(dsvd.s),
  };
}
