// Checkpoints: `checkpoints/step-N/` holds the PEFT adapter, the optimizer's moments and the trainer state, enough
// to resume exactly. Each is written into a temporary folder and renamed into place, so a crash mid-write never
// leaves a half checkpoint where resume would find it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeDirAtomic, writeJsonAtomic } from '../../adapters/files';
import { loadAdapter, saveAdapter, type Adapter } from '../../adapters/peft';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';

export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';

export interface TrainerState {
  step: number; // optimizer steps done
  micro_step: number; // micro-batches consumed (step · gradient_accumulation_steps)
  total_steps: number;
  optimizer_t: number; // Adam's step counter
  tokens_seen: number;
  elapsed_s: number;
  best_eval: { step: number; loss: number; accuracy?: number; perplexity?: number } | null;
}

export interface Checkpoint {
  dir: string;
  step: number;
}

export function saveCheckpoint(
  runDir: string,
  adapter: Adapter,
  optimizer: Map<string, HostTensor>,
  state: TrainerState,
): Checkpoint {
  const dir = path.join(runDir, 'checkpoints', `step-${state.step}`);
  writeDirAtomic(dir, (tmp) => {
    saveAdapter(tmp, adapter);
    writeSafetensors(path.join(tmp, OPTIMIZER_FILE), optimizer);
    writeJsonAtomic(path.join(tmp, TRAINER_STATE_FILE), state); // last: its presence marks a complete checkpoint
  });
  return { dir, step: state.step };
}

/** Complete checkpoints of a run, oldest first. */
export function listCheckpoints(runDir: string): Checkpoint[] {
  const root = path.join(runDir, 'checkpoints');
  if (!fs.existsSync(root)) return [];
  return fs
    .readdirSync(root)
    .map((name) => ({ name, m: /^step-(\d+)$/.exec(name) }))
    .filter(({ name, m }) => m && fs.existsSync(path.join(root, name, TRAINER_STATE_FILE)))
    .map(({ name, m }) => ({ dir: path.join(root, name), step: Number(m![1]) }))
    .sort((a, b) => a.step - b.step);
}

export function loadCheckpoint(dir: string): {
  adapter: Adapter;
  optimizer: Map<string, HostTensor>;
  state: TrainerState;
} {
  const stateFile = path.join(dir, TRAINER_STATE_FILE);
  if (!fs.existsSync(stateFile)) {
    throw new LoraPlusError({
      code: 'checkpoint/incomplete',
      message: `${dir} is not a complete checkpoint (no ${TRAINER_STATE_FILE})`,
      file: dir,
      hint: 'Resume from another checkpoint, or start a new run.',
    });
  }
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8')) as TrainerState;
  return { adapter: loadAdapter(dir), optimizer: readSafetensors(path.join(dir, OPTIMIZER_FILE)).tensors, state };
}

/** Keeps the newest `limit` checkpoints (0 keeps all), never deleting `keep` (e.g. the best one). */
export function pruneCheckpoints(runDir: string, limit: number, keep: string | null): void {
  if (limit <= 0) return;
  const all = listCheckpoints(runDir);
  const excess = all.slice(0, Math.max(0, all.length - limit)).filter((c) => c.dir !== keep);
  for (const c of excess) fs.rmSync(c.dir, { recursive: true, force: true });
}
