// The A/B figures of a run as module × logged-step matrices (DOM-free), and the stall check. LoRA writes a module's
// update as ΔW = scaling·B·A; LoRA+ trains B at λ times A's learning rate so that both halves keep learning.
// Each step event reports, per module, ‖∇A‖, ‖∇B‖, the applied updates ‖ΔA‖, ‖ΔB‖ and
// (newer runs) the output change due to each side: out_A = ‖scaling·B·ΔA‖, out_B = ‖scaling·ΔB·A‖.
import { PACKED_FIELDS } from '../../src/protocol/dashboard';
import type { ModuleStats } from '../../src/protocol/events';
import { Column } from '../shared/series';

/** The raw figures, as the engine names them (out_A/out_B are optional: older metrics files lack them). */
const RAW = PACKED_FIELDS;
type RawKey = (typeof RAW)[number];

export const AB_QUANTITIES = ['delta_ratio', 'out_ratio', 'grad_A', 'grad_B', 'delta_A', 'delta_B'] as const;
export type AbQuantity = (typeof AB_QUANTITIES)[number];

/** Labels and whether a quantity is a B/A ratio (drawn on a diverging scale centred on 1). */
export const AB_INFO: Record<AbQuantity, { label: string; ratio: boolean }> = {
  delta_ratio: { label: '‖ΔB‖ / ‖ΔA‖ (update norms)', ratio: true },
  out_ratio: { label: 'output change B / A  (‖s·ΔB·A‖ / ‖s·B·ΔA‖)', ratio: true },
  grad_A: { label: '‖∇A‖', ratio: false },
  grad_B: { label: '‖∇B‖', ratio: false },
  delta_A: { label: '‖ΔA‖ (update)', ratio: false },
  delta_B: { label: '‖ΔB‖ (update)', ratio: false },
};

/**
 * One matrix per raw figure, stored step-major: column c (a logged step) holds rows [c·R, (c+1)·R) for the R
 * modules, so a new step appends R floats. Float32 keeps 100,000 steps × dozens of modules within tens of MB.
 */
export class AbMatrices {
  modules: string[] = [];
  readonly steps = new Column();
  private rows = 0;
  private capacity = 0; // columns
  private raw: Record<RawKey, Float32Array> = emptyRaw();
  private readonly rowOf = new Map<string, number>();
  private packedNames: readonly string[] | null = null;
  // See logPrefix.
  private prefix: { q: AbQuantity; rows: number; done: number; sum: Float64Array; count: Uint32Array } | null = null;
  /** Whether any step carried out_A/out_B (else the output ratio is unavailable). */
  hasOutput = false;

  get cols(): number {
    return this.steps.length;
  }

  /** Declares the rows (run_start's target modules); rows only ever get added, in first-seen order. */
  addModules(names: readonly string[]): void {
    const fresh = names.filter((n) => !this.rowOf.has(n));
    if (!fresh.length) return;
    for (const n of fresh) this.rowOf.set(n, this.modules.push(n) - 1);
    this.relayout(this.modules.length, Math.max(this.capacity, 64));
  }

  push(step: number, stats: readonly ModuleStats[]): void {
    // The engine lists modules in the same order every step: row i is stats[i] unless the list changed.
    const sameOrder = stats.length === this.rows && stats.every((s, i) => s.module === this.modules[i]);
    if (!sameOrder) this.addModules(stats.map((x) => x.module));
    if (this.cols === this.capacity) this.relayout(this.rows, this.capacity * 2);
    const base = this.cols * this.rows;
    const r = this.raw;
    for (const k of RAW) r[k].fill(NaN, base, base + this.rows);
    for (let i = 0; i < stats.length; i++) {
      const s = stats[i];
      const at = base + (sameOrder ? i : this.rowOf.get(s.module)!);
      // typeof checks: JSON writes NaN as null, which a typed array would store as 0.
      if (typeof s.grad_A === 'number') r.grad_A[at] = s.grad_A;
      if (typeof s.grad_B === 'number') r.grad_B[at] = s.grad_B;
      if (typeof s.delta_A === 'number') r.delta_A[at] = s.delta_A;
      if (typeof s.delta_B === 'number') r.delta_B[at] = s.delta_B;
      if (typeof s.out_A === 'number') r.out_A[at] = s.out_A;
      if (typeof s.out_B === 'number') r.out_B[at] = s.out_B;
      if (typeof s.out_A === 'number' || typeof s.out_B === 'number') this.hasOutput = true;
    }
    this.steps.push(step);
  }

  /** A step from a packed message (PackedModules): `values[offset + i·6 + j]` is figure RAW[j] of names[i]. */
  pushBlock(step: number, names: readonly string[], values: Float32Array, offset: number): void {
    const sameOrder =
      names === this.packedNames || (names.length === this.rows && names.every((n, i) => n === this.modules[i]));
    if (!sameOrder) this.addModules(names);
    else this.packedNames = names; // the next block of this message skips the check
    if (this.cols === this.capacity) this.relayout(this.rows, this.capacity * 2);
    const base = this.cols * this.rows;
    const r = this.raw;
    for (const k of RAW) r[k].fill(NaN, base, base + this.rows);
    for (let i = 0; i < names.length; i++) {
      const at = base + (sameOrder ? i : this.rowOf.get(names[i])!);
      const o = offset + i * RAW.length;
      r.grad_A[at] = values[o];
      r.grad_B[at] = values[o + 1];
      r.delta_A[at] = values[o + 2];
      r.delta_B[at] = values[o + 3];
      r.out_A[at] = values[o + 4];
      r.out_B[at] = values[o + 5];
      if (!this.hasOutput && !(Number.isNaN(values[o + 4]) && Number.isNaN(values[o + 5]))) this.hasOutput = true;
    }
    this.steps.push(step);
  }

  /** Keeps the first `cols` logged steps (a resumed run redoes the steps after its checkpoint). */
  truncate(cols: number): void {
    this.steps.truncate(cols);
    if (this.prefix) this.prefix.done = Math.min(this.prefix.done, cols);
  }

  /**
   * Running sums of log10(value) and counts of finite positive values, per module, for one quantity: the mean over
   * any range of steps is then two lookups, so the heatmap costs O(modules × pixels) per redraw, not O(modules ×
   * steps). Kept for the last quantity asked for and extended as steps arrive. Index (c·rows + r) holds the sums
   * over columns [0, c) of row r.
   */
  logPrefix(q: AbQuantity): { sum: Float64Array; count: Uint32Array } {
    const rows = this.rows;
    let p = this.prefix;
    if (!p || p.q !== q || p.rows !== rows)
      p = this.prefix = { q, rows, done: 0, sum: new Float64Array(rows), count: new Uint32Array(rows) };
    if (p.sum.length < (this.cols + 1) * rows) {
      const cap = (this.capacity + 1) * rows;
      const [sum, count] = [new Float64Array(cap), new Uint32Array(cap)];
      sum.set(p.sum.subarray(0, (p.done + 1) * rows));
      count.set(p.count.subarray(0, (p.done + 1) * rows));
      [p.sum, p.count] = [sum, count];
    }
    const { num, den } = this.source(q);
    const { sum, count } = p;
    for (let c = p.done; c < this.cols; c++) {
      const [at, next] = [c * rows, (c + 1) * rows];
      for (let r = 0; r < rows; r++) {
        const v = den ? num[at + r] / den[at + r] : num[at + r];
        const ok = v > 0 && v < Infinity;
        sum[next + r] = sum[at + r] + (ok ? Math.log10(v) : 0);
        count[next + r] = count[at + r] + (ok ? 1 : 0);
      }
    }
    p.done = this.cols;
    return p;
  }

  /**
   * The storage behind `q`, for tight loops: value at (row, col) = num[col·rows + row] / den[…]
   * (den null: num alone). Valid until the next push.
   */
  source(q: AbQuantity): { num: Float32Array; den: Float32Array | null; rows: number } {
    const r = this.raw;
    if (q === 'delta_ratio') return { num: r.delta_B, den: r.delta_A, rows: this.rows };
    if (q === 'out_ratio') return { num: r.out_B, den: r.out_A, rows: this.rows };
    return { num: r[q], den: null, rows: this.rows };
  }

  /** The value of `q` for module `row` at logged step `col` (NaN where missing; ratios may be 0 or ∞). */
  get(q: AbQuantity, row: number, col: number): number {
    const { num, den, rows } = this.source(q);
    const i = col * rows + row;
    return den ? num[i] / den[i] : num[i];
  }

  /** One module's values over all logged steps (for its line chart). */
  row(q: AbQuantity, row: number): Float64Array {
    const { num, den, rows } = this.source(q);
    const out = new Float64Array(this.cols);
    for (let c = 0, i = row; c < out.length; c++, i += rows) out[c] = den ? num[i] / den[i] : num[i];
    return out;
  }

  private relayout(rows: number, capacity: number): void {
    const [oldRows, cols] = [this.rows, this.cols];
    for (const k of RAW) {
      const prev = this.raw[k];
      const next = new Float32Array(rows * capacity); // columns past `cols` are filled by push
      if (rows === oldRows) next.set(prev.subarray(0, cols * rows));
      else {
        next.fill(NaN, 0, cols * rows); // a new module has no figures for the steps before it appeared
        for (let c = 0; c < cols; c++) for (let j = 0; j < oldRows; j++) next[c * rows + j] = prev[c * oldRows + j];
      }
      this.raw[k] = next;
    }
    [this.rows, this.capacity] = [rows, capacity];
  }
}

function emptyRaw(): Record<RawKey, Float32Array> {
  const e = new Float32Array(0);
  return { grad_A: e, grad_B: e, delta_A: e, delta_B: e, out_A: e, out_B: e };
}

// ---- stalls ------------------------------------------------------------------------------------------------------

/**
 * A module whose A or B side has (nearly) stopped moving: its median ‖ΔB‖/‖ΔA‖ over the recent logged steps.
 */
export interface Stall {
  module: string;
  side: 'A' | 'B';
  ratio: number; // median ‖ΔB‖ / ‖ΔA‖
  samples: number;
}

export const STALL_FACTOR = 100;
export const STALL_WINDOW = 50; // logged steps
const MIN_SAMPLES = 3;

/**
 * B stalls when its updates are STALL_FACTOR× smaller than A's. A stalls when its updates are STALL_FACTOR×
 * smaller than B's beyond what λ asks for (LoRA+ makes A's steps about λ× smaller on purpose; with Adam
 * ‖ΔB‖/‖ΔA‖ ≈ λ for square-ish modules). Steps where a gradient is exactly zero are skipped: with PEFT's
 * init B = 0, so ∇A = Bᵀ·… is zero on the first step, which is how LoRA starts, not a stall.
 */
export function detectStalls(ab: AbMatrices, lambda: number, factor = STALL_FACTOR, window = STALL_WINDOW): Stall[] {
  const out: Stall[] = [];
  const from = Math.max(0, ab.cols - window);
  ab.modules.forEach((module, row) => {
    const ratios: number[] = [];
    for (let c = from; c < ab.cols; c++) {
      const [dA, dB] = [ab.get('delta_A', row, c), ab.get('delta_B', row, c)];
      if (!(dA >= 0 && dB >= 0) || (dA === 0 && dB === 0)) continue; // NaN, or no update at all (lr 0)
      if (ab.get('grad_A', row, c) === 0 || ab.get('grad_B', row, c) === 0) continue;
      ratios.push(dB / dA);
    }
    if (ratios.length < MIN_SAMPLES) return;
    const ratio = median(ratios);
    if (ratio < 1 / factor) out.push({ module, side: 'B', ratio, samples: ratios.length });
    else if (ratio > factor * Math.max(1, lambda)) out.push({ module, side: 'A', ratio, samples: ratios.length });
  });
  return out;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// ---- the heatmap's cells ----------------------------------------------------------------------------------------

/** The heatmap at a given width: each of `width` pixel columns averages log10 of its logged steps, per module. */
export interface HeatCells {
  rows: number;
  width: number; // ≤ the number of logged steps (one step per column at most)
  values: Float32Array; // [rows, width] row-major, log10 of the quantity; NaN where nothing finite and > 0 was logged
  bounds: Uint32Array; // [width + 1]: pixel column p covers logged steps [bounds[p], bounds[p+1])
}

export function heatmapCells(ab: AbMatrices, q: AbQuantity, width: number): HeatCells {
  const [rows, cols] = [ab.modules.length, ab.cols];
  const w = Math.max(0, Math.min(Math.floor(width), cols));
  const bounds = Uint32Array.from({ length: w + 1 }, (_, p) => Math.floor((p * cols) / Math.max(1, w)));
  const values = new Float32Array(rows * w).fill(NaN);
  if (!w) return { rows, width: w, values, bounds };
  const { sum, count } = ab.logPrefix(q);
  for (let p = 0; p < w; p++) {
    const [a, b] = [bounds[p] * rows, bounds[p + 1] * rows];
    for (let r = 0; r < rows; r++) {
      const k = count[b + r] - count[a + r];
      if (k) values[r * w + p] = (sum[b + r] - sum[a + r]) / k;
    }
  }
  return { rows, width: w, values, bounds };
}
