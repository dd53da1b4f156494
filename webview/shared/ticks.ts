// Chart axes (DOM-free): where ticks go and how they read. One number format per axis: either every label plain
// ("0.001", "0.01", "0.1") or every label in exponent form ("1e-4", "5e-4", "1e-3"), never both; linear axes share
// their decimals ("0.5", "1.0", "1.5"). Step axes tick at whole steps only; log axes at 1, 2, 5 × 10^k.

/** Whole-number tick increments (steps, tokens): a step axis never shows 2.5. */
export const INT_INCRS: number[] = [];
for (let e = 0; e <= 12; e++) for (const m of [1, 2, 5]) INT_INCRS.push(m * 10 ** e);

const PLAIN_MIN = 1e-3;
const PLAIN_MAX = 1e5;

/** Decimals needed to write x exactly at up to 6 significant digits (0.25 → 2, 1e-3 → 3, 120 → 0). */
function decimalsOf(x: number): number {
  if (x === 0 || !Number.isFinite(x)) return 0;
  const s = Number(x.toPrecision(6)).toString();
  if (s.includes('e')) return Math.max(0, -Math.floor(Math.log10(Math.abs(x))) + 5);
  const dot = s.indexOf('.');
  return dot < 0 ? 0 : s.length - dot - 1;
}

/** "2.5e-4" style: the shortest mantissa that keeps 3 significant digits. */
function expo(x: number): string {
  const [m, e] = Number(x.toPrecision(3)).toExponential().split('e');
  return `${m}e${Number(e)}`;
}

/**
 * The labels of one axis's ticks, in one format: exponent form for all when any tick needs it (below 1e-3 or from
 * 1e5 on), else plain; on a linear axis every label gets the same decimals. Null ticks (hidden by the chart) give "".
 */
export function formatTicks(ticks: readonly (number | null)[], log = false): string[] {
  const vals = ticks.filter((v): v is number => v !== null && Number.isFinite(v));
  const nonzero = vals.filter((v) => v !== 0).map(Math.abs);
  const exponent = nonzero.some((a) => a < PLAIN_MIN || a >= PLAIN_MAX);
  const decimals = log || exponent ? 0 : Math.min(6, Math.max(0, ...vals.map(decimalsOf)));
  return ticks.map((v) => {
    if (v === null || !Number.isFinite(v)) return '';
    if (v === 0) return log || exponent ? '0' : (0).toFixed(decimals);
    if (exponent) return expo(v);
    return log ? String(Number(v.toPrecision(6))) : v.toFixed(decimals);
  });
}

/**
 * Log-axis ticks between min and max (both > 0): 1, 2, 5 × 10^k, or with 3 as well, or every digit, whichever
 * first gives at least three ticks (a narrow range such as perplexity 28…104 still gets labels).
 */
export function logSplits(min: number, max: number): number[] {
  if (!(min > 0) || !(max > min)) return min > 0 ? [min] : [];
  let out: number[] = [];
  for (const mantissas of [[1], [1, 2, 5], [1, 2, 3, 5], [1, 2, 3, 4, 5, 6, 7, 8, 9]]) {
    out = [];
    for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++)
      for (const m of mantissas) {
        const v = Number((m * 10 ** e).toPrecision(12));
        if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
      }
    if (out.length >= 3 && (mantissas.length > 1 || out.length >= 4)) break;
  }
  return out.length >= 2 ? out : linearSplits(min, max); // a range inside one step of 1…9: plain ticks
}

/** About four evenly spaced ticks at a 1-2-5 step between min and max. */
export function linearSplits(min: number, max: number): number[] {
  const raw = (max - min) / 4;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(min / step) * step; v <= max * (1 + 1e-12); v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** A linear axis's range around the data: 5% margins, a flat series widened, NaN-free data only. */
export function paddedRange(values: Iterable<number | null | undefined>, log = false): [number, number] | null {
  let [lo, hi] = [Infinity, -Infinity];
  for (const v of values) {
    if (typeof v !== 'number' || !Number.isFinite(v) || (log && v <= 0)) continue;
    [lo, hi] = [Math.min(lo, v), Math.max(hi, v)];
  }
  if (lo > hi) return null;
  if (log) return [lo / 1.15, hi * 1.15];
  const pad = hi > lo ? 0.05 * (hi - lo) : Math.max(Math.abs(lo) * 0.05, 1e-6);
  return [lo - pad, hi + pad];
}
