// What the bench prints once every row is in: the markdown table (each tfjs row against PyTorch at the same thread
// count), the notes under it (short rows, skipped backends, leaks, other load on the CPU), and the issue's targets
// with a MET / MISS verdict each; or all of it as one JSON object with --json.
import * as os from 'node:os';
import * as tf from '@tensorflow/tfjs';
import { BACKENDS, MODEL_IDS, SLOW_STEP_MS, SPECS, WARMUP, type Backend, type ModelId } from './models';
import { cores, isMeasured, round1, rowLabel, type Measured, type Row, type Skipped } from './rows';
import { buildName, type TorchCheck } from './torch';

interface Target {
  what: string;
  met: boolean | null; // null: not measured
  detail: string;
}

/** Prints the results: the table and its notes, or JSON. */
export function report(rows: Row[], models: ModelId[], torch: TorchCheck, elapsed: number, json: boolean): void {
  const out = (s: string) => process.stdout.write(s);
  const targets = evaluateTargets(rows, models);
  if (json) {
    const pytorch = torch.ok ? torch.builds : null;
    const result = { machine: machine(), pytorch, results: rows, targets, elapsed_s: round1(elapsed) };
    out(`${JSON.stringify(result, null, 2)}\n`);
    return;
  }
  const lora = models
    .map((m) => {
      const head = SPECS[m].task === 'sequence-classification' ? ' + fresh head in full' : '';
      return `${m}: ${SPECS[m].targets.join(',')}${head}`;
    })
    .join('; ');
  out(
    `\n${machine()}; LoRA r=8 α=16 (${lora}); LoRA+ AdamW (λ=16); ` +
      `${WARMUP} warm-up steps, median of the timed steps\n\n`,
  );
  out(`${renderTable(rows)}\n`);
  const measured = rows.filter(isMeasured);
  const short = measured.filter((r) => r.side === 'tfjs' && r.warmup < WARMUP);
  for (const r of short)
    out(
      `\n${r.model} / ${rowLabel(r)}: a step takes over ${SLOW_STEP_MS / 1000} s, ` +
        `so ${r.warmup} warm-up and ${r.steps} timed steps.\n`,
    );
  if (!torch.ok) out(`\nPyTorch: ${torch.why}\n`);
  else {
    // Which BLAS each build's matmuls use (asked of torch: BLAS_INFO, torch.backends.mkl, the loaded libblas), and
    // how fast: pip's MKL build and Debian's OpenBLAS build differ, and the reference should be the fastest.
    out('\nPyTorch builds on this machine (BLAS as torch reports it; float32 1024³ matmul on 1 thread):\n');
    for (const b of torch.builds) {
      const np = b.numpy ? `; numpy's own ${b.numpy.blas} in the same Python: ${b.numpy.gflops} GFLOP/s` : '';
      out(`  ${buildName(b)}: ${b.gflops} GFLOP/s${np}; ${b.python}${b.hf ? ` (${b.hf})` : ''}\n`);
    }
    const impls = new Map<string, string[]>();
    for (const r of rows.filter(isMeasured))
      if (r.side === 'torch' && r.impl && !impls.get(r.impl)?.includes(r.model))
        impls.set(r.impl, [...(impls.get(r.impl) ?? []), r.model]);
    for (const [impl, ms] of impls) out(`  ${ms.join(', ')}: ${impl}\n`);
    out(
      '  torch.set_num_threads(n), OMP/OpenBLAS/MKL threads = n, OMP_WAIT_POLICY=PASSIVE.\n' +
        '"vs PyTorch" = tokens/s ÷ the fastest PyTorch row at the same thread count ' +
        '(GPU rows: PyTorch on every CPU core).\n',
    );
  }
  const skipped = rows.filter((r): r is Skipped => !isMeasured(r));
  if (skipped.length) {
    out('\nSkipped:\n');
    for (const s of skipped) out(`  ${s.model} / ${rowLabel(s)}: ${s.skipped}\n`);
  }
  // The issue's targets are for the two Llama rows only; the gpt2 and bert-base rows have none.
  if (targets.length)
    out(
      '\nTargets (issue): wasm ≥ 0.5× PyTorch tokens/s on stories260k, ≥ 0.3× on gpt2-small; ' +
        "peak memory ≤ 2× PyTorch's.\n",
    );
  for (const t of targets) out(`  ${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.what}: ${t.detail}\n`);
  for (const r of measured) {
    if (r.tensorsLeaked)
      out(`\nLeak: ${r.model} / ${rowLabel(r)} left ${r.tensorsLeaked} tensors behind over ${r.steps} steps.\n`);
  }
  const contended = measured.filter((r) => (r.otherCpu ?? 0) >= 0.2);
  if (contended.length) {
    const which = contended.map((r) => `${r.model} / ${rowLabel(r)} (${r.otherCpu} cores)`).join(', ');
    out(`\nOther processes were using the CPU during ${contended.length} row(s), which slows them: ${which}.\n`);
  }
  out(`\n(${round1(elapsed)} s in all)\n`);
}

/** The PyTorch row a row is compared with: the fastest build's, same model and thread count (GPU rows: every
 *  core). */
function torchFor(rows: Row[], r: Measured): Measured | undefined {
  const want = r.threads ?? cores();
  return rows
    .filter(isMeasured)
    .filter((t) => t.side === 'torch' && t.model === r.model && t.threads === want)
    .sort((a, b) => b.tokensPerS - a.tokensPerS)[0];
}

/** The issue's targets, judged on the wasm row with the fewest threads against PyTorch at as many; the all-cores
 *  comparison is a note (wasm on every core against PyTorch on every core, where wasm ran that many threads). */
function evaluateTargets(rows: Row[], models: ModelId[]): Target[] {
  const out: Target[] = [];
  const goals: [ModelId, number][] = [
    ['stories260k', 0.5],
    ['gpt2-small', 0.3],
  ];
  const measured = rows.filter(isMeasured);
  for (const [model, goal] of goals) {
    if (!models.includes(model)) continue;
    const wasm = measured
      .filter((r) => r.side === 'tfjs' && r.model === model && r.backend === 'wasm')
      .sort((a, b) => (a.threads ?? 0) - (b.threads ?? 0));
    const w = wasm[0];
    const t = w && torchFor(rows, w);
    if (!w || !t) {
      out.push({
        what: `wasm throughput on ${model} ≥ ${goal}× PyTorch`,
        met: null,
        detail: !w ? 'wasm was not measured' : 'PyTorch was not measured',
      });
      out.push({
        what: `wasm peak RSS on ${model} ≤ 2× PyTorch`,
        met: null,
        detail: !w ? 'wasm was not measured' : 'PyTorch was not measured',
      });
      continue;
    }
    const ratio = w.tokensPerS / t.tokensPerS;
    const all = measured.find((x) => x.side === 'torch' && x.model === model && x.threads === cores() && x !== t);
    const wAll = wasm.find((x) => x !== w && x.threads === cores());
    const allNote = !all
      ? ''
      : wAll
        ? `; ${(wAll.tokensPerS / all.tokensPerS).toFixed(2)}× at ${cores()} threads each, ` +
          `${wAll.tokensPerS} vs ${all.tokensPerS} tokens/s`
        : `; ${(w.tokensPerS / all.tokensPerS).toFixed(2)}× PyTorch on all ${cores()} cores, ` +
          `${all.tokensPerS} tokens/s`;
    out.push({
      what: `wasm throughput on ${model} ≥ ${goal}× PyTorch`,
      met: ratio >= goal,
      detail:
        `${ratio.toFixed(2)}× (${w.tokensPerS} vs ${t.tokensPerS} tokens/s, ` +
        `${w.threads} vs ${t.threads} thread${t.threads === 1 ? '' : 's'}${allNote})`,
    });
    const mem = w.peakRssMB / t.peakRssMB;
    out.push({
      what: `wasm peak RSS on ${model} ≤ 2× PyTorch`,
      met: mem <= 2,
      detail: `${mem.toFixed(2)}× (${w.peakRssMB} vs ${t.peakRssMB} MB)`,
    });
  }
  return out;
}

function renderTable(rows: Row[]): string {
  const head = [
    'model',
    'backend (device)',
    'threads',
    'tokens/s',
    'step ms',
    'peak RSS MB',
    'tf.memory MB',
    'vs PyTorch',
  ];
  const body: string[][] = [];
  const order = (r: Row) => (r.side === 'torch' ? 10 : BACKENDS.indexOf(r.backend as Backend));
  const measured = rows
    .filter(isMeasured)
    .sort(
      (a, b) =>
        MODEL_IDS.indexOf(a.model) - MODEL_IDS.indexOf(b.model) ||
        order(a) - order(b) ||
        (a.threads ?? 0) - (b.threads ?? 0),
    );
  for (const r of measured) {
    const t = torchFor(rows, r);
    body.push([
      SPECS[r.model].label + ` ${r.batch}×${r.seq}`,
      r.side === 'torch'
        ? `PyTorch (${r.device})`
        : `${r.backend} (${r.device.replace(/^(.*) \(([^()]*)\)$/, '$1, $2')})`,
      r.threads === null ? 'GPU' : String(r.threads),
      r.tokensPerS.toFixed(r.tokensPerS < 100 ? 1 : 0),
      r.medianMs.toFixed(r.medianMs < 100 ? 1 : 0),
      r.peakRssMB.toFixed(0),
      r.tfMemoryMB === null ? '' : r.tfMemoryMB.toFixed(1),
      t === r ? '1.00 (ref)' : t ? `${(r.tokensPerS / t.tokensPerS).toFixed(2)}×` : '—',
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([2, 3, 4, 5, 6, 7]);
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [fmt(head), rule, ...body.map(fmt)].join('\n');
}

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  const memory = `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
  return `${cores()} × ${cpu}, ${memory}, Node ${process.versions.node}, tfjs ${tf.version.tfjs}`;
}
