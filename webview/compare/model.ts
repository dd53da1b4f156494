// The compare webview's data shaping, DOM-free (tested in test/webview/compare-model.test.ts): table rows from the
// report, item colours, curves aligned on one x axis for the line chart, heatmap grids, and the colour ramp.
import type {
  CompareCurves,
  CompareItem,
  CompareReport,
  ConfigValue,
  ModuleSimilarity,
  ModuleStat,
  PairSimilarity,
} from '../../src/protocol/compare';

// ---- tables -----------------------------------------------------------------------------------------------------

export interface ConfigRow {
  key: string;
  cells: string[]; // one per item
  differs: boolean;
}

export function configRows(report: CompareReport, onlyDiffs: boolean): ConfigRow[] {
  const differs = new Set(report.differs);
  return report.config_keys
    .filter((key) => !onlyDiffs || differs.has(key))
    .map((key) => ({ key, differs: differs.has(key), cells: report.items.map((it) => configCell(it.config[key])) }));
}

export function configCell(v: ConfigValue | undefined): string {
  if (v === undefined) return '—';
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.map((x) => configCell(x)).join(', ');
  return String(v);
}

/** Rows of the metrics table: label and one number (or null) per item. */
export function metricRows(
  report: CompareReport,
): { label: string; values: (number | null)[]; digits: 'loss' | 'count' | 'percent' | 'sig' }[] {
  const m = (f: (it: CompareReport['items'][number]) => number | null | undefined) =>
    report.items.map((it) => f(it) ?? null);
  const rows: ReturnType<typeof metricRows> = [
    { label: 'step', values: m((it) => it.metrics?.step), digits: 'count' },
    { label: 'tokens seen', values: m((it) => it.metrics?.tokens_seen), digits: 'count' },
    { label: 'train loss', values: m((it) => it.metrics?.train_loss), digits: 'loss' },
    { label: 'eval loss', values: m((it) => it.metrics?.eval?.loss), digits: 'loss' },
    { label: 'best eval loss', values: m((it) => it.metrics?.best_eval?.loss), digits: 'loss' },
    { label: 'best accuracy', values: m((it) => it.metrics?.best_eval?.accuracy), digits: 'percent' },
    { label: 'best perplexity', values: m((it) => it.metrics?.best_eval?.perplexity), digits: 'sig' },
  ];
  return rows.filter((r) => r.label === 'step' || r.values.some((v) => v !== null));
}

export interface ModuleRow {
  module: string;
  cells: (ModuleStat | null)[]; // one per item
  sigmaMax: number; // the largest σ of this module over the items: sparkbars share one scale per row
}

/** Every module of any item, in layer order; items without it get null. */
export function moduleRows(report: CompareReport): ModuleRow[] {
  const names: string[] = [];
  const seen = new Set<string>();
  for (const ms of report.modules)
    for (const m of ms) if (!seen.has(m.module) && seen.add(m.module)) names.push(m.module);
  names.sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  return names.map((module) => {
    const cells = report.modules.map((ms) => ms.find((m) => m.module === module) ?? null);
    return { module, cells, sigmaMax: Math.max(0, ...cells.flatMap((c) => c?.sigma ?? [])) };
  });
}

/** Bar heights in [0, 1] for σ against the row's largest σ (a bar is never drawn thinner than 2% so σ > 0 shows). */
export function sparkHeights(sigma: number[], max: number): number[] {
  return sigma.map((s) => (max > 0 && s > 0 ? Math.max(0.02, s / max) : 0));
}

/** One colour per item from the theme's series palette, cycled. */
export function itemColors(palette: string[], n: number): string[] {
  return Array.from({ length: n }, (_, i) => palette[i % palette.length]);
}

// ---- curves -----------------------------------------------------------------------------------------------------

export type CurveKind = 'loss' | 'eval_loss' | 'accuracy' | 'perplexity' | 'token_accuracy' | 'exact_match';
export type Axis = 'step' | 'tokens_seen';

export const CURVE_LABELS: Record<CurveKind, string> = {
  loss: 'train loss',
  eval_loss: 'eval loss',
  accuracy: 'eval accuracy',
  perplexity: 'eval perplexity',
  token_accuracy: 'eval token accuracy',
  exact_match: 'eval exact match',
};

/** The curves that are shares in [0, 1], shown as percentages. */
export const PERCENT_CURVES: readonly CurveKind[] = ['accuracy', 'token_accuracy', 'exact_match'];

function points(c: CompareCurves, kind: CurveKind, axis: Axis): [number | null, number | null][] {
  if (kind === 'loss') return c.step.map((s, i) => [axis === 'step' ? s : c.tokens_seen[i], c.loss[i]]);
  const ys = (kind === 'eval_loss' ? c.eval.loss : c.eval[kind]) ?? []; // sft's are absent in older reports
  return c.eval.step.map((s, i) => [axis === 'step' ? s : c.eval.tokens_seen[i], ys[i] ?? null]);
}

/** The curve kinds some item has data for. */
export function availableCurves(report: CompareReport): CurveKind[] {
  return (Object.keys(CURVE_LABELS) as CurveKind[]).filter((k) =>
    report.curves.some((c) => c && points(c, k, 'step').some(([, y]) => y !== null)),
  );
}

/** uPlot's aligned data: the sorted union of every item's x, and per item its y at each x (null where it has none). */
export function alignedCurves(
  report: CompareReport,
  kind: CurveKind,
  axis: Axis,
): { x: number[]; ys: (number | null)[][] } {
  const perItem = report.curves.map(
    (c) => new Map((c ? points(c, kind, axis) : []).filter((p): p is [number, number | null] => p[0] !== null)),
  );
  const x = [...new Set(perItem.flatMap((m) => [...m.keys()]))].sort((a, b) => a - b);
  return { x, ys: perItem.map((m) => x.map((v) => m.get(v) ?? null)) };
}

/** alignedCurves as the line chart takes it: typed columns, NaN where an item has no point (a gap it spans). */
export function curveColumns(
  report: CompareReport,
  kind: CurveKind,
  axis: Axis,
): { x: Float64Array; n: number; ys: Float64Array[] } {
  const { x, ys } = alignedCurves(report, kind, axis);
  return { x: Float64Array.from(x), n: x.length, ys: ys.map((y) => Float64Array.from(y, (v) => v ?? NaN)) };
}

// ---- similarity heatmap -----------------------------------------------------------------------------------------

/** What the heatmap compares: the cosine of the updates, φ of the output side, of the input side, of lora_A. */
export type Basis = 'cosine' | 'out' | 'delta' | 'A';
export type HeatView = 'layer-kind' | 'module-rank';

/** The basis picker's entries, the output side first: it is what tells runs of one seed apart. */
export const BASES: [Basis, string][] = [
  ['out', 'output side: left-singular vectors of ΔW (B)'],
  ['cosine', 'cosine of the updates ⟨ΔW₁, ΔW₂⟩'],
  ['delta', 'input side: right-singular vectors of ΔW (A), §7'],
  ['A', 'lora_A rows (Hu et al. §7; = input side at full rank)'],
];

/** A module's figure on one basis: φ(r1, r2), or the cosine. */
function figure(m: ModuleSimilarity, basis: Basis): number | null {
  return basis === 'cosine' ? (m.cosine ?? null) : (m[basis]?.phi ?? null); // older reports lack out and cosine
}

/** φ(i, i) for i = 1 …; the cosine has one number, shown in one column. */
function diag(m: ModuleSimilarity, basis: Basis): number[] {
  return basis === 'cosine' ? (m.cosine === null ? [] : [m.cosine]) : (m[basis]?.diag ?? []);
}

export interface Heatmap {
  rows: string[];
  cols: string[];
  values: (number | null)[][]; // [row][col], φ in [0, 1] or a cosine, or null (no module there, or a zero ΔW)
  modules: (string | null)[][]; // which module each cell is
}

/**
 * layer-kind: one row per layer (and "other" for modules outside numbered layers), one column per module kind,
 * cell φ(r1, r2) (or the cosine). module-rank: one row per module, column i = φ(i, i) of the top-i directions (one
 * column for the cosine).
 */
export function heatmap(pair: PairSimilarity, basis: Basis, view: HeatView): Heatmap {
  if (view === 'module-rank') {
    const width = basis === 'cosine' ? 1 : Math.max(0, ...pair.modules.map((m) => diag(m, basis).length));
    return {
      rows: pair.modules.map((m) => m.module),
      cols: basis === 'cosine' ? ['cos'] : Array.from({ length: width }, (_, i) => String(i + 1)),
      values: pair.modules.map((m) => Array.from({ length: width }, (_, i) => diag(m, basis)[i] ?? null)),
      modules: pair.modules.map((m) => Array.from({ length: width }, () => m.module)),
    };
  }
  const layers = [...new Set(pair.modules.map((m) => m.layer))].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
  const kinds = [...new Set(pair.modules.map((m) => (m.layer === null ? m.module : m.kind)))];
  const values = layers.map(() => kinds.map((): number | null => null));
  const modules = layers.map(() => kinds.map((): string | null => null));
  for (const m of pair.modules) {
    const [r, c] = [layers.indexOf(m.layer), kinds.indexOf(m.layer === null ? m.module : m.kind)];
    values[r][c] = figure(m, basis);
    modules[r][c] = m.module;
  }
  return { rows: layers.map((l) => (l === null ? 'other' : `layer ${l}`)), cols: kinds, values, modules };
}

export { heatColor } from '../shared/heat';

/** Which cell a point falls in, for the hover readout; null outside. */
export function cellAt(
  x: number,
  y: number,
  box: { left: number; top: number; cellW: number; cellH: number; rows: number; cols: number },
): { row: number; col: number } | null {
  const col = Math.floor((x - box.left) / box.cellW);
  const row = Math.floor((y - box.top) / box.cellH);
  return row >= 0 && col >= 0 && row < box.rows && col < box.cols ? { row, col } : null;
}

export function pairLabel(report: CompareReport, p: PairSimilarity): string {
  return `${itemName(report.items[p.a])} vs ${itemName(report.items[p.b])}`;
}

/** How views name an item: what sets it apart ("λ 16"), else its label (the run name). */
export function itemName(it: CompareItem): string {
  return it.caption ?? it.label;
}

const mean3 = (x: number | null | undefined) => (x === null || x === undefined ? '–' : x.toFixed(3));

/**
 * The sentences above the heatmap: the pair's means on every basis, then what a shared initial lora_A means for the
 * input side (Hu et al.'s §7 compares across seeds and ranks, where the input side is informative).
 */
export function similaritySummary(report: CompareReport, p: PairSimilarity): string[] {
  const m = p.mean;
  const shared = `${p.modules.length} shared module${p.modules.length === 1 ? '' : 's'}`;
  const lines = [
    `${pairLabel(report, p)}, mean over ${shared}: cosine ${mean3(m.cosine)} · output side φ ${mean3(m.out)} · ` +
      `input side φ ${mean3(m.delta)}` +
      (p.skipped.length ? `; not shared: ${p.skipped.join(', ')}` : '') +
      '. 1 = the same; cosine ≈ 0 and φ ≈ r/n for unrelated updates.',
  ];
  const init = p.shared_init;
  if (init?.same) {
    const stays = m.a_cosine !== null && m.a_cosine !== undefined && m.a_cosine > 0.9;
    lines.push(
      `Both runs started from the same lora_A (seed ${init.seed ?? '?'}, same model, r and targets)` +
        (stays
          ? ` and A stayed near it (cos(A₁, A₂) ${mean3(m.a_cosine)}), so the input side φ ≈ 1 by construction: ` +
            'it does not mean they learned the same. The output side and the cosine show how the updates differ.'
          : `; A has moved from it (cos(A₁, A₂) ${mean3(m.a_cosine)}), so the input side shows what A learned.`),
    );
  } else if (init) {
    lines.push(
      `The runs started from different lora_A (${init.differs.join(', ')} differ): the input side compares ` +
        'what they learned across starts, the reading of Hu et al. §7 (seeds, ranks).',
    );
  } else lines.push('Whether both started from the same lora_A is not known (an adapter folder without its run).');
  return lines;
}
