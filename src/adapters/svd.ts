// Exact singular value decompositions of small host matrices, in Float64, with no tensor backend involved.
// Used by adapter combination (`svd`: a weighted ΔW re-factored to rank k) and by adapter comparison (singular
// values, effective rank, subspace similarity). API:
//
//   matrix(data, rows, cols)    wrap row-major numbers (Float32Array, Float64Array, number[]) as a Matrix (copied)
//   svd(M)                      M [m, n] = u [m, k] · diag(s) [k] · vt [k, n], k = min(m, n), s descending ≥ 0,
//                               u's columns and vt's rows orthonormal (completed to an orthonormal set when M is
//                               rank-deficient, so uᵀu = I and vt·vtᵀ = I always hold)
//   lowRankSvd(B, A, scale)     the SVD of scale · B [out, r] · A [r, in] without forming the [out, in] product
//                               (QR of B and of Aᵀ, then the SVD of the r×r core); k = min(r, out, in)
//   truncateSvd(res, k)         the first k triplets (the best rank-k approximation, Eckart–Young)
//   matmul / transpose / reconstruct (u·diag(s)·vt) for small matrices
//
// Method: one-sided Jacobi (Hestenes) on the columns, which is accurate to working precision even for tiny singular
// values; the cost is O(sweeps · m · n²), fine for the few-hundred-wide matrices and r×r cores used here.

/** A dense row-major Float64 matrix: element (i, j) is data[i * cols + j]. */
export interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array;
}

export interface SvdResult {
  u: Matrix; // [m, k], orthonormal columns (left singular vectors)
  s: Float64Array; // [k], descending, ≥ 0
  vt: Matrix; // [k, n], orthonormal rows (right singular vectors, transposed, like torch.linalg.svd's Vh)
}

export function matrix(data: ArrayLike<number>, rows: number, cols: number): Matrix {
  if (data.length !== rows * cols) throw new Error(`matrix: ${data.length} values do not fill [${rows}, ${cols}]`);
  return { rows, cols, data: Float64Array.from(data) };
}

export function zeros(rows: number, cols: number): Matrix {
  return { rows, cols, data: new Float64Array(rows * cols) };
}

export function transpose(a: Matrix): Matrix {
  const t = zeros(a.cols, a.rows);
  for (let i = 0; i < a.rows; i++) for (let j = 0; j < a.cols; j++) t.data[j * a.rows + i] = a.data[i * a.cols + j];
  return t;
}

/** a [m, k] · b [k, n] → [m, n]. */
export function matmul(a: Matrix, b: Matrix): Matrix {
  if (a.cols !== b.rows) throw new Error(`matmul: [${a.rows}, ${a.cols}] · [${b.rows}, ${b.cols}]`);
  const c = zeros(a.rows, b.cols);
  const n = b.cols;
  for (let i = 0; i < a.rows; i++) {
    const ci = i * n;
    for (let p = 0; p < a.cols; p++) {
      const aip = a.data[i * a.cols + p];
      if (aip === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) c.data[ci + j] += aip * b.data[bp + j];
    }
  }
  return c;
}

/** u · diag(s) · vt: the matrix a decomposition stands for. */
export function reconstruct({ u, s, vt }: SvdResult): Matrix {
  const us = zeros(u.rows, u.cols);
  for (let i = 0; i < u.rows; i++)
    for (let j = 0; j < u.cols; j++) us.data[i * u.cols + j] = u.data[i * u.cols + j] * s[j];
  return matmul(us, vt);
}

/** The first k singular triplets: the best rank-k approximation of the decomposed matrix. */
export function truncateSvd({ u, s, vt }: SvdResult, k: number): SvdResult {
  const kk = Math.max(0, Math.min(k, s.length));
  const uk = zeros(u.rows, kk);
  for (let i = 0; i < u.rows; i++) for (let j = 0; j < kk; j++) uk.data[i * kk + j] = u.data[i * u.cols + j];
  return { u: uk, s: s.slice(0, kk), vt: { rows: kk, cols: vt.cols, data: vt.data.slice(0, kk * vt.cols) } };
}

/** Thin SVD of M [m, n]: k = min(m, n) triplets, singular values descending. */
export function svd(M: Matrix): SvdResult {
  if (M.rows >= M.cols) return jacobiTall(M);
  // M = (Mᵀ)ᵀ = (U' S V'ᵀ)ᵀ = V' S U'ᵀ
  const r = jacobiTall(transpose(M));
  return { u: transpose(r.vt), s: r.s, vt: transpose(r.u) };
}

/** SVD of scale · B [out, r] · A [r, in] from the factors: B = Qb·Rb, Aᵀ = Qa·Ra, so the product is
 *  Qb · (scale·Rb·Raᵀ) · Qaᵀ and only the r×r core needs an SVD. Exact up to rounding, O((out + in)·r²). */
export function lowRankSvd(B: Matrix, A: Matrix, scale = 1): SvdResult {
  const r = B.cols;
  if (A.rows !== r) throw new Error(`lowRankSvd: B [${B.rows}, ${B.cols}] and A [${A.rows}, ${A.cols}] differ in r`);
  if (r > B.rows || r > A.cols) {
    // A rank above a dimension: the product is no larger than the factors, form it.
    const M = matmul(B, A);
    for (let i = 0; i < M.data.length; i++) M.data[i] *= scale;
    return svd(M);
  }
  const qb = qrThin(B); // Qb [out, r], Rb [r, r]
  const qa = qrThin(transpose(A)); // Qa [in, r], Ra [r, r]
  const core = matmul(qb.r, transpose(qa.r)); // [r, r]
  for (let i = 0; i < core.data.length; i++) core.data[i] *= scale;
  const c = svd(core);
  return { u: matmul(qb.q, c.u), s: c.s, vt: matmul(c.vt, transpose(qa.q)) };
}

/** Householder QR of M [m, n], m ≥ n: M = q [m, n] · r [n, n], q with orthonormal columns (even when M is
 *  rank-deficient, unlike Gram–Schmidt). */
export function qrThin(M: Matrix): { q: Matrix; r: Matrix } {
  const { rows: m, cols: n } = M;
  if (m < n) throw new Error(`qrThin: needs rows ≥ cols, got [${m}, ${n}]`);
  const a = Float64Array.from(M.data); // reduced in place to R (upper triangle)
  const vs: Float64Array[] = []; // Householder vectors, v_k of length m - k, ‖v_k‖ = 1 (or 0: no reflection)
  for (let k = 0; k < n; k++) {
    const v = new Float64Array(m - k);
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[k * n + k];
    const alpha = x0 >= 0 ? -norm : norm; // sign chosen against cancellation
    for (let i = k; i < m; i++) v[i - k] = a[i * n + k];
    v[0] -= alpha;
    let vnorm = 0;
    for (let i = 0; i < v.length; i++) vnorm += v[i] * v[i];
    vnorm = Math.sqrt(vnorm);
    if (vnorm > 0) for (let i = 0; i < v.length; i++) v[i] /= vnorm;
    vs.push(v);
    // a[k:, k:] -= 2 v (vᵀ a[k:, k:])
    for (let j = k; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += v[i - k] * a[i * n + j];
      if (dot !== 0) for (let i = k; i < m; i++) a[i * n + j] -= 2 * v[i - k] * dot;
    }
  }
  const r = zeros(n, n);
  for (let i = 0; i < n; i++) for (let j = i; j < n; j++) r.data[i * n + j] = a[i * n + j];
  // q = H_0 · H_1 · … · H_{n-1} · I[:, :n], applied right to left
  const q = zeros(m, n);
  for (let j = 0; j < n; j++) q.data[j * n + j] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += v[i - k] * q.data[i * n + j];
      if (dot !== 0) for (let i = k; i < m; i++) q.data[i * n + j] -= 2 * v[i - k] * dot;
    }
  }
  return { q, r };
}

// ---- one-sided Jacobi -------------------------------------------------------------------------------------------

const EPS = 2.220446049250313e-16;
const MAX_SWEEPS = 80;

// M [m, n] with m ≥ n: rotate pairs of columns of W = M·V until all are mutually orthogonal; then W = U·diag(s).
function jacobiTall(M: Matrix): SvdResult {
  const { rows: m, cols: n } = M;
  const w: Float64Array[] = []; // columns of W, each [m]
  const v: Float64Array[] = []; // columns of V, each [n]
  for (let j = 0; j < n; j++) {
    const col = new Float64Array(m);
    for (let i = 0; i < m; i++) col[i] = M.data[i * n + j];
    w.push(col);
    const e = new Float64Array(n);
    e[j] = 1;
    v.push(e);
  }
  for (let sweep = 0; sweep < MAX_SWEEPS; sweep++) {
    let rotated = false;
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const wp = w[p],
          wq = w[q];
        let alpha = 0,
          beta = 0,
          gamma = 0;
        for (let i = 0; i < m; i++) {
          alpha += wp[i] * wp[i];
          beta += wq[i] * wq[i];
          gamma += wp[i] * wq[i];
        }
        if (gamma === 0 || Math.abs(gamma) <= EPS * Math.sqrt(alpha * beta)) continue;
        rotated = true;
        const zeta = (beta - alpha) / (2 * gamma);
        const t = (zeta >= 0 ? 1 : -1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
        const c = 1 / Math.sqrt(1 + t * t);
        const s = c * t;
        rotate(wp, wq, c, s);
        rotate(v[p], v[q], c, s);
      }
    }
    if (!rotated) break;
  }
  const norms = w.map(norm2);
  const order = norms.map((_, j) => j).sort((a, b) => norms[b] - norms[a]);
  const u = zeros(m, n);
  const vt = zeros(n, n);
  const s = new Float64Array(n);
  const missing: number[] = []; // output columns of u whose singular value is 0: completed below
  order.forEach((j, k) => {
    s[k] = norms[j];
    for (let i = 0; i < n; i++) vt.data[k * n + i] = v[j][i];
    if (norms[j] > 1e-300) for (let i = 0; i < m; i++) u.data[i * n + k] = w[j][i] / norms[j];
    else missing.push(k);
  });
  completeColumns(u, missing);
  return { u, s, vt };
}

function norm2(x: Float64Array): number {
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += x[i] * x[i];
  return Math.sqrt(sum);
}

function rotate(x: Float64Array, y: Float64Array, c: number, s: number): void {
  for (let i = 0; i < x.length; i++) {
    const xi = x[i],
      yi = y[i];
    x[i] = c * xi - s * yi;
    y[i] = s * xi + c * yi;
  }
}

// Fill the listed columns of u [m, k] with unit vectors orthogonal to all the others (Gram–Schmidt, twice, on
// standard basis vectors), so u stays orthonormal for rank-deficient inputs.
function completeColumns(u: Matrix, missing: number[]): void {
  const { rows: m, cols: k } = u;
  const filled = new Set(Array.from({ length: k }, (_, j) => j).filter((j) => !missing.includes(j)));
  let e = 0;
  for (const col of missing) {
    for (; e < m; e++) {
      const x = new Float64Array(m);
      x[e] = 1;
      for (let pass = 0; pass < 2; pass++) {
        for (const j of filled) {
          let dot = 0;
          for (let i = 0; i < m; i++) dot += u.data[i * k + j] * x[i];
          for (let i = 0; i < m; i++) x[i] -= dot * u.data[i * k + j];
        }
      }
      const norm = norm2(x);
      if (norm > 0.5) {
        for (let i = 0; i < m; i++) u.data[i * k + col] = x[i] / norm;
        filled.add(col);
        e++;
        break;
      }
    }
  }
}
