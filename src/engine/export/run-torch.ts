// `device: torch` (or `loraplus train CONFIG --engine torch`): the run as an exported job (job.ts) in `<run>/job/`,
// run here by the user's Python through accelerate, its events (train.py prints each one as a JSON line) streamed
// to `onEvent` as our own engine's are. The job writes the run folder itself, so the run reads like any other;
// train() hands a torch config to trainTorch, so every caller (CLI, engine process, tests) starts it the same way.
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError, type ErrorInfo } from '../../protocol/errors';
import type { EndEvent, EngineEvent, EventSink } from '../../protocol/events';
import { findRunToResume } from '../runs/writer';
import { runName } from '../runs/names';
import type { TrainOptions, TrainResult } from '../train/train';
import { exportJob } from './job';

const STACK = ['torch', 'transformers', 'peft', 'accelerate'];
/** The oldest versions with what train.py calls (PEFT's LoRA optimizers, accelerate's FSDP 2 configs). */
const OLDEST: Record<string, string> = { torch: '2.4', transformers: '4.46', peft: '0.21', accelerate: '1.6' };

/** Runs the job to its end: finished or stopped (with a checkpoint); a failed job throws after its error event. */
export async function trainTorch(
  config: TrainConfig,
  onEvent: EventSink,
  signal?: AbortSignal,
  o: TrainOptions = {},
): Promise<TrainResult> {
  const python = o.python ?? process.env.LORAPLUS_PYTHON ?? 'python3';
  requireStack(python);
  const runDir = o.resume
    ? findRunToResume(config, o.runDir)
    : path.resolve(o.runDir ?? path.join(config.output_dir, runName(config, o.configFile)));
  const job = path.join(runDir, 'job');
  if (!o.resume) await exportJob(config, { out: job, runDir, configFile: o.configFile });
  else if (!fs.existsSync(path.join(job, 'train.py'))) throw notAJob(runDir);
  const args = ['--num_processes', '1', '--num_machines', '1', '--mixed_precision', 'no', '--dynamo_backend', 'no'];
  const env = {
    ...process.env,
    PATH: `${path.dirname(python)}${path.delimiter}${process.env.PATH}`,
    JOB_ARGS: `--run-dir ${runDir}${o.resume ? ' --resume' : ''}`,
  };
  // Its own process group: a stop reaches train.py itself (which checkpoints), not only launch.sh's shell.
  const child = spawn('bash', [path.join(job, 'launch.sh'), ...args], {
    env,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stop = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGTERM');
    } catch {
      // the job ended already
    }
  };
  signal?.addEventListener('abort', stop, { once: true });
  if (signal?.aborted) stop(); // stopped while the job was being written
  const log: string[] = []; // the last lines of stderr, for an error before train.py could report one
  child.stderr.on('data', (b: Buffer) => log.push(...b.toString().split('\n')) && log.splice(0, log.length - 40));
  const seen = followEvents(child.stdout, onEvent);
  const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? 1)));
  signal?.removeEventListener('abort', stop);
  const { end, error, evals } = seen;
  if (end && (end.status === 'finished' || end.status === 'stopped')) {
    const status = end.status;
    return {
      status,
      runDir,
      step: end.step,
      finalAdapter: end.final_adapter,
      lastCheckpoint: end.last_checkpoint,
      evals,
    };
  }
  if (!end && signal?.aborted) {
    return { status: 'stopped', runDir, step: 0, finalAdapter: null, lastCheckpoint: null, evals };
  }
  throw new LoraPlusError(
    error ?? { code: 'torch/failed', message: `the job failed (exit ${code}):\n${log.join('\n')}`, file: job },
  );
}

/** Streams train.py's JSON event lines to onEvent and keeps what the result needs. */
function followEvents(stdout: NodeJS.ReadableStream, onEvent: EventSink) {
  const seen: { end: EndEvent | null; error: ErrorInfo | null; evals: TrainResult['evals'] } = {
    end: null,
    error: null,
    evals: [],
  };
  let rest = '';
  stdout.on('data', (b: Buffer) => {
    const lines = (rest + b.toString()).split('\n');
    rest = lines.pop()!;
    for (const line of lines) {
      if (!line.startsWith('{"type"')) continue;
      const e = JSON.parse(line) as EngineEvent;
      if (e.type === 'end') seen.end = e;
      else if (e.type === 'error') seen.error = e.error;
      else if (e.type === 'eval') {
        const { type: _, step, elapsed_s: __, ...result } = e;
        seen.evals.push({ step, result });
      }
      onEvent(e);
    }
  });
  return seen;
}

/** A Python that cannot import the stack, or has too old a version of it: say what to install, before any writing. */
function requireStack(python: string): void {
  const script = `import importlib\nfor m in ${JSON.stringify(STACK)}:\n    print(m, importlib.import_module(m).__version__)`;
  const r = spawnSync(python, ['-c', script], { encoding: 'utf8' });
  const install =
    'pip install torch transformers peft accelerate safetensors (tested: torch 2.13.0, transformers 5.18.0, ' +
    'peft 0.21.0, accelerate 1.15.0), or choose a Python that has them (VS Code: "Python: Select Interpreter"; ' +
    'the CLI: LORAPLUS_PYTHON).';
  if (r.status !== 0) {
    const why = r.error ? r.error.message : (r.stderr.trim().split('\n').pop() ?? '');
    throw new LoraPlusError({
      code: 'torch/no-python-stack',
      message: `${python} cannot import ${STACK.join(', ')} (${why})`,
      hint: install,
    });
  }
  const old = r.stdout
    .trim()
    .split('\n')
    .map((l) => l.split(' '))
    .filter(([m, v]) => OLDEST[m] && olderThan(v, OLDEST[m]))
    .map(([m, v]) => `${m} ${v} (needs ≥ ${OLDEST[m]})`);
  if (old.length) {
    throw new LoraPlusError({
      code: 'torch/old-python-stack',
      message: `${python} has too old ${old.join(', ')}`,
      hint: `pip install -U ${old.map((x) => x.split(' ')[0]).join(' ')}; ${install}`,
    });
  }
}

/** '2.3.1+cu121' < '2.4'? Compares the leading numbers only. */
export function olderThan(version: string, oldest: string): boolean {
  const nums = (v: string) => (/^[\d.]+/.exec(v)?.[0] ?? '0').split('.').filter(Boolean).map(Number);
  const [a, b] = [nums(version), nums(oldest)];
  for (let i = 0; i < b.length; i++) if ((a[i] ?? 0) !== b[i]) return (a[i] ?? 0) < b[i];
  return false;
}

function notAJob(runDir: string): LoraPlusError {
  return new LoraPlusError({
    code: 'torch/not-a-job',
    message: `${runDir} was not trained with device: torch (it has no job/train.py)`,
    file: runDir,
    hint: 'Resume it with the device it was trained on, or start a new run.',
  });
}
