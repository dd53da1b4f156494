// Starts tfjs's wasm backend with threads under Node. Stock @tensorflow/tfjs-backend-wasm 4.22 always runs its
// single-threaded SIMD build in Node (tfjs issue #3830), although its multi-threaded build (pthreads, where XNNPACK
// spreads each matmul over a thread pool) works there once three things are handled:
//   1. the flag WASM_HAS_MULTITHREAD_SUPPORT is hard-coded false under Node: we set it true;
//   2. emscripten hands its pthread worker script, and the main script each worker loads, over as Blob URLs, which
//      Node's worker_threads cannot load: we record the text of those Blobs, write it to temp files, and hand the
//      workers the files instead;
//   3. the native side sizes its thread pool from os.cpus().length ÷ 2 (for hyper-threads): during init os.cpus
//      reports twice the thread count we want, so the pool gets exactly that many.
// Everything is patched only while `tf.setBackend('wasm')` runs and restored after, except globalThis.Worker (the
// class emscripten creates workers with), which stays: a pthread can need a fresh worker at any time. (The flag
// stays true too: it now describes the backend that runs.)
// With LORAPLUS_WASM_THREADS=1, or when a prerequisite is missing, none of this happens: the plain SIMD build runs.
import * as tf from '@tensorflow/tfjs';
import type { Blob as NodeBlob } from 'node:buffer';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { Worker as NodeWorker, type TransferListItem, type WorkerOptions } from 'node:worker_threads';
import { writeFileAtomic } from '../../adapters/files';

export const WASM_THREADS_ENV = 'LORAPLUS_WASM_THREADS';

/** What the wasm backend runs, and anything the user should know about why it is not what they asked. */
export interface WasmStart {
  threads: number;
  notes: string[];
}

type WasmModule = typeof import('@tensorflow/tfjs-backend-wasm');
// The one part of WebAssembly we touch (it is not in the TypeScript libs this project compiles with).
type WasmGlobals = {
  WebAssembly: { Memory: new (d: { initial: number; maximum: number; shared: boolean }) => object };
};

const nodeRequire = createRequire(__filename);
// The `os` module object itself, which the wasm bundle calls cpus() on (an `import * as` namespace is a copy).
const osModule = nodeRequire('node:os') as typeof import('node:os');

// XNNPACK's pool is capped at 8 threads, and emscripten pre-starts 8 workers for it (tfjs-backend-wasm's build).
const MAX_THREADS = 8;
// A worker that never reports back would leave init pending forever; none takes nearly this long.
const INIT_TIMEOUT_MS = 60_000;

/** LORAPLUS_WASM_THREADS (an integer ≥ 1) if set, else one thread per core the process may use, at most 8. */
export function wantedWasmThreads(env: NodeJS.ProcessEnv = process.env): WasmStart {
  const cores = Math.min(osModule.availableParallelism(), MAX_THREADS);
  const raw = env[WASM_THREADS_ENV]?.trim();
  if (!raw) return { threads: cores, notes: [] };
  const n = /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1))
    return { threads: cores, notes: [`${WASM_THREADS_ENV}=${raw} is not an integer ≥ 1; running ${plural(cores)}`] };
  if (n > MAX_THREADS)
    return {
      threads: MAX_THREADS,
      notes: [`${WASM_THREADS_ENV}=${n}: tfjs-backend-wasm runs at most ${MAX_THREADS} threads`],
    };
  return { threads: n, notes: [] };
}

let started: Promise<WasmStart> | null = null;

/**
 * Initialises (once per process: emscripten modules cannot be unloaded) and selects the wasm backend with the
 * thread count of wantedWasmThreads(). Falls back to one thread, saying why in `notes`, when threads cannot start.
 */
export async function startWasmBackend(wasm: WasmModule): Promise<WasmStart> {
  started ??= start(wasm);
  const { threads, notes } = await started;
  if (!(await tf.setBackend('wasm'))) throw new Error('the wasm backend did not initialise');
  return { threads, notes: [...notes] }; // a copy: callers add their own notes
}

async function start(wasm: WasmModule): Promise<WasmStart> {
  const { threads, notes } = wantedWasmThreads();
  if ('wasm' in tf.engine().registry) {
    // Someone initialised it before us (a tensor op picks the best registered backend): it stays as it is.
    const got = actualThreads(wasm);
    if (got !== threads) notes.push(`the wasm backend was already initialised with ${plural(got)}`);
    return { threads: got, notes };
  }
  if (threads > 1) {
    const missing = await threadsUnsupported(wasm);
    const failure = missing ?? (await startThreaded(wasm, threads));
    if (failure === null) {
      const got = actualThreads(wasm);
      if (got !== threads) notes.push(`wasm asked for ${plural(threads)} but its thread pool has ${got}`);
      return { threads: got, notes };
    }
    notes.push(
      `wasm threads: ${missing ? failure : `the threaded backend failed to start: ${failure}`}; running 1 thread`,
    );
  }
  // The single-threaded SIMD build. After a failed threaded attempt this is a fresh emscripten module.
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  wasm.setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) {
    throw new Error(`the wasm backend did not initialise${notes.length ? ` (${notes.join('; ')})` : ''}`);
  }
  return { threads: 1, notes };
}

function actualThreads(wasm: WasmModule): number {
  return Math.max(1, wasm.getThreadsCount()); // -1 means no pool: XNNPACK then runs on the calling thread
}

/** Why the threaded build cannot run here, checked before the one chance to initialise; null if it can. */
async function threadsUnsupported(wasm: WasmModule): Promise<string | null> {
  // The patches below depend on the bundle's internals (its variable names, its messages to workers).
  if (!wasm.version_wasm.startsWith('4.22.')) return `written for tfjs-backend-wasm 4.22, found ${wasm.version_wasm}`;
  if (!(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'))) return 'no WebAssembly SIMD (the threaded build needs it)';
  try {
    new (globalThis as unknown as WasmGlobals).WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  } catch {
    return 'no shared WebAssembly memory';
  }
  if (typeof URL.createObjectURL !== 'function' || typeof globalThis.Blob !== 'function')
    return 'no Blob/URL.createObjectURL';
  const worker = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  if (worker && worker.get !== workerAccessor.get) return 'globalThis.Worker is already defined by something else';
  try {
    fs.rmSync(writeScript(`// a probe from process ${process.pid}, ${Date.now()}\n`), { force: true });
  } catch (err) {
    return `cannot write the worker scripts to ${osModule.tmpdir()} (${firstLine(err)})`;
  }
  return null;
}

// ---- the patches --------------------------------------------------------------------------------------------------

const blobTexts = new WeakMap<object, string>(); // the text of each all-string Blob made during init
const blobFiles = new Map<string, string>(); // object URL → the file holding its text

/** One threaded init: the workers it made, and how it ended. */
interface Attempt {
  workers: Set<FileWorker>;
  succeeded: boolean;
  fail(why: string): void; // the first call decides the reason
}
let attempt: Attempt | null = null; // while the threaded init runs

// The pthread main script is `var WasmBackendModuleThreadedSimd = <factory>.toString()`, cut out of the rollup
// bundle tf-backend-wasm.node.js; it still refers to these variables of the bundle, which a worker lacks.
const BUNDLE_VARS: Record<string, string> = {
  require$$0: "require('fs')",
  require$$1: "require('path')",
  require$$3: "require('perf_hooks')",
  require$$4: "require('os')",
  commonjsGlobal: 'globalThis',
};

/** The main script as a file a worker's importScripts (fs.readFileSync + eval) can load. */
function mainScriptFile(text: string): string {
  const unknown = [...new Set(text.match(/\brequire\$\$\d+/g) ?? [])].filter((v) => !(v in BUNDLE_VARS));
  if (unknown.length)
    throw new Error(`the wasm bundle's worker script uses ${unknown.join(', ')}, which this patch does not know`);
  const prelude = `var ${Object.entries(BUNDLE_VARS)
    .map(([k, v]) => `${k} = ${v}`)
    .join(', ')};\n`;
  return writeScript(prelude + text);
}

/** Writes a script to os.tmpdir() under a name made from its content, atomically (processes share the files). */
function writeScript(text: string): string {
  const hash = crypto.createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = path.join(osModule.tmpdir(), `tfjs-wasm-${hash}.js`);
  if (!fs.existsSync(file)) writeFileAtomic(file, text);
  return file;
}

/** Node's Worker, loading blob: URLs from the files written for them. */
class FileWorker extends NodeWorker {
  private emscriptenOnError: ((e: unknown) => void) | null = null;
  private readonly owner = attempt; // the init that made it; null for a worker made after init

  constructor(url: string | URL, options?: WorkerOptions) {
    super(blobFiles.get(String(url)) ?? url, options);
    this.unref();
    this.owner?.workers.add(this);
  }

  // emscripten refs a worker while it runs a pthread; XNNPACK's pool threads live as long as the process, so a
  // finished CLI would never exit. The main thread waits for pool work itself; a ref adds nothing.
  override ref(): void {}

  override postMessage(value: unknown, transferList?: readonly TransferListItem[]): void {
    // {cmd: 'load', urlOrBlob}: the worker imports the main script from urlOrBlob; Node needs a path.
    const msg = value as { cmd?: unknown; urlOrBlob?: unknown } | null;
    const text =
      msg?.cmd === 'load' && typeof msg.urlOrBlob === 'object' && msg.urlOrBlob
        ? blobTexts.get(msg.urlOrBlob)
        : undefined;
    super.postMessage(
      text === undefined ? value : { ...msg, urlOrBlob: failsInit(() => mainScriptFile(text)) },
      transferList,
    );
  }

  // emscripten's error handler rethrows, which would end the process: a worker of an init that has not
  // succeeded fails that init instead (the single-threaded build then runs). After init the handler is emscripten's.
  get onerror(): (e: unknown) => void {
    return (e) => {
      if (this.owner && !this.owner.succeeded) this.owner.fail(`a worker failed: ${firstLine(e)}`);
      else this.emscriptenOnError?.(e);
    };
  }
  set onerror(handler: (e: unknown) => void) {
    this.emscriptenOnError = handler;
  }
}

// emscripten runs `global.Worker = require('worker_threads').Worker` during init: the setter ignores that.
const workerAccessor = { get: (): typeof FileWorker => FileWorker, set: (): void => {} };

/** The threaded init with all patches in place; null on success, else why it failed. */
async function startThreaded(wasm: WasmModule, threads: number): Promise<string | null> {
  const RealBlob = globalThis.Blob;
  class RecordingBlob extends RealBlob {
    constructor(parts: ConstructorParameters<typeof NodeBlob>[0], options?: ConstructorParameters<typeof NodeBlob>[1]) {
      super(parts, options);
      const list = [...parts];
      if (list.every((p) => typeof p === 'string')) blobTexts.set(this, list.join(''));
    }
  }
  const realCreateObjectURL = URL.createObjectURL;
  const realCpus = osModule.cpus;

  globalThis.Blob = RecordingBlob;
  URL.createObjectURL = (blob: NodeBlob): string => {
    const url = realCreateObjectURL(blob);
    const text = blobTexts.get(blob);
    if (text !== undefined)
      blobFiles.set(
        url,
        failsInit(() => writeScript(text)),
      );
    return url;
  };
  osModule.cpus = () => {
    const cpus = realCpus();
    const any = cpus[0] ?? { model: 'unknown', speed: 0, times: { user: 0, nice: 0, sys: 0, idle: 0, irq: 0 } };
    return Array.from({ length: 2 * threads }, (_, i) => cpus[i] ?? any);
  };
  const previousWorker = Object.getOwnPropertyDescriptor(globalThis, 'Worker');
  Object.defineProperty(globalThis, 'Worker', { ...workerAccessor, configurable: true });

  let timer: NodeJS.Timeout | undefined;
  const current: Attempt = { workers: new Set(), succeeded: false, fail: () => {} };
  const failed = new Promise<string>((resolve) => {
    current.fail = resolve;
    timer = setTimeout(() => resolve(`no answer from its workers in ${INIT_TIMEOUT_MS / 1000} s`), INIT_TIMEOUT_MS);
    timer.unref();
  });
  attempt = current;
  try {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
    wasm.setThreadsCount(threads);
    // tfjs turns an init error into `false` (and, with PROD set, logs nothing): failsInit has the reason first.
    const ok = tf.setBackend('wasm').then((done) => (done ? null : 'tf.setBackend returned false'));
    const failure = await Promise.race([failed, ok]);
    current.succeeded = failure === null;
    if (failure !== null) {
      // A failed module is abandoned (tfjs ignores its late result, if any): its workers and Worker class go.
      for (const w of current.workers) void w.terminate();
      if (previousWorker) Object.defineProperty(globalThis, 'Worker', previousWorker);
      else delete (globalThis as { Worker?: unknown }).Worker;
    }
    return failure;
  } finally {
    clearTimeout(timer);
    attempt = null;
    globalThis.Blob = RealBlob;
    URL.createObjectURL = realCreateObjectURL;
    osModule.cpus = realCpus;
  }
}

/** Runs f; an error it throws during the threaded init also fails that init, with its message as the reason. */
function failsInit<R>(f: () => R): R {
  try {
    return f();
  } catch (err) {
    attempt?.fail(firstLine(err));
    throw err;
  }
}

function plural(n: number): string {
  return `${n} thread${n === 1 ? '' : 's'}`;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
