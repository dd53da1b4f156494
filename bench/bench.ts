// `npm run bench`: LoRA+ training throughput of the engine on every TensorFlow.js backend that can start here,
// side by side with the same training step in plain PyTorch (bench/torch_llama_lora.py, torch_gpt2_bert_lora.py)
// when python3-torch is installed. A benchmark, not a test: it prints a table (or JSON with --json) and exits 0
// whatever it measured.
//
// This file parses the options and runs the rows, one child process each: a tfjs worker per (model, backend)
// (`dist/bench.js --worker ...`, see worker.ts), then PyTorch at every thread count a CPU row used and on every core
// (torch.ts). wasm is measured at 1 thread and on every core (LORAPLUS_WASM_THREADS), so that both sides are compared
// at equal thread counts. table.ts prints the results.
//
//   npm run bench -- [--quick] [--steps N] [--backends wasm,cpu] [--models stories260k,gpt2-small,gpt2,bert-base]
//                    [--software-webgpu] [--profile] [--json]
import { BACKENDS, MODEL_IDS, storiesPresent, STORIES_DIR, type Backend, type ModelId } from './models';
import { cores, isMeasured, rowLabel, runChild, type Row } from './rows';
import { report } from './table';
import { runTorch, torchAvailable } from './torch';
import { WASM_THREADS_ENV, worker, type WorkerOptions } from './worker';

// ---- options --------------------------------------------------------------------------------------------------------

interface Options extends WorkerOptions {
  worker: boolean;
  backends: Backend[];
  backendsGiven: boolean;
  models: ModelId[];
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    worker: false,
    backend: 'wasm',
    model: 'stories260k',
    quick: false,
    steps: null,
    backends: [...BACKENDS],
    backendsGiven: false,
    models: [...MODEL_IDS],
    json: false,
    softwareWebgpu: false,
    profile: false,
  };
  const list = <T extends string>(v: string | undefined, allowed: readonly T[], what: string): T[] => {
    const xs = (v ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    const bad = xs.filter((x) => !allowed.includes(x as T));
    if (!xs.length || bad.length)
      usage(
        `${what} must be a comma-separated list of ${allowed.join(', ')}` +
          (bad.length ? ` (got ${bad.join(', ')})` : ''),
      );
    return xs as T[];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--worker':
        o.worker = true;
        break;
      case '--backend':
        o.backend = list(value(), BACKENDS, '--backend')[0];
        break;
      case '--model':
        o.model = list(value(), MODEL_IDS, '--model')[0];
        break;
      case '--quick':
        o.quick = true;
        break;
      case '--steps': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--steps must be a positive integer');
        o.steps = n;
        break;
      }
      case '--backends':
        o.backends = list(value(), BACKENDS, '--backends');
        o.backendsGiven = true;
        break;
      case '--models':
        o.models = list(value(), MODEL_IDS, '--models');
        break;
      case '--json':
        o.json = true;
        break;
      case '--software-webgpu':
        o.softwareWebgpu = true;
        break;
      case '--profile':
        o.profile = true;
        break;
      case '--help':
      case '-h':
        usage(null);
        break;
      default:
        usage(`unknown option ${a}`);
    }
  }
  return o;
}

function usage(error: string | null): never {
  const text = [
    'usage: npm run bench -- [options]',
    '  --quick                 3 timed steps per row (after 2 warm-up steps)',
    '  --steps N               N timed steps per row (default: as many as fit a time budget, at least 3)',
    `  --backends LIST         of ${BACKENDS.join(',')} (default: all; cpu runs stories260k only unless named here)`,
    `  --models LIST           of ${MODEL_IDS.join(',')} (default: all)`,
    '  --software-webgpu       also run WebGPU on a software adapter (llvmpipe, SwiftShader)',
    '  --profile               print the slowest tfjs kernels of one step per row (on stderr)',
    '  --json                  print the results as JSON instead of the table',
  ].join('\n');
  if (error) {
    process.stderr.write(`bench: ${error}\n${text}\n`);
    process.exit(2);
  }
  process.stdout.write(`${text}\n`);
  process.exit(0);
}

// ---- the rows -------------------------------------------------------------------------------------------------------

const log = (s: string) => process.stderr.write(`${s}\n`);
const plural = (n: number) => `${n} thread${n === 1 ? '' : 's'}`;

async function main(o: Options): Promise<void> {
  const started = Date.now();
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const backend of o.backends) {
      if (model === 'stories260k' && !storiesPresent()) {
        rows.push({ side: 'tfjs', model, backend, skipped: `the stories260k checkpoint is not at ${STORIES_DIR}` });
        continue;
      }
      if (backend === 'cpu' && model !== 'stories260k' && !o.backendsGiven) {
        rows.push({
          side: 'tfjs',
          model,
          backend,
          skipped: 'the plain-JS cpu backend is too slow at this size (name it in --backends to run it anyway)',
        });
        continue;
      }
      // wasm at each thread count PyTorch is measured at (1, and every core); the other backends once.
      const counts = backend === 'wasm' ? [...new Set([1, cores()])] : [null];
      for (const threads of counts) {
        log(`bench: ${model} on ${backend}${threads === null ? '' : `, ${plural(threads)}`} ...`);
        const r = await runWorker(o, model, backend, threads);
        rows.push(r);
        logRow(r);
        if (isMeasured(r) && r.profile) {
          log(
            `bench:   slowest kernels of one step (${r.model}, ${rowLabel(r)}; ` +
              `tensor memory peaked at ${r.profilePeakMB} MB):`,
          );
          for (const k of r.profile)
            log(
              `bench:     ${k.kernel.padEnd(48)} ${k.ms.toFixed(1).padStart(9)} ms  ` +
                `${String(k.calls).padStart(5)} calls`,
            );
        }
      }
    }
  }

  // PyTorch at the thread count of each CPU row (so the ratio compares like with like), and with every core.
  const torch = torchAvailable();
  if (torch.ok) {
    for (const model of o.models) {
      const counts = new Set<number>();
      if (model === 'stories260k' && !storiesPresent()) continue;
      for (const r of rows) if (isMeasured(r) && r.model === model && r.threads !== null) counts.add(r.threads);
      counts.add(cores());
      for (const n of [...counts].sort((a, b) => a - b)) {
        log(`bench: ${model} on PyTorch, ${plural(n)} ...`);
        const r = await runTorch(torch.python, model, n, o.steps ?? (o.quick ? 3 : null));
        rows.push(r);
        logRow(r);
      }
    }
  }

  report(rows, o.models, torch, (Date.now() - started) / 1000, o.json);
}

function logRow(r: Row): void {
  if (isMeasured(r)) log(`bench:   ${r.tokensPerS} tokens/s, ${r.medianMs} ms/step, peak RSS ${r.peakRssMB} MB`);
  else log(`bench:   ${r.side === 'torch' ? 'failed' : 'skipped'}: ${r.skipped}`);
}

/** One tfjs row in a fresh process (this same bundle, as `--worker`); wasm at `threads` threads. */
function runWorker(o: Options, model: ModelId, backend: Backend, threads: number | null): Promise<Row> {
  const args = [...process.execArgv, '--expose-gc', __filename, '--worker', '--model', model, '--backend', backend];
  if (o.quick) args.push('--quick');
  if (o.steps !== null) args.push('--steps', String(o.steps));
  if (o.softwareWebgpu) args.push('--software-webgpu');
  if (o.profile) args.push('--profile');
  const env = threads === null ? process.env : { ...process.env, [WASM_THREADS_ENV]: String(threads) };
  return runChild(process.execPath, args, env, {
    side: 'tfjs',
    model,
    backend,
    ...(threads === null ? {} : { threads }),
  });
}

const opts = parseArgs(process.argv.slice(2));
(opts.worker ? worker(opts) : main(opts)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
