// Numeric series for charts (DOM-free, shared by the webviews): growable typed arrays that keep every point, a
// debiased EMA, and min/max decimation that picks which points to draw. Drawing 100,000 points at 5 Hz would stutter;
// drawing ~4 per pixel column, chosen so every spike survives, does not, and the data itself is never thinned.

/** A growable Float64Array: amortised O(1) append, `truncate` for resumed runs that redo steps. */
export class Column {
  data: Float64Array;
  length = 0;
  constructor(capacity = 256) {
    this.data = new Float64Array(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = new Float64Array(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  truncate(n: number): void {
    this.length = Math.max(0, Math.min(this.length, n));
  }
  at(i: number): number {
    return i < 0 ? this.data[this.length + i] : this.data[i];
  }
  /** A view of the filled part (no copy; valid until the next push). */
  view(): Float64Array {
    return this.data.subarray(0, this.length);
  }
}

/** First index i with x[i] >= v in a non-decreasing x (n if none). */
export function lowerBound(x: ArrayLike<number>, n: number, v: number): number {
  let [lo, hi] = [0, n];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** First index i with x[i] > v (n if none). */
export function upperBound(x: ArrayLike<number>, n: number, v: number): number {
  let [lo, hi] = [0, n];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (x[mid] <= v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Debiased exponential moving average (TensorBoard's smoothing): out[i] = ema_i / (1 - w^k) after k finite points;
 * non-finite inputs give NaN and do not move the average. `weight` 0 copies the input.
 */
export function emaInto(y: ArrayLike<number>, n: number, weight: number, out: Float64Array): Float64Array {
  let [acc, k] = [0, 0];
  for (let i = 0; i < n; i++) {
    const v = y[i];
    if (!Number.isFinite(v)) {
      out[i] = NaN;
      continue;
    }
    acc = weight * acc + (1 - weight) * v;
    k++;
    out[i] = weight === 0 ? v : acc / (1 - weight ** k);
  }
  return out;
}

/**
 * Which points to draw: the x-range [lo, hi] of a non-decreasing `x` is cut into `buckets` equal slices, and each
 * slice keeps its first and last point and, for every series in `ys`, its minimum and maximum (NaN ignored). One
 * point either side of the range is kept so lines run to the edges. Below 4 points per bucket nothing is dropped.
 * Returns sorted, unique indices into x.
 */
export function minMaxIndices(
  x: ArrayLike<number>,
  ys: ArrayLike<number>[],
  n: number,
  buckets: number,
  lo = -Infinity,
  hi = Infinity,
): Uint32Array {
  const i0 = Math.max(0, lowerBound(x, n, lo) - 1);
  const i1 = Math.min(n - 1, upperBound(x, n, hi)); // the first point past hi
  if (n === 0 || i1 < i0) return new Uint32Array(0);
  buckets = Math.max(1, Math.floor(buckets));
  if (i1 - i0 + 1 <= 4 * buckets) return Uint32Array.from({ length: i1 - i0 + 1 }, (_, k) => i0 + k);
  const [x0, x1] = [x[i0], x[i1]];
  const width = (x1 - x0) / buckets || 1;
  const out = new Uint32Array(buckets * (2 + 2 * ys.length) + 2);
  let m = 0;
  const picks: number[] = [];
  let i = i0;
  while (i <= i1) {
    const b = Math.min(buckets - 1, Math.floor((x[i] - x0) / width));
    const end = b === buckets - 1 ? i1 + 1 : Math.min(i1 + 1, lowerBound(x, i1 + 1, x0 + (b + 1) * width));
    const stop = Math.max(end, i + 1); // a bucket always advances
    picks.length = 0;
    picks.push(i, stop - 1);
    for (const y of ys) {
      let [mn, mx, imn, imx] = [Infinity, -Infinity, -1, -1];
      for (let j = i; j < stop; j++) {
        const v = y[j];
        if (v < mn) [mn, imn] = [v, j];
        if (v > mx) [mx, imx] = [v, j];
      }
      if (imn >= 0) picks.push(imn);
      if (imx >= 0) picks.push(imx);
    }
    picks.sort((a, c) => a - c);
    for (let k = 0; k < picks.length; k++) if (k === 0 || picks[k] !== picks[k - 1]) out[m++] = picks[k];
    i = stop;
  }
  return out.slice(0, m);
}

/** Values at `idx` as a plain array for uPlot, with gaps (null) for non-finite values, and for ≤ 0 on a log axis. */
export function gather(y: ArrayLike<number>, idx: ArrayLike<number>, log = false): (number | null)[] {
  const out = new Array<number | null>(idx.length);
  for (let k = 0; k < idx.length; k++) {
    const v = y[idx[k]];
    out[k] = Number.isFinite(v) && (!log || v > 0) ? v : null;
  }
  return out;
}
