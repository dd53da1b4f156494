// The r×r inverses of PEFT's riemannian and lorafa optimizers, torch.linalg.pinv(M + reg·I) for a symmetric M (a Gram
// matrix BᵀB or AAᵀ), in float64 on the host: tfjs has no inverse, and r is small. pinv drops the singular values at
// or below rtol·σ_max (rtol = float32 ε · r, torch's default for float32); for a matrix that is well inside that, the
// Cholesky inverse is the same matrix at a fraction of the cost, so that is the usual route and a symmetric eigen
// decomposition (Jacobi) handles the rest (reg = 0 with a rank-deficient factor, e.g. B = 0 at the start).

const F32_EPS = 1.1920928955078125e-7;
/** Cholesky is trusted when every pivot is this far above the pinv cutoff (its pivots only bound the eigenvalues). */
const CHOLESKY_MARGIN = 1e4;

/** pinv(M + reg·I) of a symmetric r×r matrix M (row-major), row-major in float64. */
export function dampedPinv(m: ArrayLike<number>, r: number, reg: number): Float64Array {
  const a = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j < r; j++) a[i * r + j] = (m[i * r + j] + m[j * r + i]) / 2 + (i === j ? reg : 0);
  let trace = 0;
  for (let i = 0; i < r; i++) trace += a[i * r + i];
  const cutoff = F32_EPS * r * trace; // ≥ rtol·σ_max, since σ_max ≤ trace for a positive semi-definite matrix
  return choleskyInverse(a, r, CHOLESKY_MARGIN * cutoff) ?? eigenPinv(a, r);
}

/** A⁻¹ = L⁻ᵀL⁻¹ from A = LLᵀ, or null when a pivot (squared) is not above `minPivot`. */
function choleskyInverse(a: Float64Array, r: number, minPivot: number): Float64Array | null {
  const l = new Float64Array(r * r);
  for (let j = 0; j < r; j++) {
    let d = a[j * r + j];
    for (let k = 0; k < j; k++) d -= l[j * r + k] ** 2;
    if (!(d > minPivot)) return null;
    const ljj = Math.sqrt(d);
    l[j * r + j] = ljj;
    for (let i = j + 1; i < r; i++) {
      let s = a[i * r + j];
      for (let k = 0; k < j; k++) s -= l[i * r + k] * l[j * r + k];
      l[i * r + j] = s / ljj;
    }
  }
  // L⁻¹ by forward substitution, column by column (lower triangular).
  const li = new Float64Array(r * r);
  for (let c = 0; c < r; c++) {
    li[c * r + c] = 1 / l[c * r + c];
    for (let i = c + 1; i < r; i++) {
      let s = 0;
      for (let k = c; k < i; k++) s -= l[i * r + k] * li[k * r + c];
      li[i * r + c] = s / l[i * r + i];
    }
  }
  const inv = new Float64Array(r * r);
  for (let i = 0; i < r; i++)
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < r; k++) s += li[k * r + i] * li[k * r + j];
      inv[i * r + j] = s;
      inv[j * r + i] = s;
    }
  return inv;
}

/** Σ v vᵀ/λ over the eigenpairs with λ above torch's cutoff (float32 ε · r · λ_max), by cyclic Jacobi. */
function eigenPinv(a: Float64Array, r: number): Float64Array {
  const { values, vectors } = jacobiEigen(a, r);
  const top = Math.max(0, ...values.map(Math.abs));
  const inv = new Float64Array(r * r);
  values.forEach((lambda, k) => {
    if (!(Math.abs(lambda) > F32_EPS * r * top)) return;
    for (let i = 0; i < r; i++)
      for (let j = 0; j < r; j++) inv[i * r + j] += (vectors[i * r + k] * vectors[j * r + k]) / lambda;
  });
  return inv;
}

/** Eigenvalues and eigenvectors (columns of `vectors`) of a symmetric matrix. */
export function jacobiEigen(input: Float64Array, r: number): { values: number[]; vectors: Float64Array } {
  const a = Float64Array.from(input);
  const v = new Float64Array(r * r);
  for (let i = 0; i < r; i++) v[i * r + i] = 1;
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < r; p++) for (let q = p + 1; q < r; q++) off += a[p * r + q] ** 2;
    if (off === 0 || off < 1e-30 * frobenius2(a)) break;
    for (let p = 0; p < r; p++) for (let q = p + 1; q < r; q++) rotate(a, v, r, p, q);
  }
  return { values: Array.from({ length: r }, (_, i) => a[i * r + i]), vectors: v };
}

/** One Jacobi rotation that zeroes a[p][q] (and a[q][p]); v collects the rotations. */
function rotate(a: Float64Array, v: Float64Array, r: number, p: number, q: number): void {
  const apq = a[p * r + q];
  if (apq === 0) return;
  const theta = (a[q * r + q] - a[p * r + p]) / (2 * apq);
  const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
  const c = 1 / Math.sqrt(t * t + 1);
  const s = t * c;
  for (let k = 0; k < r; k++) {
    const [akp, akq] = [a[k * r + p], a[k * r + q]];
    a[k * r + p] = c * akp - s * akq;
    a[k * r + q] = s * akp + c * akq;
  }
  for (let k = 0; k < r; k++) {
    const [apk, aqk] = [a[p * r + k], a[q * r + k]];
    a[p * r + k] = c * apk - s * aqk;
    a[q * r + k] = s * apk + c * aqk;
  }
  for (let k = 0; k < r; k++) {
    const [vkp, vkq] = [v[k * r + p], v[k * r + q]];
    v[k * r + p] = c * vkp - s * vkq;
    v[k * r + q] = s * vkp + c * vkq;
  }
}

function frobenius2(a: Float64Array): number {
  let s = 0;
  for (const x of a) s += x * x;
  return s;
}
