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
//   npm run bench:load -- [--baseline] [--shard-mb N] [--keep DIR]     (= npm run bench -- --load-1b; see load.ts)
import { loadBench, type LoadOptions } from './load';
import { LOAD_PATHS, loadWorker, type LoadPath } from './load-worker';
import { BACKENDS, MODEL_IDS, storiesPresent, STORIES_DIR, type Backend, type ModelId } from './models';
import { cores, isMeasured, rowLabel, runChild, type Row } from './rows';
import { report } from './table';
import { buildName, runTorch, torchAvailable } from './torch';
import { WASM_THREADS_ENV, worker, type WorkerOptions } from './worker';

// ---- options --------------------------------------------------------------------------------------------------------

interface Options extends WorkerOptions, LoadOptions {
  worker: boolean;
  load1b: boolean;
  loadWorker: string | null; // the model folder a --load-worker child loads
  loadPath: LoadPath;
  backends: Backend[];
  backendsGiven: boolean;
  models: ModelId[];
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = {
    worker: false,
    load1b: false,
    loadWorker: null,
    loadPath: 'engine',
    baseline: false,
    shardMB: 1024,
    keep: null,
    backend: 'wasm',
    model: 'stories260k',
    quick: false,
    steps: null,
    seq: null,
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
      case '--load-1b':
        o.load1b = true;
        break;
      case '--load-worker':
        o.loadWorker = value();
        break;
      case '--load-path':
        o.loadPath = list(value(), LOAD_PATHS, '--load-path')[0];
        break;
      case '--baseline':
        o.baseline = true;
        break;
      case '--shard-mb': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--shard-mb must be a positive integer');
        o.shardMB = n;
        break;
      }
      case '--keep':
        o.keep = value();
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
      case '--seq': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 2) usage('--seq must be an integer of at least 2');
        o.seq = n;
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
    "  --seq N                 sequence length N for every model (default: each model's own)",
    `  --backends LIST         of ${BACKENDS.join(',')} (default: all; cpu runs stories260k only unless named here)`,
    `  --models LIST           of ${MODEL_IDS.join(',')} (default: all)`,
    '  --software-webgpu       also run WebGPU on a software adapter (llvmpipe, SwiftShader)',
    '  --profile               print the slowest tfjs kernels of one step per row (on stderr)',
    '  --json                  print the results as JSON instead of the table',
    '  --load-1b               instead: the memory of loading a Llama-3.2-1B-shaped sharded bf16 checkpoint',
    '    --baseline            also load it without releasing host copies (as buildModel did before)',
    '    --shard-mb N          largest shard, in MiB (default 1024)',
    '    --keep DIR            write the checkpoint into DIR and keep it (default: a temp folder, removed after)',
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
        // The wasm heap holds the same tensors at any thread count, so a model that outgrew it at 1 thread will at
        // 2; and the threaded build did not exit after that abort here (it hung until the 20-minute kill).
        const oom = rows.find(
          (r) => r.model === model && r.backend === backend && !isMeasured(r) && /out of memory/.test(r.skipped),
        );
        if (oom && threads !== null) {
          rows.push({
            side: 'tfjs',
            model,
            backend,
            threads,
            skipped: `not run: out of memory at ${oom.threads} thread`,
          });
          log(`bench: ${model} on ${backend}, ${plural(threads)}: not run (out of memory at ${oom.threads} thread)`);
          continue;
        }
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

  // PyTorch at the thread count of each CPU row (so the ratio compares like with like; a wasm row that ran out of
  // memory counts too, so the reference is there), and with every core; on every build found (pip's, Debian's).
  const torch = torchAvailable();
  if (torch.ok) {
    for (const b of torch.builds)
      log(`bench: PyTorch: ${buildName(b)}, ${b.gflops} GFLOP/s on 1 thread, at ${b.python}`);
    for (const model of o.models) {
      const counts = new Set<number>();
      if (model === 'stories260k' && !storiesPresent()) continue;
      for (const r of rows) if (r.model === model && typeof r.threads === 'number') counts.add(r.threads);
      counts.add(cores());
      for (const build of torch.builds) {
        for (const n of [...counts].sort((a, b) => a - b)) {
          log(`bench: ${model} on PyTorch (${buildName(build)}), ${plural(n)} ...`);
          const r = await runTorch(build, model, n, o.steps ?? (o.quick ? 3 : null), o.seq);
          rows.push(r);
          logRow(r);
        }
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
  if (o.seq !== null) args.push('--seq', String(o.seq));
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
(opts.loadWorker !== null
  ? loadWorker(opts.loadWorker, opts.loadPath)
  : opts.load1b
    ? loadBench(opts)
    : opts.worker
      ? worker(opts)
      : main(opts)
).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
