// The load bench's child process (`dist/bench.js --load-worker DIR --load-path engine|unreleased`): loads the model
// folder DIR once on the cpu backend, in a fresh process so that its VmHWM is the load's alone, and prints one
// `BENCH_RESULT` line. Loading is synchronous from start to end, so a timer could not sample it: the samples are
// taken inside it instead, at every read of a weight file (fs.readSync, which the loader calls for each shard) and
// at every tensor the backend makes (its `write`).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights } from '../src/adapters/safetensors';
import { selectBackend } from '../src/engine/backend/select';
import { Rng } from '../src/engine/data/rng';
import { buildModel, openModelFolder } from '../src/engine/train/inputs';
import { createModel } from '../src/models/create';
import type { Model } from '../src/models/types';
import { RESULT_TAG, round1 } from './rows';

/** engine: openModelFolder + buildModel, as train/eval/merge load a model. unreleased: createModel over the whole
 *  loadModelWeights map, held until the model is built (what buildModel did before it released host copies). */
export const LOAD_PATHS = ['engine', 'unreleased'] as const;
export type LoadPath = (typeof LOAD_PATHS)[number];

export interface LoadResult {
  path: LoadPath;
  loadS: number;
  peakRssMB: number; // VmHWM
  peakHostMB: number; // max over the samples of the ArrayBuffers the backend does not hold
  hostBuiltMB: number; // the same once the model is built: what still coexists with the backend's copy
  backendMB: number; // tf.memory().numBytes once built
  samples: number;
  trace: string; // host / RSS after each shard read, at the first upload and once built
}

const MB = 2 ** 20;

export async function loadWorker(dir: string, which: LoadPath): Promise<void> {
  await selectBackend('cpu');
  const probe = startProbe();
  const t0 = performance.now();
  const folder = openModelFolder(dir);
  let model: Model;
  if (which === 'engine') model = buildModel(folder, 'causal-lm', 0, new Rng(0));
  else
    model = createModel(folder.family, folder.config, loadModelWeights(folder.dir), {
      task: 'causal-lm',
      numLabels: 0,
      normal: () => 0,
      dir: folder.dir,
    });
  const loadS = (performance.now() - t0) / 1000;
  const p = probe.stop();
  // After the measurement only: what a full collection frees was garbage, not a copy the loader still holds.
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) {
    gc();
    const host = process.memoryUsage().arrayBuffers - tf.memory().numBytes;
    p.trace.push(`after a full GC: host ${(Math.max(0, host) / MB).toFixed(0)} MB`);
  }
  const result: LoadResult = {
    path: which,
    loadS: round1(loadS),
    peakRssMB: round1(Math.max(vmHwm(), p.peakRss) / MB),
    peakHostMB: round1(p.peakHost / MB),
    hostBuiltMB: round1(p.endHost / MB),
    backendMB: round1(tf.memory().numBytes / MB),
    samples: p.samples,
    trace: p.trace.join('; '),
  };
  process.stdout.write(`${RESULT_TAG}${JSON.stringify(result)}\n`);
  model.dispose();
}

/** Samples memory inside the synchronous load: after each fs.readSync (a shard, or a 1 GiB piece of one) and in
 *  the backend's write (every tensor made, weights and transposes alike). */
function startProbe() {
  let peakHost = 0;
  let peakRss = 0;
  let samples = 0;
  let uploads = 0;
  const trace: string[] = [];
  const mb = (x: number) => `${(x / MB).toFixed(0)}`;
  // `pending`: bytes of a tensor being written that the engine has not counted in tf.memory() yet.
  const sample = (pending: number) => {
    const m = process.memoryUsage();
    const host = Math.max(0, m.arrayBuffers - tf.memory().numBytes - pending);
    peakHost = Math.max(peakHost, host);
    peakRss = Math.max(peakRss, m.rss);
    samples++;
    return { host, rss: m.rss };
  };

  // The loader's fs is the module object itself (esbuild calls its exports through it), so patching it reaches it.
  const nodeFs = createRequire(__filename)('node:fs') as typeof fs;
  const readSync = nodeFs.readSync;
  let reads = 0;
  nodeFs.readSync = ((...a: Parameters<typeof fs.readSync>) => {
    const n = readSync(...a);
    if (n >= 64 * MB) {
      const s = sample(0);
      trace.push(`read ${++reads} (${mb(n)} MB): host ${mb(s.host)} MB, RSS ${mb(s.rss)} MB`);
    }
    return n;
  }) as typeof fs.readSync;

  const backend = tf.backend() as unknown as { write: (values: unknown, ...rest: unknown[]) => unknown };
  const write = backend.write;
  backend.write = function (this: unknown, values: unknown, ...rest: unknown[]) {
    const bytes = ArrayBuffer.isView(values) ? values.byteLength : 0;
    const s = sample(bytes);
    if (bytes >= MB && !uploads++) trace.push(`first upload: host ${mb(s.host)} MB, RSS ${mb(s.rss)} MB`);
    return write.call(this, values, ...rest);
  };

  return {
    stop() {
      nodeFs.readSync = readSync;
      backend.write = write;
      const end = sample(0);
      trace.push(`built: host ${mb(end.host)} MB, backend ${mb(tf.memory().numBytes)} MB, RSS ${mb(end.rss)} MB`);
      return { peakHost, peakRss, samples, endHost: end.host, trace };
    },
  };
}

function vmHwm(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}
