// `loraplus compare A B [...]`: runs, checkpoints and PEFT adapter folders side by side
// (src/engine/compare/compare.ts).
// --json prints the whole CompareReport for scripts; otherwise a readable summary: the config keys that differ,
// metrics, per-module ‖ΔW‖_F and effective rank, and how alike each pair's updates are (cosine, output and input
// subspaces, per module and on average).
import { parseArgs } from 'node:util';
import type { CompareReport, ConfigValue } from '../protocol/compare';
import { formatError, LoraPlusError } from '../protocol/errors';
import { compare, evaluateItems } from '../engine/compare/compare';
import type { Device } from '../protocol/merge';

// Under main's usage, each command's description starts at this column.
const COLUMN = ' '.repeat(55);
export const COMPARE_USAGE = [
  '  loraplus compare A B [...] [--json] [--eval] [--eval-config CONFIG] [--device D] [--pairs all|first] [--grid]',
  `${COLUMN}runs, checkpoints or adapter folders side by side: configs,`,
  `${COLUMN}metrics, ΔW spectra, cosine and subspace similarity of the`,
  `${COLUMN}updates (output and input side); --eval evaluates each`,
].join('\n');

export async function cmdCompare(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      json: { type: 'boolean' },
      eval: { type: 'boolean' },
      'eval-config': { type: 'string' },
      device: { type: 'string' },
      pairs: { type: 'string', default: 'all' },
      grid: { type: 'boolean' },
    },
  });
  if (!positionals.length) {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: 'compare needs the folders to compare',
      hint: `Usage:\n${COMPARE_USAGE}`,
    });
  }
  if (values.pairs !== 'all' && values.pairs !== 'first') {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: `--pairs must be all or first, got '${values.pairs}'`,
      hint: 'all: every pair of items; first: each item against the first.',
    });
  }
  const evalConfig = values['eval-config'] ? String(values['eval-config']) : undefined;
  const report = compare(positionals, { pairs: values.pairs, grid: Boolean(values.grid), evalConfig });
  if (values.eval)
    report.evals = await evaluateItems(report, { evalConfig, device: values.device as Device | undefined });
  if (values.json) console.log(JSON.stringify(report));
  else console.log(formatReport(report));
  return report.evals?.some((e) => 'error' in e) ? 1 : 0;
}

/** The readable form: one column per item. */
export function formatReport(r: CompareReport): string {
  const labels = r.items.map((it) => it.label);
  const out: string[] = [];
  out.push(`Comparing ${r.items.length} item${r.items.length === 1 ? '' : 's'}:`);
  r.items.forEach((it, i) => {
    const status = it.status ? `, ${it.status}` : '';
    const step = it.step !== null ? `, step ${it.step}` : '';
    const caption = it.caption ? ` · ${it.caption}` : '';
    out.push(`  [${i + 1}] ${it.label}${caption}  (${it.kind}${status}${step})  ${it.adapter_dir}`);
  });

  const differs = r.differs.filter((k) => k !== 'run_name');
  out.push(
    '',
    differs.length ? 'Config (the keys that differ):' : 'Config: the same on every item (apart from run_name).',
  );
  if (differs.length)
    out.push(
      ...table(
        ['key', ...labels],
        differs.map((k) => [k, ...r.items.map((it) => value(it.config[k]))]),
      ),
    );

  if (r.items.some((it) => it.metrics)) {
    out.push('', "Metrics (at each item's step):");
    const m = (f: (it: CompareReport['items'][number]) => number | null | undefined) => r.items.map((it) => num(f(it)));
    const rows: string[][] = [
      ['step', ...m((it) => it.metrics?.step)],
      ['train loss', ...m((it) => it.metrics?.train_loss)],
      ['eval loss', ...m((it) => it.metrics?.eval?.loss)],
      ['best eval loss', ...m((it) => it.metrics?.best_eval?.loss)],
    ];
    if (r.items.some((it) => it.metrics?.best_eval?.accuracy !== undefined))
      rows.push(['best accuracy', ...m((it) => it.metrics?.best_eval?.accuracy)]);
    if (r.items.some((it) => it.metrics?.best_eval?.perplexity !== undefined))
      rows.push(['best perplexity', ...m((it) => it.metrics?.best_eval?.perplexity)]);
    out.push(...table(['', ...labels], rows));
  }

  out.push('', 'Adapter, per module: ‖ΔW‖_F / effective rank (of r):');
  const names = [...new Set(r.modules.flatMap((ms) => ms.map((s) => s.module)))];
  const cell = (s: { norm: number; effective_rank: number; r: number } | undefined) =>
    s ? `${num(s.norm)} / ${s.effective_rank.toFixed(2)} (${s.r})` : '-';
  const rows = names.map((name) => [name, ...r.modules.map((ms) => cell(ms.find((x) => x.module === name)))]);
  const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null);
  if (names.length > 1)
    rows.push([
      'mean',
      ...r.modules.map(
        (ms) => `${num(mean(ms.map((s) => s.norm)))} / ${mean(ms.map((s) => s.effective_rank))?.toFixed(2) ?? '-'}`,
      ),
    ]);
  out.push(...table(['module', ...labels], rows));

  if (r.similarity.length) out.push(...similarityLines(r));

  if (r.evals) {
    out.push('', `Evaluation on ${r.eval_config}:`);
    for (const e of r.evals) {
      const label = labels[e.item];
      if ('error' in e) out.push(`  ${label}: error: ${formatError(e.error)}`);
      else {
        const perplexity = e.perplexity !== undefined ? ` · perplexity ${e.perplexity.toFixed(3)}` : '';
        const accuracy = e.accuracy !== undefined ? ` · accuracy ${(100 * e.accuracy).toFixed(2)}%` : '';
        out.push(`  ${label}: loss ${e.loss.toFixed(4)}${perplexity}${accuracy} (${e.examples} examples)`);
      }
    }
  }
  return out.join('\n');
}

/**
 * Per pair: the means, what a shared start means for the input side, and a row per module (cosine of the updates,
 * φ of the output side, φ of the input side).
 */
function similarityLines(r: CompareReport): string[] {
  const out = [
    '',
    'Similarity of the updates ΔW, per pair (1 = the same; cosine ≈ 0 and φ ≈ r/n for unrelated ones):',
    '  cosine = ⟨ΔW₁, ΔW₂⟩/(‖ΔW₁‖‖ΔW₂‖); out φ: left-singular subspaces (B); in φ: right-singular (A, Hu et al. §7)',
  ];
  for (const p of r.similarity) {
    const [a, b] = [r.items[p.a].label, r.items[p.b].label];
    const skipped = p.skipped.length ? `, ${p.skipped.length} not shared` : '';
    const m = p.mean;
    out.push(
      '',
      `  ${a} vs ${b}: cosine ${num(m.cosine)} · out φ ${num(m.out)} · in φ ${num(m.delta)} · lora_A φ ${num(m.A)} ` +
        `over ${p.modules.length} module${p.modules.length === 1 ? '' : 's'}${skipped}`,
    );
    const init = p.shared_init;
    if (init?.same)
      out.push(
        `  same initial lora_A (seed ${init.seed ?? '?'}, cos(A₁, A₂) ${num(m.a_cosine)}): ` +
          'the input side starts identical, so its φ ≈ 1 tells little; the cosine and the output side tell them apart',
      );
    else if (init)
      out.push(`  different initial lora_A (${init.differs.join(', ')} differ): φ across starts, as in §7`);
    const rows = p.modules.map((s) => [s.module, num(s.cosine), num(s.out.phi), num(s.delta.phi)]);
    out.push(...table(['module', 'cosine', 'out φ', 'in φ'], rows).map((l) => `  ${l}`));
  }
  return out;
}

function num(v: number | null | undefined): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '-';
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e5 || Math.abs(v) < 1e-4 ? v.toExponential(3) : String(Number(v.toPrecision(4)));
}

function value(v: ConfigValue | undefined): string {
  if (v === undefined) return '(none)';
  const s = typeof v === 'number' ? num(v) : typeof v === 'string' ? v : JSON.stringify(v);
  return s.length > 40 ? `…${s.slice(-39)}` : s;
}

/** Left-aligned columns, a header and a rule. */
function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((r) => (r[c] ?? '').length)));
  const line = (cells: string[]) =>
    `  ${cells
      .map((x, c) => x.padEnd(widths[c]))
      .join('  ')
      .trimEnd()}`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}
