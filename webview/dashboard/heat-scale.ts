// The A/B heatmap's colour scale (DOM-free), in log10 units of the quantity. Robust: the 5th–95th percentile of the
// cells on the map sets the ends, so the first steps' outliers (‖ΔA‖ ≈ 0 while B is still zero gives ratios of 10⁴)
// are clipped to the end colours instead of squeezing every later step into one colour. Ratios use a diverging
// scale with its neutral colour at the balanced value, each half stretched on its own (a two-slope scale): colour
// says which side dominates, and by how much within what the map holds.

export interface HeatScale {
  lo: number; // log10 at colour 0
  mid: number | null; // log10 at the neutral colour (ratios), null for a sequential scale
  hi: number; // log10 at colour 1
  clippedLow: boolean; // some cells lie below lo (drawn in the end colour)
  clippedHigh: boolean;
}

const LOW_PCT = 0.05;
const HIGH_PCT = 0.95;
const MIN_HALF = Math.log10(2); // a diverging half spans at least a factor 2 either side of the centre
const MIN_SPAN = 0.1; // a sequential scale spans at least a factor 1.26

/** The p-quantile of sorted values (nearest rank). */
export function quantile(sorted: ArrayLike<number>, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(p * (sorted.length - 1))))];
}

/**
 * The scale for these cells (log10 values, NaN for none). `centre`: the balanced value's log10 for a ratio
 * (diverging), undefined for a norm (sequential).
 */
export function heatScale(values: ArrayLike<number>, centre?: number): HeatScale {
  const finite = Float64Array.from(Array.prototype.filter.call(values, Number.isFinite) as number[]).sort();
  const [min, max] = finite.length ? [finite[0], finite[finite.length - 1]] : [NaN, NaN];
  let [lo, hi] = finite.length ? [quantile(finite, LOW_PCT), quantile(finite, HIGH_PCT)] : [NaN, NaN];
  if (centre !== undefined) {
    if (!finite.length) [lo, hi] = [centre - 1, centre + 1];
    lo = Math.min(lo, centre - MIN_HALF);
    hi = Math.max(hi, centre + MIN_HALF);
    return { lo, mid: centre, hi, clippedLow: min < lo, clippedHigh: max > hi };
  }
  if (!finite.length) [lo, hi] = [0, 1];
  if (hi - lo < MIN_SPAN) [lo, hi] = [(lo + hi) / 2 - MIN_SPAN / 2, (lo + hi) / 2 + MIN_SPAN / 2];
  return { lo, mid: null, hi, clippedLow: min < lo, clippedHigh: max > hi };
}

/** Where a log10 value falls on the colour ramp, 0…1 (clipped); NaN stays NaN (no data). */
export function heatPosition(v: number, s: HeatScale): number {
  if (Number.isNaN(v)) return NaN;
  const clip = (x: number) => Math.min(1, Math.max(0, x));
  if (s.mid === null) return clip((v - s.lo) / (s.hi - s.lo));
  return v < s.mid ? clip((0.5 * (v - s.lo)) / (s.mid - s.lo)) : clip(0.5 + (0.5 * (v - s.mid)) / (s.hi - s.mid));
}

/** The inverse of heatPosition: the log10 value at position f of the colour bar. */
export function heatValueAt(f: number, s: HeatScale): number {
  if (s.mid === null) return s.lo + f * (s.hi - s.lo);
  return f < 0.5 ? s.lo + 2 * f * (s.mid - s.lo) : s.mid + (2 * f - 1) * (s.hi - s.mid);
}

/**
 * Tick values for a log axis from 10^lo to 10^hi (log10 units): the powers of ten inside, with 2× and 5× between
 * them when fewer than three powers fit, and `extra` values (the balanced value) always; at most `max` of them,
 * sorted. Two ticks closer than `minGap` of the span (log10) are thinned, keeping the extras.
 */
export function logTicks(lo: number, hi: number, extra: number[] = [], max = 7): number[] {
  if (!(hi > lo)) return [...extra];
  const ticks: number[] = [];
  for (let e = Math.ceil(lo - 1e-9); e <= hi + 1e-9; e++) ticks.push(e);
  if (ticks.length < 3)
    for (let e = Math.floor(lo); e <= Math.ceil(hi); e++)
      for (const m of [2, 5]) {
        const t = e + Math.log10(m);
        if (t >= lo - 1e-9 && t <= hi + 1e-9) ticks.push(t);
      }
  const isExtra = (t: number) => extra.some((x) => Math.abs(x - t) < 1e-9);
  const all = [...extra, ...ticks.filter((t) => !isExtra(t))].sort((a, b) => a - b);
  const minGap = (hi - lo) / (2 * max);
  const out: number[] = [];
  for (const t of all) {
    const last = out.at(-1);
    if (last === undefined || t - last >= minGap) out.push(t);
    else if (isExtra(t)) out[out.length - 1] = t; // the balanced value wins
  }
  while (out.length > max) {
    const keep = out.filter((t, i) => i % 2 === 0 || isExtra(t));
    if (keep.length === out.length) break;
    out.splice(0, out.length, ...keep);
  }
  return out;
}
