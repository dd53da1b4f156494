// How far a run is, one way everywhere: the duration format, the phase (evaluating n/N), and an ETA that counts the
// evals still to come at their measured duration.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backendSummary, deviceText, noteText } from '../../src/protocol/backend';
import type { EngineEvent, RunStartEvent } from '../../src/protocol/events';
import { evalsAfter, formatDuration, phaseText, RunTiming } from '../../src/protocol/progress';

const start = (over: Partial<RunStartEvent> = {}): RunStartEvent =>
  ({
    type: 'run_start',
    total_steps: 100,
    start_step: 0,
    eval_examples: 64,
    eval_every: 50,
    backend: 'wasm',
    device: 'CPU (WebAssembly SIMD, 2 threads)',
    threads: 2,
    backend_notes: [],
    ...over,
  }) as RunStartEvent;

const step = (n: number, elapsed: number): EngineEvent =>
  ({ type: 'step', step: n, elapsed_s: elapsed, loss: 1, lr: {}, modules: [] }) as unknown as EngineEvent;

describe('progress', () => {
  it('formats every duration one way', () => {
    assert.deepEqual([0.04, 12.34, 59.96, 60, 200, 3599, 3720, 90061].map(formatDuration), [
      '0.0s',
      '12.3s',
      '1m 00s',
      '1m 00s',
      '3m 20s',
      '59m 59s',
      '1h 02m',
      '25h 01m',
    ]);
    assert.deepEqual([null, undefined, -1, NaN, Infinity].map(formatDuration), ['–', '–', '–', '?', '?']);
  });

  it('counts the evals after a step: each multiple of eval_every below the total, and the final one', () => {
    assert.equal(evalsAfter(0, 100, 50), 2); // at 50, and the final at 100
    assert.equal(evalsAfter(50, 100, 50), 1);
    assert.equal(evalsAfter(99, 100, 50), 1);
    assert.equal(evalsAfter(100, 100, 50), 0);
    assert.equal(evalsAfter(10, 100, 0), 1);
    assert.equal(evalsAfter(0, 100, 30), 4); // 30, 60, 90, final
  });

  it('follows the phase and puts the evals still to come in the ETA', () => {
    const t = new RunTiming();
    t.fold(start());
    assert.deepEqual(t.phase, { kind: 'starting' });
    assert.equal(t.eta(), null, 'no pace before a step');
    t.fold({ type: 'eval_progress', step: 0, done: 0, total: 64, elapsed_s: 0 });
    t.fold({ type: 'eval_progress', step: 0, done: 32, total: 64, elapsed_s: 5 });
    assert.equal(phaseText(t.phase), 'evaluating 32/64');
    t.fold({ type: 'eval', step: 0, loss: 1, examples: 64, elapsed_s: 10 }); // a 10 s baseline eval
    t.fold(step(10, 30)); // 10 steps in 20 s of training: 2 s a step
    assert.deepEqual(t.phase, { kind: 'training' });
    // 90 steps × 2 s + 2 evals (at 50 and the final) × 10 s
    assert.equal(t.eta(), 90 * 2 + 2 * 10);
    t.fold(step(50, 110));
    t.fold({ type: 'eval_progress', step: 50, done: 0, total: 64, elapsed_s: 110 });
    t.fold({ type: 'eval_progress', step: 50, done: 16, total: 64, elapsed_s: 114 });
    // 50 steps × 2 s, the final eval (10 s), and 6 s left of this one
    assert.equal(t.eta(), 50 * 2 + 10 + 6);
    t.fold({ type: 'end', status: 'finished', step: 100, elapsed_s: 300, final_adapter: null, last_checkpoint: null });
    assert.equal(t.eta(), 0);
  });

  it('a resumed run takes its pace from its own first step on', () => {
    const t = new RunTiming();
    t.fold(start({ start_step: 40, eval_examples: 0 }));
    t.fold(step(41, 500)); // the clock carries the earlier session's time
    assert.equal(t.eta(), null);
    t.fold(step(45, 508));
    assert.equal(t.eta(), 55 * 2);
  });

  it('says the backend as information, the reasons as short details', () => {
    assert.equal(deviceText('CPU (WebAssembly SIMD, 2 threads)'), 'CPU · WebAssembly SIMD, 2 threads');
    const notes = [
      "cuda: @tensorflow/tfjs-node-gpu is not installed or its native library failed to load (Cannot find module '@tensorflow/tfjs-node-gpu'\nRequire stack:\n- /x/select.js)",
      'webgpu: no WebGPU adapter found (no Vulkan/Metal/D3D12 driver?)',
      'LORAPLUS_WASM_THREADS=1: 1 thread',
    ];
    const b = backendSummary(start({ backend_notes: notes }));
    assert.equal(b.text, 'CPU · WebAssembly SIMD, 2 threads — no GPU found');
    assert.equal(b.gpu, false);
    assert.equal(b.details.length, 3);
    assert.match(b.details[0], /^CUDA: @tensorflow\/tfjs-node-gpu is not installed/);
    assert.match(b.details[1], /^WebGPU: no GPU adapter found/);
    for (const d of b.details) assert.doesNotMatch(d, /Cannot find module|Require stack|\n/);
    const gpu = backendSummary(
      start({ backend: 'webgpu', device: 'NVIDIA RTX 4090 (WebGPU)', backend_notes: [notes[0]] }),
    );
    assert.equal(gpu.text, 'NVIDIA RTX 4090 · WebGPU');
    assert.equal(gpu.gpu, true);
    assert.equal(
      backendSummary(start()).text,
      'CPU · WebAssembly SIMD, 2 threads',
      'device: wasm asked: nothing skipped',
    );
    const torch = backendSummary(
      start({ backend: 'torch', device: 'PyTorch (2 × cuda, MULTI_GPU)', backend_notes: [] }),
    );
    assert.deepEqual([torch.text, torch.gpu], ['PyTorch · 2 × cuda, MULTI_GPU', true]);
    assert.equal(backendSummary(start({ backend: 'torch', device: 'PyTorch (1 × cpu)' })).gpu, false);
    assert.match(
      noteText('webgpu: the only WebGPU adapter is a software renderer (llvmpipe), slower than wasm'),
      /software/,
    );
  });
});
