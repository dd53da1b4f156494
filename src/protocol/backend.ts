// What a run computes on, said as information: "CPU · WebAssembly SIMD, 2 threads — no GPU found", with the reasons
// (why CUDA and WebGPU did not start, thread notes) kept as details for a hover or a click. A machine without a GPU
// is not an error; the engine's raw notes (select.ts) are turned into short sentences here, for every view.
import type { RunStartEvent } from './events';

export interface BackendSummary {
  text: string; // "CPU · WebAssembly SIMD, 2 threads — no GPU found"
  gpu: boolean; // the run computes on a GPU
  details: string[]; // one short sentence per note, e.g. "CUDA: @tensorflow/tfjs-node-gpu is not installed"
}

type Start = Pick<RunStartEvent, 'backend' | 'device' | 'threads' | 'backend_notes'>;

const NAMES: Record<string, string> = { cuda: 'CUDA', webgpu: 'WebGPU', wasm: 'WebAssembly', cpu: 'CPU' };

/** The run_start's backend fields as one line and its details. */
export function backendSummary(s: Start): BackendSummary {
  const gpu = s.backend === 'tensorflow' || s.backend === 'webgpu' || (s.backend === 'torch' && /cuda/.test(s.device));
  const details = (s.backend_notes ?? []).map(noteText);
  const skippedGpu = (s.backend_notes ?? []).some((n) => /^(cuda|webgpu):/.test(n));
  const text = `${deviceText(s.device)}${!gpu && skippedGpu ? ' — no GPU found' : ''}`;
  return { text, gpu, details };
}

/** "CPU (WebAssembly SIMD, 2 threads)" → "CPU · WebAssembly SIMD, 2 threads"; other names stay as they are. */
export function deviceText(device: string): string {
  const m = /^(.*?)\s*\((.*)\)$/.exec(device.trim());
  return m && m[1] ? `${m[1]} · ${m[2]}` : device;
}

/** One engine note ("cuda: … (Cannot find module …)") as a short sentence without stack traces or require paths. */
export function noteText(note: string): string {
  const m = /^(cuda|webgpu|wasm|cpu):\s*(.*)$/s.exec(note);
  if (!m) return firstLine(note);
  const [, backend, why] = m;
  const name = NAMES[backend];
  if (backend === 'cuda' && /not installed|cannot find module|MODULE_NOT_FOUND/i.test(why))
    return `${name}: @tensorflow/tfjs-node-gpu is not installed (optional; it needs an NVIDIA GPU with CUDA)`;
  if (backend === 'webgpu' && /no WebGPU adapter/i.test(why))
    return `${name}: no GPU adapter found (no Vulkan, Metal or D3D12 driver)`;
  if (backend === 'webgpu' && /software renderer/i.test(why))
    return `${name}: only a software renderer, slower than WebAssembly`;
  return `${name}: ${firstLine(why).replace(/\s*\((?:Cannot find module|Require stack)[^)]*\)?/gi, '')}`;
}

function firstLine(s: string): string {
  return s.split('\n')[0].trim();
}
