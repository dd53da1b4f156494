// What each backend can hold, as far as the checks room (no TF.js) can know it before a run: the memory a run may use
// and the largest single tensor, and which backend `device: auto` would pick on this machine. memory.ts weighs a
// config's estimate against these. The wasm figures were measured on tfjs-backend-wasm 4.22 (bench/memory.ts).
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import type { Device } from '../../protocol/merge';

export type Backend = Exclude<Device, 'auto'>;

/** wasm32's heap: 4 GiB less one 64 KiB page (emscripten's getHeapMax in the tfjs-backend-wasm builds). */
export const WASM_HEAP = 2 ** 32 - 2 ** 16;
/**
 * What the wasm runtime itself takes of that heap: its static data and stack live in the 16 MiB it starts with;
 * after selectBackend (1, 2 or 8 threads) all but 1 MiB of the rest could be allocated.
 */
export const WASM_RUNTIME = 16 * 2 ** 20;
/**
 * Numbers in one float32 tensor on wasm: a tensor is one malloc, which grows the heap with one sbrk call whose
 * increment is a signed 32-bit number, so 2 GiB at most (2^29 − 2^20 numbers allocate, 2^29 + 2^20 fail).
 */
export const WASM_TENSOR = 2 ** 29;
/** Numbers in one Float32Array in Node 20 (the cpu backend's tensors). */
export const JS_TENSOR = 2 ** 32 - 1;
/** WebGPU's largest buffer is at most 4 GiB on any adapter (maxBufferSize), often less; CUDA's tensors are bounded
 *  by device memory, which is not known here either. */
export const GPU_TENSOR = 2 ** 30;
/** A GPU run that needs more than this gets a warning: 8 GB is what many GPUs have, and theirs is not known here. */
export const GPU_WARN = 8e9;
/** What Node, tfjs and the engine take besides the tensors (a run's RSS before loading the model: about 180 MB). */
export const PROCESS_BYTES = 200e6;

export interface Limit {
  backend: Backend;
  /** Bytes a run may use on this backend; null where it is not known before the run (GPUs). */
  bytes: number | null;
  /** cpu: the memory free right now (a run above it will swap or be killed, but it may fit later). */
  free: number | null;
  /** Numbers in one tensor. */
  tensor: number;
  /** Past the limit is an error (it cannot run) rather than a warning (it may not run). */
  hard: boolean;
  /** The limit in words: `the wasm backend's 4 GiB heap`. */
  what: string;
  /** Why this backend, for device: auto: `device: auto uses wasm here, with no GPU found`. */
  auto: string | null;
}

/** The limit of `device` (auto: of the backend auto picks on this machine). */
export function backendLimit(device: Device): Limit {
  const picked = device === 'auto' ? autoBackend() : null;
  const backend = picked?.backend ?? (device as Backend);
  const auto = picked ? `device: auto uses ${backend} here, ${picked.why}` : null;
  switch (backend) {
    case 'wasm':
      return {
        backend,
        bytes: WASM_HEAP - WASM_RUNTIME,
        free: null,
        tensor: WASM_TENSOR,
        hard: true,
        what: "the wasm backend's 4 GiB heap",
        auto,
      };
    case 'cpu': {
      const total = machineMemory();
      const what = "this machine's memory";
      return { backend, bytes: total, free: os.freemem(), tensor: JS_TENSOR, hard: true, what, auto };
    }
    default:
      return {
        backend,
        bytes: null,
        free: null,
        tensor: GPU_TENSOR,
        hard: false,
        what: backend === 'cuda' ? "the GPU's memory (not known before the run)" : "the WebGPU adapter's memory",
        auto,
      };
  }
}

/** This machine's memory, or the container's limit (cgroup) when that is lower. */
export function machineMemory(): number {
  const total = os.totalmem();
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.() ?? 0;
  return constrained > 0 && constrained < total ? constrained : total;
}

let autoCache: { backend: Backend; why: string } | null = null;

/**
 * The backend `auto` would start here (select.ts: cuda → webgpu → wasm), judged without starting one: CUDA where
 * tfjs-node-gpu is installed and an NVIDIA driver is loaded; WebGPU where a hardware adapter is likely (macOS Metal,
 * Windows D3D12, a Linux render node with a Vulkan driver), since auto skips software adapters; else wasm, which is
 * also the cautious answer when a GPU backend could still fail to start.
 */
export function autoBackend(): { backend: Backend; why: string } {
  if (autoCache) return autoCache;
  const nvidia = exists('/dev/nvidiactl') || exists('/proc/driver/nvidia/version');
  if (nvidia && resolves('@tensorflow/tfjs-node-gpu'))
    autoCache = { backend: 'cuda', why: 'as tfjs-node-gpu and an NVIDIA driver are installed' };
  else if (resolves('webgpu') && hardwareGpu()) autoCache = { backend: 'webgpu', why: 'as a GPU is likely there' };
  else autoCache = { backend: 'wasm', why: 'with no GPU found' };
  return autoCache;
}

const nodeRequire = createRequire(__filename);

function resolves(pkg: string): boolean {
  try {
    nodeRequire.resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

function exists(p: string): boolean {
  try {
    fs.accessSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Mesa installs its Vulkan drivers (and lavapipe, a software one) everywhere: a render node says a GPU is there. */
function hardwareGpu(): boolean {
  if (process.platform === 'darwin' || process.platform === 'win32') return true;
  try {
    return fs.readdirSync('/dev/dri').some((f) => f.startsWith('renderD')) || exists('/dev/nvidiactl');
  } catch {
    return exists('/dev/nvidiactl');
  }
}
