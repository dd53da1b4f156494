// One row of the bench's results, as every part sees it: a measured (model, backend) or one that was skipped with
// a reason. Each row is measured in a child process (a tfjs worker, or the PyTorch script) that prints it as one
// `BENCH_RESULT {json}` line; runChild collects that line, and turns a crash into a skipped row that says why.
// Also the few number helpers both sides use.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import type { ModelId } from './models';

export interface Measured {
  side: 'tfjs' | 'torch';
  model: ModelId;
  backend: string; // tfjs: cuda | webgpu | wasm | cpu; torch: 'pytorch'
  device: string;
  threads: number | null; // CPU threads doing the work (null: a GPU)
  batch: number;
  seq: number;
  warmup: number;
  steps: number;
  stepMs: number[];
  medianMs: number;
  tokensPerS: number;
  peakRssMB: number; // whole process: max(VmHWM, 50 ms samples)
  tfMemoryMB: number | null; // tf.memory().numBytes after the steps (tfjs only)
  numTensors: number | null;
  tensorsLeaked?: number; // tfjs: tensors left over by the timed steps (0 unless a step leaks)
  wasmHeapMB?: number; // wasm: the size the WebAssembly memory has grown to (it never shrinks; wasm32 caps it at 4 GiB)
  cpuUtil: number; // process CPU time / wall time over the timed steps: how many cores were busy on average
  otherCpu: number | null; // cores kept busy by other processes meanwhile (/proc/stat minus our own CPU time)
  loss: number; // the last step's loss (sanity)
  setupS: number; // building the model, trainables and optimizer
  setupPeakMB?: number; // tfjs: peak RSS once the model was built, before the first step
  profile?: { kernel: string; ms: number; calls: number }[];
  profilePeakMB?: number; // tf.profile's peakBytes over one step: the most tensor memory live at once
  python?: string; // torch: the interpreter (which build)
  impl?: string; // torch: what ran the model (plain torch, or transformers' class + PEFT)
}

export interface Skipped {
  side: 'tfjs' | 'torch';
  model: ModelId;
  backend: string;
  threads?: number; // wasm and PyTorch: the thread count this row was run at
  skipped: string;
}

export type Row = Measured | Skipped;
export const isMeasured = (r: Row): r is Measured => !('skipped' in r);

/** "wasm" is measured at several thread counts, PyTorch always is: their rows are named with the count. */
export function rowLabel(r: Row): string {
  if (r.backend === 'pytorch') return `PyTorch ${r.threads}t`;
  if (r.backend === 'wasm' && typeof r.threads === 'number') return `wasm ${r.threads}t`;
  return r.backend;
}

export const RESULT_TAG = 'BENCH_RESULT ';

/** Runs a child that prints one `BENCH_RESULT {json}` line; a crash becomes a Skipped row with its last error line. */
export async function runChild(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  who: Omit<Skipped, 'skipped'>,
): Promise<Row> {
  const r = await runTagged(cmd, args, env);
  return 'error' in r ? { ...who, skipped: r.error } : (r.result as Row);
}

/** Runs a child and returns the JSON of its `BENCH_RESULT {json}` line, or why there was none (its last error lines). */
export function runTagged(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ result: unknown } | { error: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60 * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ error: `could not start ${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (line) return resolve({ result: JSON.parse(line.slice(RESULT_TAG.length)) });
      const last = err
        .trim()
        .split('\n')
        .filter((l) => l.trim() && !/^\s+at /.test(l))
        .slice(-2)
        .join(' | ');
      resolve({ error: `failed (${signal ?? `exit ${code}`}): ${last || 'no output'}` });
    });
  });
}

export function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export const round1 = (x: number) => Math.round(x * 10) / 10;
export const round2 = (x: number) => Math.round(x * 100) / 100;

export function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
