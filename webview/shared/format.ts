// Number formatting shared by the webviews (DOM-free). Losses get a fixed 4 decimals (the UI contract's #last-loss);
// norms and learning rates span many decades, so they get 3 significant digits with an exponent when small or large.
import { formatDuration } from '../../src/protocol/progress';

export function fixed4(x: number | null | undefined): string {
  return x === null || x === undefined || !Number.isFinite(x) ? '–' : x.toFixed(4);
}

/** 3 significant digits; exponent form outside [1e-3, 1e5). */
export function sig3(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '-∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  return a < 1e-3 || a >= 1e5 ? x.toExponential(2) : String(Number(x.toPrecision(3)));
}

/** 1234567 → "1.23M". */
export function count(x: number | null | undefined): string {
  if (x === null || x === undefined || !Number.isFinite(x)) return '–';
  const a = Math.abs(x);
  for (const [div, unit] of [
    [1e9, 'G'],
    [1e6, 'M'],
    [1e3, 'k'],
  ] as const)
    if (a >= div) return `${Number((x / div).toPrecision(3))}${unit}`;
  return String(Math.round(x));
}

/** Seconds → "12.3s", "3m 20s", "1h 02m": the one duration format of every view (src/protocol/progress.ts). */
export function duration(s: number | null | undefined): string {
  return formatDuration(s);
}

/** A ratio as "×16" / "÷120" (how many times larger or smaller). */
export function times(r: number): string {
  if (!Number.isFinite(r) || r <= 0) return sig3(r);
  return r >= 1 ? `×${sig3(r)}` : `÷${sig3(1 / r)}`;
}

/**
 * model.layers.3.self_attn.q_proj → "3.q_proj" (rows of the heatmap need short names; the full one is in the
 * tooltip).
 */
export function shortModule(name: string): string {
  const parts = name.split('.');
  const layer = parts.findIndex((p) => /^\d+$/.test(p));
  return layer < 0 ? parts.slice(-2).join('.') : `${parts[layer]}.${parts[parts.length - 1]}`;
}
