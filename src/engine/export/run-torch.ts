// `loraplus train CONFIG --engine torch`: the run as an exported job (job.ts) in `<run>/job/`, run here by the
// user's Python through accelerate, its events (train.py prints each one as a JSON line) streamed to `onEvent` as
// our own engine's are. The job writes the run folder itself, so the run reads like any other.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent, EventSink } from '../../protocol/events';
import { runName } from '../runs/names';
import { exportJob } from './job';

export interface TorchOptions {
  runDir?: string;
  resume?: boolean;
  configFile?: string;
  python?: string; // default: LORAPLUS_PYTHON, else python3
}

const STACK = ['torch', 'transformers', 'peft', 'accelerate'];

/** Runs the job to its end; resolves with train.py's exit status (0: finished). */
export async function trainTorch(
  config: TrainConfig,
  onEvent: EventSink,
  signal?: AbortSignal,
  o: TorchOptions = {},
): Promise<number> {
  const python = o.python ?? process.env.LORAPLUS_PYTHON ?? 'python3';
  requireStack(python);
  const runDir = path.resolve(o.runDir ?? path.join(config.output_dir, runName(config, o.configFile)));
  const job = path.join(runDir, 'job');
  if (!o.resume) exportJob(config, { out: job, runDir, configFile: o.configFile });
  else if (!fs.existsSync(path.join(job, 'train.py'))) throw notAJob(runDir);
  const args = ['--num_processes', '1', '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no'];
  const env = {
    ...process.env,
    PATH: `${path.dirname(python)}${path.delimiter}${process.env.PATH}`,
    JOB_ARGS: `--run-dir ${runDir}${o.resume ? ' --resume' : ''}`,
  };
  const child = spawn('bash', [path.join(job, 'launch.sh'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  signal?.addEventListener('abort', () => child.kill('SIGTERM'), { once: true });
  const log: string[] = []; // the last lines of stderr, for an error before train.py could report one
  child.stderr.on('data', (b: Buffer) => log.push(...b.toString().split('\n')) && log.splice(0, log.length - 40));
  let rest = '';
  child.stdout.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) if (line.startsWith('{"type"')) onEvent(JSON.parse(line) as EngineEvent);
  });
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  if (code !== 0 && !signal?.aborted && !fs.existsSync(path.join(runDir, 'metrics.jsonl'))) {
    throw new LoraPlusError({ code: 'torch/failed', message: `the job failed:\n${log.join('\n')}`, file: job });
  }
  return code;
}

/** A Python that cannot import the stack: say what to install, once, before anything is written. */
function requireStack(python: string): void {
  const r = spawnSync(python, ['-c', STACK.map((m) => `import ${m}`).join('; ')], { encoding: 'utf8' });
  if (r.status === 0) return;
  throw new LoraPlusError({
    code: 'torch/no-python-stack',
    message: `${python} cannot import ${STACK.join(', ')}${r.error ? ` (${r.error.message})` : ''}`,
    hint:
      'pip install torch transformers peft accelerate safetensors (tested: torch 2.13.0, transformers 5.18.0, ' +
      'peft 0.21.0, accelerate 1.15.0), or point LORAPLUS_PYTHON at a Python that has them.',
  });
}

function notAJob(runDir: string): LoraPlusError {
  return new LoraPlusError({
    code: 'torch/not-a-job',
    message: `${runDir} was not trained with --engine torch (it has no job/train.py)`,
    file: runDir,
    hint: 'Resume it without --engine torch, or start a new run.',
  });
}
