// Workspaces for the end-to-end tests: small, real training configs (stories260k on SST-2 sentences, a dozen steps)
// and runs trained beforehand with the CLI, read back from disk to check what the UI shows.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { EngineEvent, RunStartEvent, StepEvent } from '../../src/protocol/events';
import { SST2, STORIES, tempDir } from '../helpers/shared';

const ROOT = path.resolve(__dirname, '..', '..');

export interface TinyConfig {
  runName: string;
  loraplusKey?: string; // the key the ratio is written under: a typo here makes the config-editor test's file
  ratio?: number;
  maxSteps?: number;
}

/** A causal-LM config that trains in a few seconds on wasm: 12 steps of batch 4 × 32 tokens, eval and save every 6. */
export function tinyConfig({
  runName,
  loraplusKey = 'loraplus_lr_ratio',
  ratio = 16,
  maxSteps = 12,
}: TinyConfig): string {
  return `# LoRA+ Studio end-to-end test config
model: ${STORIES}
task: causal-lm
device: wasm
run_name: ${runName}
data:
  train: ${path.join(SST2, 'train.tsv')}
  eval: ${path.join(SST2, 'dev.tsv')}
  text_field: sentence
  max_length: 32
  max_train_samples: 256
  max_eval_samples: 64
lora:
  r: 4
  lora_alpha: 8
training:
  learning_rate: 5.0e-4
  ${loraplusKey}: ${ratio}
  batch_size: 4
  max_steps: ${maxSteps}
  eval_every: 6
  save_every: 6
  log_every: 1
`;
}

/** A fresh workspace folder holding these files (name → text). */
export function makeWorkspace(prefix: string, files: Record<string, string>): string {
  const dir = tempDir(`loraplus-e2e-ws-${prefix}-`);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}

/** Trains a config with the built CLI (dist/cli.js), as a user would in a terminal; rejects with its output if it fails. */
export async function trainWithCli(configFile: string): Promise<void> {
  const env = { ...process.env, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' };
  try {
    await promisify(execFile)(process.execPath, [path.join(ROOT, 'dist', 'cli.js'), 'train', configFile], {
      env,
      timeout: 180_000,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`loraplus train ${configFile} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/** The events of a run folder's metrics.jsonl. */
export function readEvents(runDir: string): EngineEvent[] {
  return fs
    .readFileSync(path.join(runDir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EngineEvent);
}

export function runStart(events: EngineEvent[]): RunStartEvent {
  const e = events.find((x): x is RunStartEvent => x.type === 'run_start');
  if (!e) throw new Error('no run_start event in metrics.jsonl');
  return e;
}

export function steps(events: EngineEvent[]): StepEvent[] {
  return events.filter((x): x is StepEvent => x.type === 'step');
}
