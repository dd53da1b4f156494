// `npm run bench`: LoRA+ training throughput of the engine on every TensorFlow.js backend that can start here,
// side by side with the same training step in plain PyTorch (bench/torch_llama_lora.py) when python3-torch is
// installed. A benchmark, not a test: it prints a table (or JSON with --json) and exits 0 whatever it measured.
//
// Each (model, backend) runs in its own child process (`dist/bench.js --worker ...`): tfjs backends are global to a
// process, and a fresh process gives each its own peak-memory figure. The worker prints one JSON line.
//
//   npm run bench -- [--quick] [--steps N] [--backends wasm,cpu] [--models stories260k,gpt2-small]
//                    [--software-webgpu] [--profile] [--json]
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights, type HostTensor } from '../src/adapters/safetensors';
import { selectBackend, type Device } from '../src/engine/backend';
import { AdamW, loraplusGroups } from '../src/engine/optimizer';
import { Rng } from '../src/engine/rng';
import { Trainables } from '../src/engine/trainables';
import { LlamaModel } from '../src/models/llama/model';
import { FAMILIES } from '../src/models/registry';
import type { BatchTensors, HFConfig } from '../src/models/types';

// ---- what is measured ---------------------------------------------------------------------------------------------

const MODEL_IDS = ['stories260k', 'gpt2-small'] as const;
type ModelId = (typeof MODEL_IDS)[number];
const BACKENDS = ['cuda', 'webgpu', 'wasm', 'cpu'] as const;
type Backend = (typeof BACKENDS)[number];

interface ModelSpec {
  label: string;
  batch: number;
  seq: number;
  /** Budget for the timed steps of one row (default mode): stop adding steps once it is spent (≥ 3 steps). */
  budgetS: number;
}

const SPECS: Record<ModelId, ModelSpec> = {
  stories260k: { label: 'stories260k', batch: 32, seq: 128, budgetS: 20 },
  'gpt2-small': { label: 'gpt2-small (Llama, random)', batch: 2, seq: 128, budgetS: 45 },
};

const STORIES_DIR = path.resolve(__dirname, '..', '..', 'shared', 'models', 'stories260k');

/** A Llama-shaped model at GPT-2-small size (12 × 768, 12 heads, MLP 3072, vocab 50257, tied embeddings). */
const GPT2_SMALL_CONFIG: HFConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 12,
  vocab_size: 50257,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  initializer_range: 0.02,
};

const LORA = { r: 8, lora_alpha: 16, lora_dropout: 0, use_rslora: false, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], modules_to_save: null };
const LORAPLUS = { learning_rate: 1e-4, loraplus_lr_ratio: 16, loraplus_lr_embedding: 1e-6, weight_decay: 0 };
const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
const WARMUP = 2;
/** A row whose first warm-up step takes longer than this (the plain-JS cpu backend: over a minute) gets one warm-up
 *  step and two timed ones, so that the whole bench stays near ten minutes. --steps overrides it. */
const SLOW_STEP_MS = 30_000;

// ---- options --------------------------------------------------------------------------------------------------------

interface Options {
  worker: boolean;
  backend: Backend;
  model: ModelId;
  quick: boolean;
  steps: number | null; // fixed number of timed steps, else by time budget
  backends: Backend[];
  backendsGiven: boolean;
  models: ModelId[];
  json: boolean;
  softwareWebgpu: boolean;
  profile: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { worker: false, backend: 'wasm', model: 'stories260k', quick: false, steps: null, backends: [...BACKENDS], backendsGiven: false, models: [...MODEL_IDS], json: false, softwareWebgpu: false, profile: false };
  const list = <T extends string>(v: string | undefined, allowed: readonly T[], what: string): T[] => {
    const xs = (v ?? '').split(',').map((s) => s.trim()).filter(Boolean);
    const bad = xs.filter((x) => !allowed.includes(x as T));
    if (!xs.length || bad.length) usage(`${what} must be a comma-separated list of ${allowed.join(', ')}${bad.length ? ` (got ${bad.join(', ')})` : ''}`);
    return xs as T[];
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case '--worker': o.worker = true; break;
      case '--backend': o.backend = list(value(), BACKENDS, '--backend')[0]; break;
      case '--model': o.model = list(value(), MODEL_IDS, '--model')[0]; break;
      case '--quick': o.quick = true; break;
      case '--steps': {
        const n = Number(value());
        if (!Number.isInteger(n) || n < 1) usage('--steps must be a positive integer');
        o.steps = n;
        break;
      }
      case '--backends': o.backends = list(value(), BACKENDS, '--backends'); o.backendsGiven = true; break;
      case '--models': o.models = list(value(), MODEL_IDS, '--models'); break;
      case '--json': o.json = true; break;
      case '--software-webgpu': o.softwareWebgpu = true; break;
      case '--profile': o.profile = true; break;
      case '--help': case '-h': usage(null); break;
      default: usage(`unknown option ${a}`);
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
    `  --models LIST           of ${MODEL_IDS.join(',')} (default: both)`,
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

// ---- results --------------------------------------------------------------------------------------------------------

interface Measured {
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
}

interface Skipped {
  side: 'tfjs' | 'torch';
  model: ModelId;
  backend: string;
  skipped: string;
}

type Row = Measured | Skipped;
const isMeasured = (r: Row): r is Measured => !('skipped' in r);

const RESULT_TAG = 'BENCH_RESULT ';

// ---- the worker: one (model, backend) ------------------------------------------------------------------------------

async function worker(o: Options): Promise<void> {
  const spec = SPECS[o.model];
  const rss = startRssSampler();
  const emit = (r: Row) => process.stdout.write(`${RESULT_TAG}${JSON.stringify(r)}\n`);
  let info;
  try {
    info = await selectBackend(o.backend as Device);
  } catch (err) {
    emit({ side: 'tfjs', model: o.model, backend: o.backend, skipped: firstLine(err) });
    return;
  }
  const software = o.backend === 'webgpu' && /software/i.test(info.name);
  if (software && !o.softwareWebgpu) {
    emit({ side: 'tfjs', model: o.model, backend: o.backend, skipped: `only a software adapter: ${info.name} (pass --software-webgpu to run it anyway)` });
    return;
  }
  // A software WebGPU adapter (llvmpipe) is the CPU too: one rasteriser thread per core unless LP_NUM_THREADS says.
  const threads = o.backend === 'wasm' ? await wasmThreads() : o.backend === 'cpu' ? 1 : software ? Number(process.env.LP_NUM_THREADS) || cores() : null;

  const t0 = performance.now();
  const rng = new Rng(1234);
  const normal = gaussian(rng);
  const { config, weights, dir } = o.model === 'stories260k' ? readStories() : { config: GPT2_SMALL_CONFIG, weights: randomLlamaWeights(GPT2_SMALL_CONFIG, normal), dir: '<random gpt2-small>' };
  const model = new LlamaModel(config, weights, { task: 'causal-lm', numLabels: 0, normal, dir });
  weights.clear(); // the host copies can go: the model holds its own tensors
  (globalThis as { gc?: () => void }).gc?.(); // the worker runs with --expose-gc: free them now, not mid-training
  const trainables = new Trainables(model, LORA, FAMILIES.llama, () => rng.next(), null);
  const params = trainables.params();
  const opt = new AdamW(loraplusGroups(params, LORAPLUS), ADAM);
  const ids = new Int32Array(spec.batch * spec.seq);
  for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(rng.next() * model.vocabSize);
  const batch: BatchTensors = {
    inputIds: tf.tensor2d(ids, [spec.batch, spec.seq], 'int32'),
    attentionMask: tf.ones([spec.batch, spec.seq], 'int32') as tf.Tensor2D,
    typeIds: null,
    labels: null,
  };
  const setupS = (performance.now() - t0) / 1000;
  const setupPeakMB = round1((vmHwmBytes() ?? 0) / 2 ** 20);

  const vars = params.map((p) => p.variable);
  const step = async (): Promise<number> => {
    const { value, grads } = tf.variableGrads(() => model.loss(batch, trainables), vars);
    const byName = new Map(params.map((p) => [p.name, grads[p.variable.name]]));
    const deltas = opt.step(byName, 1);
    tf.dispose([...Object.values(grads), ...deltas.values()]);
    const loss = (await value.data())[0];
    value.dispose();
    return loss;
  };

  let warmup = 1;
  const w0 = performance.now();
  let loss = await step();
  const slow = performance.now() - w0 > SLOW_STEP_MS && o.steps === null;
  for (; warmup < (slow ? 1 : WARMUP); warmup++) loss = await step();
  const stepMs: number[] = [];
  const tensorsBefore = tf.memory().numTensors;
  const cpu0 = process.cpuUsage();
  const busy0 = systemBusyS();
  const wall0 = performance.now();
  const fixed = o.steps ?? (slow ? 2 : o.quick ? 3 : null);
  while (fixed !== null ? stepMs.length < fixed : stepMs.length < 3 || (stepMs.length < 20 && (performance.now() - wall0) / 1000 < spec.budgetS)) {
    const s = performance.now();
    loss = await step();
    stepMs.push(performance.now() - s);
  }
  const wall = performance.now() - wall0;
  const cpu = process.cpuUsage(cpu0);
  const busy1 = systemBusyS();
  const ownS = (cpu.user + cpu.system) / 1e6;
  const mem = tf.memory();

  const prof = o.profile ? await profileStep(step) : null;

  const medianMs = median(stepMs);
  emit({
    side: 'tfjs', model: o.model, backend: o.backend, device: info.name, threads, batch: spec.batch, seq: spec.seq,
    warmup, steps: stepMs.length, stepMs: stepMs.map(round1), medianMs: round1(medianMs),
    tokensPerS: round1((spec.batch * spec.seq) / (medianMs / 1000)), peakRssMB: round1(rss.stop() / 2 ** 20),
    tfMemoryMB: round1(mem.numBytes / 2 ** 20), numTensors: mem.numTensors, tensorsLeaked: mem.numTensors - tensorsBefore, cpuUtil: round2(ownS / (wall / 1000)),
    otherCpu: busy0 === null || busy1 === null ? null : round2(Math.max(0, busy1 - busy0 - ownS) / (wall / 1000)),
    loss, setupS: round1(setupS), setupPeakMB, ...wasmHeap(), ...(prof ? { profile: prof.kernels, profilePeakMB: prof.peakMB } : {}),
  });
  tf.dispose([batch.inputIds, batch.attentionMask]);
  opt.dispose();
  trainables.dispose();
  model.dispose();
}

/** The slowest kernels of one step, summed by kernel name and input shapes. 'forward' is a tf.customGrad (its
 *  time includes the kernels inside it, which are listed too). */
async function profileStep(step: () => Promise<number>): Promise<{ kernels: NonNullable<Measured['profile']>; peakMB: number }> {
  const info = await tf.profile(async () => {
    await step();
  });
  const by = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const ms = typeof k.kernelTimeMs === 'number' ? k.kernelTimeMs : 0;
    const key = `${k.name} ${k.inputShapes.map((s) => `[${s ?? ''}]`).join('')}`;
    const e = by.get(key) ?? { ms: 0, calls: 0 };
    e.ms += ms;
    e.calls += 1;
    by.set(key, e);
  }
  const kernels = [...by].map(([kernel, e]) => ({ kernel, ms: round1(e.ms), calls: e.calls })).sort((a, b) => b.ms - a.ms).slice(0, 20);
  return { kernels, peakMB: round1(info.peakBytes / 2 ** 20) };
}

function wasmHeap(): { wasmHeapMB?: number } {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? { wasmHeapMB: round1(heap.buffer.byteLength / 2 ** 20) } : {};
}

async function wasmThreads(): Promise<number> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  try {
    return wasm.getThreadsCount();
  } catch {
    return 1;
  }
}

function readStories(): { config: HFConfig; weights: Map<string, HostTensor>; dir: string } {
  const config = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8')) as HFConfig;
  return { config, weights: loadModelWeights(STORIES_DIR), dir: STORIES_DIR };
}

/** N(0, 0.02) weights for a Llama config (norm weights 1), as HF's _init_weights. */
function randomLlamaWeights(c: HFConfig, normal: () => number): Map<string, HostTensor> {
  const h = c.hidden_size as number;
  const inter = c.intermediate_size as number;
  const hd = h / (c.num_attention_heads as number);
  const q = (c.num_attention_heads as number) * hd;
  const kv = (c.num_key_value_heads as number) * hd;
  const w = new Map<string, HostTensor>();
  const randn = (shape: number[]): HostTensor => {
    const data = new Float32Array(shape[0] * (shape[1] ?? 1));
    for (let i = 0; i < data.length; i++) data[i] = normal() * 0.02;
    return { dtype: 'float32', shape, data };
  };
  const ones = (n: number): HostTensor => ({ dtype: 'float32', shape: [n], data: new Float32Array(n).fill(1) });
  w.set('model.embed_tokens.weight', randn([c.vocab_size as number, h]));
  w.set('model.norm.weight', ones(h));
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    w.set(`${p}.input_layernorm.weight`, ones(h));
    w.set(`${p}.post_attention_layernorm.weight`, ones(h));
    w.set(`${p}.self_attn.q_proj.weight`, randn([q, h]));
    w.set(`${p}.self_attn.k_proj.weight`, randn([kv, h]));
    w.set(`${p}.self_attn.v_proj.weight`, randn([kv, h]));
    w.set(`${p}.self_attn.o_proj.weight`, randn([h, q]));
    w.set(`${p}.mlp.gate_proj.weight`, randn([inter, h]));
    w.set(`${p}.mlp.up_proj.weight`, randn([inter, h]));
    w.set(`${p}.mlp.down_proj.weight`, randn([h, inter]));
  }
  return w;
}

/** Box–Muller over the seeded generator (both values of each pair are used). */
function gaussian(rng: Rng): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12)));
    const th = 2 * Math.PI * rng.next();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}

/**
 * Peak resident memory of this process: the kernel's high-water mark (VmHWM) where there is one, and samples of
 * process.memoryUsage().rss every 50 ms (which cannot fire while a synchronous wasm/cpu kernel runs).
 */
function startRssSampler(): { stop(): number } {
  let peak = process.memoryUsage().rss;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 50);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, process.memoryUsage().rss, vmHwmBytes() ?? 0);
    },
  };
}

/** CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq), from /proc/stat. */
function systemBusyS(): number | null {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, , , irq, softirq] = f;
    return (user + nice + system + irq + softirq) / 100; // USER_HZ
  } catch {
    return null;
  }
}

function vmHwmBytes(): number | null {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

// ---- the driver -----------------------------------------------------------------------------------------------------

async function main(o: Options): Promise<void> {
  const started = Date.now();
  const log = (s: string) => process.stderr.write(`${s}\n`);
  const rows: Row[] = [];
  for (const model of o.models) {
    for (const backend of o.backends) {
      if (model === 'stories260k' && !fs.existsSync(path.join(STORIES_DIR, 'model.safetensors'))) {
        rows.push({ side: 'tfjs', model, backend, skipped: `the stories260k checkpoint is not at ${STORIES_DIR}` });
        continue;
      }
      if (backend === 'cpu' && model !== 'stories260k' && !o.backendsGiven) {
        rows.push({ side: 'tfjs', model, backend, skipped: 'the plain-JS cpu backend is too slow at this size (name it in --backends to run it anyway)' });
        continue;
      }
      log(`bench: ${model} on ${backend} ...`);
      const r = await runWorker(o, model, backend);
      rows.push(r);
      log(isMeasured(r) ? `bench:   ${r.tokensPerS} tokens/s, ${r.medianMs} ms/step, peak RSS ${r.peakRssMB} MB` : `bench:   skipped: ${r.skipped}`);
      if (isMeasured(r) && r.profile) {
        log(`bench:   slowest kernels of one step (${r.model}, ${r.backend}; tensor memory peaked at ${r.profilePeakMB} MB):`);
        for (const k of r.profile) log(`bench:     ${k.kernel.padEnd(48)} ${k.ms.toFixed(1).padStart(9)} ms  ${String(k.calls).padStart(5)} calls`);
      }
    }
  }

  // PyTorch at the thread count of each CPU row (so the ratio compares like with like), and with every core.
  const torch = torchAvailable();
  if (torch.ok) {
    for (const model of o.models) {
      const counts = new Set<number>();
      if (model === 'stories260k' && !fs.existsSync(path.join(STORIES_DIR, 'model.safetensors'))) continue;
      for (const r of rows) if (isMeasured(r) && r.model === model && r.threads !== null) counts.add(r.threads);
      counts.add(cores());
      for (const n of [...counts].sort((a, b) => a - b)) {
        log(`bench: ${model} on PyTorch, ${n} thread${n === 1 ? '' : 's'} ...`);
        const r = await runTorch(o, torch.python, model, n);
        rows.push(r);
        log(isMeasured(r) ? `bench:   ${r.tokensPerS} tokens/s, ${r.medianMs} ms/step, peak RSS ${r.peakRssMB} MB` : `bench:   failed: ${r.skipped}`);
      }
    }
  }

  const elapsed = (Date.now() - started) / 1000;
  const targets = evaluateTargets(rows, o.models);
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ machine: machine(), pytorch: torch.ok ? torch.version : null, results: rows, targets, elapsed_s: round1(elapsed) }, null, 2)}\n`);
    return;
  }
  process.stdout.write(`\n${machine()}; LoRA r=8 α=16 on q,k,v,o; LoRA+ AdamW (λ=16); ${WARMUP} warm-up steps, median of the timed steps\n\n`);
  process.stdout.write(`${renderTable(rows)}\n`);
  const short = rows.filter(isMeasured).filter((r) => r.side === 'tfjs' && r.warmup < WARMUP);
  for (const r of short) process.stdout.write(`\n${r.model} / ${r.backend}: a step takes over ${SLOW_STEP_MS / 1000} s, so ${r.warmup} warm-up and ${r.steps} timed steps.\n`);
  if (!torch.ok) process.stdout.write(`\nPyTorch: ${torch.why}\n`);
  else process.stdout.write(`\nPyTorch ${torch.version}: plain-torch Llama (bench/torch_llama_lora.py), torch.set_num_threads(n), OMP/OpenBLAS threads = n, OMP_WAIT_POLICY=PASSIVE.\n`);
  if (torch.ok) process.stdout.write('"vs PyTorch" = tokens/s ÷ PyTorch tokens/s at the same thread count (GPU rows: PyTorch on every CPU core).\n');
  const skipped = rows.filter((r): r is Skipped => !isMeasured(r) && r.side === 'tfjs');
  if (skipped.length) {
    process.stdout.write('\nSkipped:\n');
    for (const s of skipped) process.stdout.write(`  ${s.model} / ${s.backend}: ${s.skipped}\n`);
  }
  process.stdout.write(`\nTargets (issue): wasm ≥ 0.5× PyTorch tokens/s on stories260k, ≥ 0.3× on gpt2-small; peak memory ≤ 2× PyTorch's.\n`);
  for (const t of targets) process.stdout.write(`  ${t.met === null ? 'n/a ' : t.met ? 'MET ' : 'MISS'}  ${t.what}: ${t.detail}\n`);
  for (const r of rows.filter(isMeasured)) {
    if (r.tensorsLeaked) process.stdout.write(`\nLeak: ${r.model} / ${r.backend} left ${r.tensorsLeaked} tensors behind over ${r.steps} steps.\n`);
  }
  const contended = rows.filter(isMeasured).filter((r) => (r.otherCpu ?? 0) >= 0.2);
  if (contended.length) {
    process.stdout.write(`\nOther processes were using the CPU during ${contended.length} row(s), which slows them: ${contended.map((r) => `${r.model} / ${r.backend === 'pytorch' ? `PyTorch ${r.threads}t` : r.backend} (${r.otherCpu} cores)`).join(', ')}.\n`);
  }
  process.stdout.write(`\n(${round1(elapsed)} s in all)\n`);
}

function runWorker(o: Options, model: ModelId, backend: Backend): Promise<Row> {
  const args = [...process.execArgv, '--expose-gc', __filename, '--worker', '--model', model, '--backend', backend];
  if (o.quick) args.push('--quick');
  if (o.steps !== null) args.push('--steps', String(o.steps));
  if (o.softwareWebgpu) args.push('--software-webgpu');
  if (o.profile) args.push('--profile');
  return runChild(process.execPath, args, process.env, { side: 'tfjs', model, backend });
}

function runTorch(o: Options, python: string, model: ModelId, threads: number): Promise<Row> {
  const spec = SPECS[model];
  const script = path.resolve(__dirname, '..', 'bench', 'torch_llama_lora.py');
  const args = [script, '--model', model, '--batch', String(spec.batch), '--seq', String(spec.seq), '--threads', String(threads), '--warmup', String(WARMUP), '--budget', String(spec.budgetS)];
  if (model === 'stories260k') args.push('--model-dir', STORIES_DIR);
  const steps = o.steps ?? (o.quick ? 3 : null);
  if (steps !== null) args.push('--steps', String(steps));
  const n = String(threads);
  const env = { ...process.env, OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: n, OPENBLAS_NUM_THREADS: n, MKL_NUM_THREADS: n };
  return runChild(python, args, env, { side: 'torch', model, backend: 'pytorch' });
}

/** Runs a child that prints one `BENCH_RESULT {json}` line; a crash becomes a Skipped row with its last error line. */
function runChild(cmd: string, args: string[], env: NodeJS.ProcessEnv, who: Omit<Skipped, 'skipped'>): Promise<Row> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60 * 1000);
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ...who, skipped: `could not start ${cmd}: ${e.message}` });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const line = out.split('\n').find((l) => l.startsWith(RESULT_TAG));
      if (line) return resolve(JSON.parse(line.slice(RESULT_TAG.length)) as Row);
      const last = err.trim().split('\n').filter((l) => l.trim() && !/^\s+at /.test(l)).slice(-2).join(' | ');
      resolve({ ...who, skipped: `failed (${signal ?? `exit ${code}`}): ${last || 'no output'}` });
    });
  });
}

/** The first Python that can import torch: $PYTHON, python3 on PATH, then Debian's own /usr/bin/python3 (where
 *  python3-torch installs, and which a pyenv or venv python3 on PATH does not see). */
function torchAvailable(): { ok: true; python: string; version: string } | { ok: false; why: string } {
  const candidates = [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { ok: true, python, version: r.stdout.trim() };
  }
  return { ok: false, why: 'not installed (apt-get install python3-torch)' };
}

// ---- targets and the table ------------------------------------------------------------------------------------------

interface Target {
  what: string;
  met: boolean | null; // null: not measured
  detail: string;
}

/** The PyTorch row a tfjs row is compared with: same model, same thread count (GPU rows: every core). */
function torchFor(rows: Row[], r: Measured): Measured | undefined {
  const want = r.threads ?? cores();
  return rows.filter(isMeasured).find((t) => t.side === 'torch' && t.model === r.model && t.threads === want);
}

function evaluateTargets(rows: Row[], models: ModelId[]): Target[] {
  const out: Target[] = [];
  const goals: [ModelId, number][] = [['stories260k', 0.5], ['gpt2-small', 0.3]];
  for (const [model, goal] of goals) {
    if (!models.includes(model)) continue;
    const w = rows.filter(isMeasured).find((r) => r.side === 'tfjs' && r.model === model && r.backend === 'wasm');
    const t = w && torchFor(rows, w);
    if (!w || !t) {
      out.push({ what: `wasm throughput on ${model} ≥ ${goal}× PyTorch`, met: null, detail: !w ? 'wasm was not measured' : 'PyTorch was not measured' });
      out.push({ what: `wasm peak RSS on ${model} ≤ 2× PyTorch`, met: null, detail: !w ? 'wasm was not measured' : 'PyTorch was not measured' });
      continue;
    }
    const ratio = w.tokensPerS / t.tokensPerS;
    const all = rows.filter(isMeasured).find((x) => x.side === 'torch' && x.model === model && x.threads === cores() && x !== t);
    const allNote = all ? `; ${(w.tokensPerS / all.tokensPerS).toFixed(2)}× PyTorch on all ${cores()} cores, ${all.tokensPerS} tokens/s` : '';
    out.push({ what: `wasm throughput on ${model} ≥ ${goal}× PyTorch`, met: ratio >= goal, detail: `${ratio.toFixed(2)}× (${w.tokensPerS} vs ${t.tokensPerS} tokens/s, ${w.threads} vs ${t.threads} thread${t.threads === 1 ? '' : 's'}${allNote})` });
    const mem = w.peakRssMB / t.peakRssMB;
    out.push({ what: `wasm peak RSS on ${model} ≤ 2× PyTorch`, met: mem <= 2, detail: `${mem.toFixed(2)}× (${w.peakRssMB} vs ${t.peakRssMB} MB)` });
  }
  return out;
}

function renderTable(rows: Row[]): string {
  const head = ['model', 'backend (device)', 'threads', 'tokens/s', 'step ms', 'peak RSS MB', 'tf.memory MB', 'vs PyTorch'];
  const body: string[][] = [];
  const order = (r: Row) => (r.side === 'torch' ? 10 : BACKENDS.indexOf(r.backend as Backend));
  const measured = rows.filter(isMeasured).sort((a, b) => MODEL_IDS.indexOf(a.model) - MODEL_IDS.indexOf(b.model) || order(a) - order(b) || (a.threads ?? 0) - (b.threads ?? 0));
  for (const r of measured) {
    const t = r.side === 'tfjs' ? torchFor(rows, r) : undefined;
    body.push([
      SPECS[r.model].label + ` ${r.batch}×${r.seq}`,
      r.side === 'torch' ? `PyTorch (${r.device})` : `${r.backend} (${r.device.replace(/^(.*) \(([^()]*)\)$/, '$1, $2')})`,
      r.threads === null ? 'GPU' : String(r.threads),
      r.tokensPerS.toFixed(r.tokensPerS < 100 ? 1 : 0),
      r.medianMs.toFixed(r.medianMs < 100 ? 1 : 0),
      r.peakRssMB.toFixed(0),
      r.tfMemoryMB === null ? '' : r.tfMemoryMB.toFixed(1),
      r.side === 'torch' ? '1.00 (ref)' : t ? `${(r.tokensPerS / t.tokensPerS).toFixed(2)}×` : '—',
    ]);
  }
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const right = new Set([2, 3, 4, 5, 6, 7]);
  const fmt = (cells: string[]) => `| ${cells.map((c, i) => (right.has(i) ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (right.has(i) ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [fmt(head), rule, ...body.map(fmt)].join('\n');
}

// ---- helpers --------------------------------------------------------------------------------------------------------

function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU';
  return `${cores()} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.versions.node}, tfjs ${tf.version.tfjs}`;
}

function cores(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const round1 = (x: number) => Math.round(x * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}

const opts = parseArgs(process.argv.slice(2));
(opts.worker ? worker(opts) : main(opts)).then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
