// The wasm backend with threads (src/engine/backend/wasm-threads.ts): a child process with LORAPLUS_WASM_THREADS=2 runs the
// same small computation as this process on one thread; the numbers must agree, and the child must exit by itself
// (XNNPACK's pool threads are workers that would otherwise keep a finished process alive).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { WASM_THREADS_ENV, wantedWasmThreads } from '../../../src/engine/backend/wasm-threads';
import { runWorkload, type Workload } from '../../helpers/wasm-workload';

const SCRIPT = path.join(__dirname, '..', '..', 'helpers', 'wasm-workload.ts');
const EXIT_WITHIN_MS = 5000; // after its result is out, the child has nothing left to do

interface Child {
  result: Workload;
  code: number | null;
  exitAfterMs: number; // from the result line to the exit
}

function runChild(threads: number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, [WASM_THREADS_ENV]: String(threads) };
    const child = spawn(process.execPath, ['--import', 'tsx', SCRIPT], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let resultAt = 0;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = (why: string) => {
      child.kill('SIGKILL');
      reject(new Error(`${why}\n${err.slice(-2000)}`));
    };
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (!resultAt && out.includes('\n')) {
        resultAt = performance.now();
        timer = setTimeout(
          () => giveUp(`the child did not exit within ${EXIT_WITHIN_MS} ms of finishing its work (hanging workers?)`),
          EXIT_WITHIN_MS,
        );
      }
    });
    child.stderr.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-20000)));
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!resultAt) return reject(new Error(`the child exited (${code}) without a result\n${err.slice(-2000)}`));
      resolve({ result: JSON.parse(out.split('\n')[0]) as Workload, code, exitAfterMs: performance.now() - resultAt });
    });
  });
}

/** Largest |a - b| over an array, relative to its largest |b|. */
function relDiff(a: number[], b: number[]): number {
  assert.equal(a.length, b.length);
  const scale = Math.max(...b.map(Math.abs), 1e-30);
  return Math.max(...a.map((v, i) => Math.abs(v - b[i]))) / scale;
}

describe('wasm backend threads', () => {
  it('LORAPLUS_WASM_THREADS picks the thread count (1 = the plain single-threaded build); bad values say so', () => {
    assert.deepEqual(wantedWasmThreads({ [WASM_THREADS_ENV]: '3' }), { threads: 3, notes: [] });
    assert.deepEqual(wantedWasmThreads({ [WASM_THREADS_ENV]: '1' }), { threads: 1, notes: [] });
    assert.equal(wantedWasmThreads({ [WASM_THREADS_ENV]: '12' }).threads, 8);
    const bad = wantedWasmThreads({ [WASM_THREADS_ENV]: '0' });
    assert.match(bad.notes[0], /LORAPLUS_WASM_THREADS=0 is not an integer ≥ 1/);
    assert.ok(wantedWasmThreads({}).threads >= 1);
  });

  it(
    '2 threads in a child give the numbers of 1 thread here, and the child exits by itself',
    { timeout: 60_000 },
    async () => {
      const child = runChild(2); // started first: it runs while this process computes
      child.catch(() => {}); // (awaited below; this only keeps an early failure from counting as unhandled)
      process.env[WASM_THREADS_ENV] = '1';
      const here = await runWorkload();
      const { result: there, code, exitAfterMs } = await child;
      assert.equal(code, 0);
      assert.ok(exitAfterMs < EXIT_WITHIN_MS, `${exitAfterMs} ms`);
      assert.equal(here.threads, 1, here.name);
      assert.equal(there.threads, 2, there.name);
      assert.match(there.name, /WebAssembly SIMD, 2 threads/);
      assert.equal(there.batchedKernel, here.batchedKernel);
      assert.deepEqual(Object.keys(there.values), Object.keys(here.values));
      for (const [name, v] of Object.entries(here.values)) {
        const d = relDiff(there.values[name], v);
        assert.ok(d <= 1e-6, `${name}: relative difference ${d}`);
      }
    },
  );
});
