// Running an exported job (loraplus export --to accelerate) for the Python tests: launch.sh on CPU processes.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { readMetrics } from '../../src/engine/runs/writer';
import type { EngineEvent, EvalEvent, StepEvent } from '../../src/protocol/events';

export const EXPORT_MODULES = ['torch', 'transformers', 'peft', 'accelerate'];

/** bash launch.sh ARGS with the job writing its run to runDir (and jobArgs: JOB_ARGS); returns the run's events. */
export function launch(python: string, job: string, runDir: string, args: string[], jobArgs = ''): EngineEvent[] {
  const env = jobEnv(python, `--run-dir ${runDir} ${jobArgs}`);
  const r = spawnSync('bash', [path.join(job, 'launch.sh'), ...args], { env, encoding: 'utf8', timeout: 300_000 });
  assert.equal(r.status, 0, `launch.sh ${args.join(' ')} failed:\n${r.stderr.slice(-3000)}`);
  return readMetrics(runDir);
}

export function jobEnv(python: string, jobArgs: string): NodeJS.ProcessEnv {
  const bin = path.dirname(python); // a venv's accelerate sits beside its python
  return { ...process.env, PATH: `${bin}:${process.env.PATH}`, OMP_NUM_THREADS: '1', JOB_ARGS: jobArgs };
}

/** Two "machines" on loopback, one CPU process each (machine ranks 0 and 1), at once; returns the run's events. */
export async function launchTwoNodes(python: string, job: string, runDir: string): Promise<EngineEvent[]> {
  const port = await freePort();
  const node = (rank: number) =>
    new Promise<number | null>((resolve) => {
      const args = ['--cpu', '--num_processes', '2', '--num_machines', '2', '--machine_rank', String(rank)];
      args.push('--main_process_ip', '127.0.0.1', '--main_process_port', port);
      const env = jobEnv(python, `--run-dir ${runDir}`);
      const child = spawn('bash', [path.join(job, 'launch.sh'), ...args], { env, stdio: 'ignore' });
      child.on('exit', resolve);
    });
  assert.deepEqual(await Promise.all([node(0), node(1)]), [0, 0]);
  return readMetrics(runDir);
}

/** Two CPU processes on a free port of their own (tests of other files may run beside). */
export async function twoProcesses(): Promise<string[]> {
  return ['--cpu', '--num_processes', '2', '--main_process_port', await freePort()];
}

/** A TCP port nothing listens on now, for torchrun's rendezvous. */
function freePort(): Promise<string> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(String(port)));
    });
    server.on('error', reject);
  });
}

export const losses = (events: EngineEvent[], type: 'step' | 'eval'): number[] =>
  events.filter((e): e is StepEvent | EvalEvent => e.type === type).map((e) => e.loss);

/** The largest |a - b| (relative: / |a|) over two loss curves of the same length. */
export function maxDeviation(a: number[], b: number[], relative = false): number {
  assert.equal(b.length, a.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]) / (relative ? Math.abs(x) : 1)));
}
