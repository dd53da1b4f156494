// A rank of an exported job killed mid-run (SIGKILL, as an out-of-memory killer or a lost node does): the job fails
// with an error event in the run's metrics.jsonl and ends `failed`, keeping its last checkpoint; `--resume` then
// continues from that checkpoint to the losses of an uninterrupted run. Runs when a Python with torch,
// transformers, peft and accelerate is here (CI installs them).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { readMetrics } from '../../src/engine/runs/writer';
import type { EndEvent, ErrorEvent, RunStartEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { EXPORT_MODULES, jobEnv, launch, losses, maxDeviation, twoProcesses } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { SST2, STORIES, tempDir } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);
const STEPS = 120;

/** The pids of the job's training processes with RANK=rank (their environment says which rank they are). */
function rankPids(job: string, rank: number): number[] {
  const out: number[] = [];
  for (const pid of fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      if (!cmd.includes(path.join(job, 'train.py')) || /accelerate|torchrun/.test(cmd.split('\0')[1] ?? '')) continue;
      const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      if (env.includes(`RANK=${rank}`)) out.push(Number(pid));
    } catch {
      // gone, or not ours to read
    }
  }
  return out;
}

describe('a killed rank, then --resume', { skip: python ? false : noPython(EXPORT_MODULES) }, () => {
  const dir = tempDir();
  const job = path.join(dir, 'job');
  const [killed, whole] = [path.join(dir, 'killed'), path.join(dir, 'whole')];

  before(async () => {
    const file = path.join(dir, 'kill.lora.yaml');
    fs.writeFileSync(
      file,
      `model: ${STORIES}
data: {train: ${SST2}/train.tsv, text_field: sentence, max_length: 32, max_train_samples: 400}
lora: {r: 4, lora_alpha: 8}
training: {learning_rate: 1.0e-3, batch_size: 4, max_steps: ${STEPS}, eval_every: 0, save_every: 10, log_every: 1}
`,
    );
    const exported = await runCli(['export', file, '--out', job]);
    assert.equal(exported.code, 0, exported.err);
  });

  it('the job fails with an error event and keeps its checkpoint; --resume finishes it as if never killed', async () => {
    const args = await twoProcesses();
    const child = spawn('bash', [path.join(job, 'launch.sh'), ...args], {
      env: jobEnv(python!, `--run-dir ${killed}`),
      stdio: 'ignore',
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Kill rank 1 once the step-20 checkpoint is written (the run is then between checkpoints).
    const ck = path.join(killed, 'checkpoints', 'step-20');
    for (let i = 0; i < 1200 && !fs.existsSync(path.join(ck, 'trainer_state.json')); i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.ok(fs.existsSync(ck), 'the job reached its step-20 checkpoint');
    const pids = rankPids(job, 1);
    assert.equal(pids.length, 1, 'one rank-1 process');
    process.kill(pids[0], 'SIGKILL');
    const code = await exited;
    assert.notEqual(code, 0, 'the job fails');

    const events = readMetrics(killed);
    const error = events.find((e): e is ErrorEvent => e.type === 'error');
    assert.ok(error, 'an error event in metrics.jsonl');
    assert.equal(events.filter((e): e is EndEvent => e.type === 'end').at(-1)?.status, 'failed');
    const stepsBefore = losses(events, 'step').length;
    assert.ok(stepsBefore >= 20 && stepsBefore < STEPS, `killed mid-run (${stepsBefore} steps logged)`);

    const resumed = launch(python!, job, killed, args, '--resume');
    const start = resumed.filter((e): e is RunStartEvent => e.type === 'run_start').at(-1)!;
    assert.ok(start.start_step >= 20 && start.start_step % 10 === 0, `resumed at ${start.start_step}`);
    assert.equal(resumed.filter((e): e is EndEvent => e.type === 'end').at(-1)?.status, 'finished');

    const uninterrupted = launch(python!, job, whole, await twoProcesses());
    const after = resumed.slice(resumed.indexOf(start));
    const d = maxDeviation(losses(uninterrupted, 'step').slice(start.start_step), losses(after, 'step'));
    assert.ok(d < 1e-6, `max |Δloss| after the resume ${d}`);
  });
});
