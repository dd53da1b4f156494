// Picks the TensorFlow.js backend at run time, best first: CUDA (tfjs-node-gpu) → WebGPU (Dawn) → wasm (SIMD) → cpu.
// tfjs-node-gpu is an optional dependency whose install downloads libtensorflow; where that failed the module is
// simply absent and `auto` moves on. An explicitly requested backend that cannot start is an error that says why.
import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';
import { installWasmBatchMatMul } from './wasm-matmul';
import { startWasmBackend } from './wasm-threads';
import type { Device } from '../../protocol/merge';

type Concrete = Exclude<Device, 'auto'>;

export interface BackendInfo {
  device: Concrete; // what the run asked of us, resolved
  backend: string; // tfjs backend name: tensorflow | webgpu | wasm | cpu
  name: string; // human-readable device, e.g. "NVIDIA H100 (CUDA)", "CPU (WebAssembly SIMD, 2 threads)"
  threads: number; // CPU threads the backend computes on: wasm's thread count; 1 for the others
  skipped: string[]; // why better backends (auto only) or more wasm threads were not used
}

const ORDER: Concrete[] = ['cuda', 'webgpu', 'wasm', 'cpu'];
const nodeRequire = createRequire(__filename);

/** The backend a config's device means for our engine: `torch` runs elsewhere, so ours picks its best (auto). */
export function ourDevice(device: Device | 'torch'): Device {
  return device === 'torch' ? 'auto' : device;
}

/** Initialises and selects a backend. `auto` skips software WebGPU adapters (they are slower than wasm). */
export async function selectBackend(device: Device): Promise<BackendInfo> {
  tf.env().set('PROD', true); // no console banners from tfjs: the run_start event reports the backend
  const tried = device === 'auto' ? ORDER : [device];
  const skipped: string[] = [];
  for (const d of tried) {
    try {
      const { name, threads = 1, notes = [] } = await START[d](device === 'auto');
      return { device: d, backend: tf.getBackend(), name, threads, skipped: [...skipped, ...notes] };
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      if (device !== 'auto') {
        throw new LoraPlusError({
          code: 'backend/unavailable',
          message: `device '${d}' is not available: ${why}`,
          yamlPath: 'device',
          hint: HINTS[d],
        });
      }
      skipped.push(`${d}: ${why}`);
    }
  }
  throw new LoraPlusError({
    code: 'backend/none',
    message: `no TensorFlow.js backend could start (${skipped.join('; ')})`,
  });
}

const HINTS: Record<Concrete, string> = {
  cuda: 'Install @tensorflow/tfjs-node-gpu (needs CUDA 11.2 and cuDNN 8.1 on Linux x64), or use device: auto.',
  webgpu:
    'WebGPU needs a Vulkan, Metal or D3D12 driver (on Linux: the mesa-vulkan-drivers package), or use device: auto.',
  wasm: 'Reinstall dependencies (npm ci) so @tensorflow/tfjs-backend-wasm and its .wasm files are present.',
  cpu: 'Reinstall dependencies (npm ci).',
};

interface Started {
  name: string;
  threads?: number; // default 1
  notes?: string[]; // what the user should know about how it started
}

const START: Record<Concrete, (auto: boolean) => Promise<Started>> = {
  async cuda() {
    let gpuLib: unknown;
    try {
      gpuLib = nodeRequire('@tensorflow/tfjs-node-gpu');
    } catch (err) {
      const absent = (err as { code?: string }).code === 'MODULE_NOT_FOUND' && /tfjs-node-gpu/.test(firstLine(err));
      throw new Error(
        absent
          ? '@tensorflow/tfjs-node-gpu is not installed'
          : `@tensorflow/tfjs-node-gpu is installed but its native library failed to load (${firstLine(err)})`,
      );
    }
    if (!gpuLib || !(await tf.setBackend('tensorflow'))) throw new Error('the tensorflow backend did not initialise');
    return { name: 'CUDA GPU (tfjs-node-gpu)' };
  },

  async webgpu(auto) {
    // Dawn for Node provides navigator.gpu; the tfjs WebGPU backend looks for it on globalThis.
    const dawn = (await import('webgpu')) as unknown as { create(o: string[]): DawnGpu; globals: object };
    Object.assign(globalThis, dawn.globals);
    const gpu = dawn.create([]);
    if (!('navigator' in globalThis) || !(globalThis as { navigator?: { gpu?: unknown } }).navigator) {
      Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
    } else {
      Object.defineProperty((globalThis as unknown as { navigator: object }).navigator, 'gpu', {
        value: gpu,
        configurable: true,
      });
    }
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error('no WebGPU adapter found (no Vulkan/Metal/D3D12 driver?)');
    const info = adapter.info;
    const software = /llvmpipe|lavapipe|swiftshader|software/i.test(
      `${info.device} ${info.description} ${info.architecture}`,
    );
    if (auto && software)
      throw new Error(
        `the only WebGPU adapter is a software renderer (${info.description || info.device}), slower than wasm`,
      );
    await import('@tensorflow/tfjs-backend-webgpu');
    if (!(await tf.setBackend('webgpu'))) throw new Error('the webgpu backend did not initialise');
    const label = [info.vendor, info.description || info.device || info.architecture].filter(Boolean).join(' ');
    return { name: `${label || 'unknown adapter'} (WebGPU${software ? ', software' : ''})` };
  },

  async wasm() {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm binaries are read from the package's own dist folder.
    wasm.setWasmPaths(
      path.join(path.dirname(nodeRequire.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep,
    );
    // Threads as LORAPLUS_WASM_THREADS says, else one per core (wasm-threads.ts; stock tfjs runs one in Node).
    const { threads, notes } = await startWasmBackend(wasm);
    // Attention's batched matmuls on a SIMD kernel instead of the stock scalar loop (wasm-matmul.ts).
    if (!installWasmBatchMatMul())
      notes.push('the SIMD batched-matmul kernel could not start; attention uses the stock kernel');
    const simd = tf.env().getBool('WASM_HAS_SIMD_SUPPORT');
    return {
      name: `CPU (WebAssembly${simd ? ' SIMD' : ''}, ${threads} thread${threads === 1 ? '' : 's'})`,
      threads,
      notes,
    };
  },

  async cpu() {
    if (!(await tf.setBackend('cpu'))) throw new Error('the cpu backend did not initialise');
    return { name: 'CPU (plain JavaScript)' };
  },
};

// The few WebGPU types we touch (the full typings live in @webgpu/types).
interface DawnGpu {
  requestAdapter(): Promise<{
    info: { vendor: string; architecture: string; device: string; description: string };
  } | null>;
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split('\n')[0];
}
