// The bench's worker: one tfjs measurement of one (model, backend), run in its own child process
// (`dist/bench.js --worker ...`) because a tfjs backend is global to a process and a fresh process gives each row its
// own peak-memory figure. It builds the model, LoRA trainables and LoRA+ optimizer, takes warm-up steps, times the
// training steps while sampling RSS and CPU use, optionally profiles one step, and prints one `BENCH_RESULT` line.
// A wasm row runs at the thread count the parent put in LORAPLUS_WASM_THREADS (read by selectBackend).
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../src/engine/backend/select';
import { AdamW, loraplusGroups } from '../src/engine/train/optimizer';
import { Rng } from '../src/engine/data/rng';
import { Trainables } from '../src/engine/train/trainables';
import { createModel } from '../src/models/create';
import { FAMILIES } from '../src/models/registry';
import type { BatchTensors } from '../src/models/types';
import {
  ADAM,
  gaussian,
  LORA,
  LORAPLUS,
  modelWeights,
  SLOW_STEP_MS,
  SPECS,
  WARMUP,
  type Backend,
  type ModelId,
} from './models';
import { cores, firstLine, median, RESULT_TAG, round1, round2, type Measured, type Row } from './rows';
import type { Device } from '../src/protocol/merge';

export interface WorkerOptions {
  backend: Backend;
  model: ModelId;
  quick: boolean;
  steps: number | null; // fixed number of timed steps, else by time budget
  seq: number | null; // sequence length in place of the model's (--seq)
  softwareWebgpu: boolean;
  profile: boolean;
}

export const WASM_THREADS_ENV = 'LORAPLUS_WASM_THREADS';

export async function worker(o: WorkerOptions): Promise<void> {
  const spec = { ...SPECS[o.model], ...(o.seq ? { seq: o.seq } : {}) };
  const rss = startRssSampler();
  const emit = (r: Row) => process.stdout.write(`${RESULT_TAG}${JSON.stringify(r)}\n`);
  const asked = o.backend === 'wasm' ? Number(process.env[WASM_THREADS_ENV]) || null : null;
  const skip = (why: string) =>
    emit({ side: 'tfjs', model: o.model, backend: o.backend, ...(asked ? { threads: asked } : {}), skipped: why });
  let info;
  try {
    info = await selectBackend(o.backend as Device);
  } catch (err) {
    skip(firstLine(err));
    return;
  }
  const software = o.backend === 'webgpu' && /software/i.test(info.name);
  if (software && !o.softwareWebgpu) {
    skip(`only a software adapter: ${info.name} (pass --software-webgpu to run it anyway)`);
    return;
  }
  // BackendInfo.threads where the engine reports it (wasm, cpu); before that, what tfjs says. A software WebGPU
  // adapter (llvmpipe) is the CPU too: one rasteriser thread per core unless LP_NUM_THREADS says.
  const reported = (info as { threads?: number }).threads;
  const threads =
    o.backend === 'wasm'
      ? (reported ?? (await wasmThreads()))
      : o.backend === 'cpu'
        ? (reported ?? 1)
        : software
          ? Number(process.env.LP_NUM_THREADS) || cores()
          : null;
  if (asked !== null && threads !== asked) {
    skip(
      `wasm ran ${threads} thread${threads === 1 ? '' : 's'}, ` +
        `not the ${asked} that ${WASM_THREADS_ENV}=${asked} asked for`,
    );
    return;
  }

  const t0 = performance.now();
  const rng = new Rng(1234);
  const normal = gaussian(rng);
  const { config, weights, dir } = modelWeights(o.model, normal);
  const family = FAMILIES[String(config.model_type)];
  const model = createModel(family, config, weights, { task: spec.task, numLabels: spec.numLabels, normal, dir });
  weights.clear(); // the host copies can go: the model holds its own tensors
  const builtMB = tf.memory().numBytes / 2 ** 20;
  (globalThis as { gc?: () => void }).gc?.(); // the worker runs with --expose-gc: free them now, not mid-training
  const trainables = new Trainables(model, { ...LORA, target_modules: spec.targets }, family, () => rng.next(), null);
  const params = trainables.params();
  const opt = new AdamW(loraplusGroups(params, LORAPLUS), ADAM);
  const trainMB = tf.memory().numBytes / 2 ** 20 - builtMB;
  const ids = new Int32Array(spec.batch * spec.seq);
  for (let i = 0; i < ids.length; i++) ids[i] = Math.floor(rng.next() * model.vocabSize);
  const batch: BatchTensors = {
    inputIds: tf.tensor2d(ids, [spec.batch, spec.seq], 'int32'),
    attentionMask: tf.ones([spec.batch, spec.seq], 'int32') as tf.Tensor2D,
    typeIds: null, // BERT: all type 0, one sentence
    labels:
      spec.task === 'causal-lm'
        ? null
        : tf.tensor1d(
            Array.from({ length: spec.batch }, () => Math.floor(rng.next() * spec.numLabels)),
            'int32',
          ),
  };
  const setupS = (performance.now() - t0) / 1000;
  const setupPeakMB = round1((vmHwmBytes() ?? 0) / 2 ** 20);

  // One training step as src/engine/train/train.ts takes it (without clipping).
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
  let loss: number;
  try {
    loss = await step();
  } catch (err) {
    // wasm32's heap stops at 4 GiB: a model that outgrows it aborts the module. Say so, with the sizes, as a skipped
    // row; anything else is a bug and fails the bench.
    const heap = wasmHeap().wasmHeapMB;
    if (heap === undefined || !/memory access out of bounds|abort|out of memory|enlarge memory/i.test(String(err)))
      throw err;
    skip(
      `out of memory in the first step: the wasm heap had grown to ${heap} MB (wasm32's limit: 4096 MB) for ` +
        `${round1(builtMB)} MB of weights and ${round1(trainMB)} MB of LoRA + optimizer state (${firstLine(err)})`,
    );
    return;
  }
  const slow = performance.now() - w0 > SLOW_STEP_MS && o.steps === null;
  for (; warmup < (slow ? 1 : WARMUP); warmup++) loss = await step();
  const stepMs: number[] = [];
  const tensorsBefore = tf.memory().numTensors;
  const cpu0 = process.cpuUsage();
  const busy0 = systemBusyS();
  const wall0 = performance.now();
  const fixed = o.steps ?? (slow ? 2 : o.quick ? 3 : null);
  while (
    fixed !== null
      ? stepMs.length < fixed
      : stepMs.length < 3 || (stepMs.length < 20 && (performance.now() - wall0) / 1000 < spec.budgetS)
  ) {
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
    side: 'tfjs',
    model: o.model,
    backend: o.backend,
    device: info.name,
    threads,
    batch: spec.batch,
    seq: spec.seq,
    warmup,
    steps: stepMs.length,
    stepMs: stepMs.map(round1),
    medianMs: round1(medianMs),
    tokensPerS: round1((spec.batch * spec.seq) / (medianMs / 1000)),
    peakRssMB: round1(rss.stop() / 2 ** 20),
    tfMemoryMB: round1(mem.numBytes / 2 ** 20),
    numTensors: mem.numTensors,
    tensorsLeaked: mem.numTensors - tensorsBefore,
    cpuUtil: round2(ownS / (wall / 1000)),
    otherCpu: busy0 === null || busy1 === null ? null : round2(Math.max(0, busy1 - busy0 - ownS) / (wall / 1000)),
    loss,
    setupS: round1(setupS),
    setupPeakMB,
    ...wasmHeap(),
    ...(prof ? { profile: prof.kernels, profilePeakMB: prof.peakMB } : {}),
  });
  tf.dispose([batch.inputIds, batch.attentionMask, ...(batch.labels ? [batch.labels] : [])]);
  opt.dispose();
  trainables.dispose();
  model.dispose();
}

/** The slowest kernels of one step, summed by kernel name and input shapes. 'forward' is a tf.customGrad (its
 *  time includes the kernels inside it, which are listed too). */
async function profileStep(
  step: () => Promise<number>,
): Promise<{ kernels: NonNullable<Measured['profile']>; peakMB: number }> {
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
  const kernels = [...by]
    .map(([kernel, e]) => ({ kernel, ms: round1(e.ms), calls: e.calls }))
    .sort((a, b) => b.ms - a.ms)
    .slice(0, 20);
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
