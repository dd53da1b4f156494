// Paths into ../shared (the project's provided checkpoints, data and references) and small test utilities.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../src/engine/backend/select';
import type { Device } from '../../src/protocol/merge';

export const SHARED = path.resolve(__dirname, '..', '..', '..', 'shared');
export const STORIES = path.join(SHARED, 'models', 'stories260k');
export const SST2 = path.join(SHARED, 'data', 'glue-sst2');
export const REFERENCE = path.join(SHARED, 'reference');

export function readJson<T = unknown>(file: string): T {
  return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
}

const tempDirs: string[] = [];
/** A fresh folder under the OS temp dir, removed when the test process exits. */
export function tempDir(prefix = 'loraplus-test-'): string {
  if (!tempDirs.length)
    process.on('exit', () => tempDirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

/** A learning rate past the config's limits, as only code can set it: for tests of the engine's own guards. */
export function withLearningRate<T extends { training: { learning_rate: number } }>(config: T, lr: number): T {
  config.training.learning_rate = lr;
  return config;
}

let ready: Promise<unknown> | null = null;
/** Tests run on wasm (the CPU backend users get), once per process. */
export function useBackend(device: Device = 'wasm'): Promise<unknown> {
  ready ??= selectBackend(device);
  return ready;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export async function values(t: tf.Tensor): Promise<number[]> {
  return Array.from(await t.data());
}
