// Smoothing of Compare's curves (DOM-free), as TensorBoard's slider does it: a debiased EMA of each item's curve
// (series.ts), drawn over its raw line, which stays, faint. Items are aligned on one x with gaps (NaN) where an item
// logged nothing; the EMA steps over them, so each item is smoothed over its own points only.
import { emaInto } from '../shared/series';

/** The slider's start: light, so the curve's shape stays (TensorBoard's default is 0.6). */
export const DEFAULT_SMOOTHING = 0.4;

export interface Curves {
  x: Float64Array;
  n: number;
  ys: Float64Array[];
}

/** Raw and smoothed side by side: ys[2i] is item i's raw curve, ys[2i + 1] its EMA (weight 0: the raw curves only). */
export function withSmoothing(c: Curves, weight: number): Curves {
  if (!(weight > 0)) return c;
  const ys = c.ys.flatMap((y) => [y, emaInto(y, c.n, Math.min(0.999, weight), new Float64Array(c.n))]);
  return { ...c, ys };
}
