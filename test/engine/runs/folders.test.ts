// A run folder never loses or mixes anything: a run writes only into a folder it created (or an empty one), one
// writer at a time (a lock, stale ones recovered), a resume only with the config the run was started with, and what
// a killed writer left half done is put right on the next start.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { configFromObject } from '../../../src/config/load';
import { listCheckpoints } from '../../../src/engine/runs/checkpoints';
import { LOCK_FILE, lockRun } from '../../../src/engine/runs/lock';
import { createRun } from '../../../src/engine/runs/writer';
import { train } from '../../../src/engine/train/train';
import { LoraPlusError } from '../../../src/protocol/errors';
import { runCli } from '../../helpers/cli';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const CLI = path.resolve(__dirname, '..', '..', '..', 'bin', 'loraplus.js'); // needs `npm run build` (npm test does it)

const SETTINGS = {
  model: STORIES,
  task: 'causal-lm',
  device: 'wasm',
  output_dir: 'runs',
  data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 16 },
  lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] },
  training: { learning_rate: 1e-3, batch_size: 4, max_steps: 2, save_every: 1 },
};

function config(dir: string, extra: Record<string, unknown> = {}, training: Record<string, unknown> = {}) {
  return configFromObject({ ...SETTINGS, ...extra, training: { ...SETTINGS.training, ...training } }, dir);
}

function writeConfig(dir: string, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'config.yaml');
  fs.writeFileSync(file, `# my notes, kept\n${stringify({ ...SETTINGS, ...extra })}`);
  return file;
}

async function refused(p: Promise<unknown>, code: string): Promise<LoraPlusError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof LoraPlusError, String(err));
    assert.equal(err.code, code, err.message);
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('run folders', () => {
  before(() => useBackend());

  it("`train config.yaml --run-dir .` in the config's folder is refused and the config is kept as it was", async () => {
    const dir = tempDir();
    const file = writeConfig(dir);
    const before = fs.readFileSync(file, 'utf8');
    const r = await runCli(['train', file, '--run-dir', dir]);
    assert.equal(r.code, 1);
    assert.match(r.err, /is not empty; a run writes only into a new or empty folder/);
    assert.equal(fs.readFileSync(file, 'utf8'), before);
    assert.equal(fs.existsSync(path.join(dir, 'metrics.jsonl')), false);
    // run_name: .. would name the output folder's parent, which holds the config too: the config refuses it.
    assert.throws(
      () => config(dir, { run_name: '..', output_dir: path.join(dir, 'runs') }),
      (e: unknown) => e instanceof LoraPlusError && /run_name must be a folder name/.test(e.message),
    );
    assert.equal(fs.readFileSync(file, 'utf8'), before);
  });

  it('a second run with the same run_name is refused; the first one is untouched', async () => {
    const dir = tempDir();
    const first = await train(config(dir, { run_name: 'same' }), () => {});
    const files = () => fs.readdirSync(first.runDir).sort();
    const kept = files();
    const metrics = fs.readFileSync(path.join(first.runDir, 'metrics.jsonl'), 'utf8');
    const err = await refused(
      train(config(dir, { run_name: 'same' }), () => {}),
      'run/folder-not-empty',
    );
    assert.match(err.info.hint ?? '', /--resume/);
    assert.deepEqual(files(), kept);
    assert.equal(fs.readFileSync(path.join(first.runDir, 'metrics.jsonl'), 'utf8'), metrics);
  });

  it('default run names never collide: two runs of one config get their own folders', () => {
    const dir = tempDir();
    const c = config(dir);
    const [a, b] = [createRun(c), createRun(c)];
    try {
      assert.notEqual(a.dir, b.dir);
      assert.equal(b.dir, `${a.dir}-2`);
    } finally {
      a.close();
      b.close();
    }
  });

  it('one writer per run folder: a second writer is refused with who holds it; a stale lock is taken over', async () => {
    const dir = tempDir();
    const runDir = path.join(dir, 'runs', 'locked');
    fs.mkdirSync(runDir, { recursive: true });
    const held = lockRun(runDir);
    const err = await refused(
      train(config(dir, { run_name: 'locked' }), () => {}),
      'run/locked',
    );
    assert.match(err.message, new RegExp(`process ${process.pid}`));
    held.release();
    // A lock left by a process that no longer exists (kill -9): the next run takes it over.
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))']).stdout.toString();
    const stale = { pid: Number(dead), host: os.hostname(), started: '2026-01-01T00:00:00Z' };
    fs.writeFileSync(path.join(runDir, LOCK_FILE), JSON.stringify(stale));
    const r = await train(config(dir, { run_name: 'locked' }), () => {});
    assert.equal(r.status, 'finished');
    assert.equal(fs.existsSync(path.join(runDir, LOCK_FILE)), false, 'the lock goes with the run');
  });

  it('--resume refuses a changed config, naming what differs; a longer run is allowed', async () => {
    const dir = tempDir();
    const first = await train(config(dir, { run_name: 'r' }), () => {});
    const changed = config(dir, { run_name: 'r' }, { learning_rate: 5e-3, max_steps: 4 });
    const err = await refused(
      train(changed, () => {}, undefined, { resume: true }),
      'resume/config-differs',
    );
    assert.match(err.info.message, /training\.learning_rate/);
    assert.doesNotMatch(err.info.message, /max_steps/);
    const longer = await train(config(dir, { run_name: 'r' }, { max_steps: 4 }), () => {}, undefined, { resume: true });
    assert.deepEqual([longer.status, longer.step, longer.runDir], ['finished', 4, first.runDir]);
  });

  it('a resume puts right what a killed writer left: half-written folders go, an interrupted replace is undone', async () => {
    const dir = tempDir();
    const stop = new AbortController();
    const c = config(dir, { run_name: 'k' }, { max_steps: 6, save_every: 2 });
    const first = await train(c, (e) => e.type === 'step' && e.step === 2 && stop.abort(), stop.signal);
    const [ck] = listCheckpoints(first.runDir);
    // kill -9 inside writeDirAtomic: a temp folder, and a checkpoint moved aside but not yet replaced.
    fs.mkdirSync(path.join(first.runDir, 'final.tmp-99999'));
    fs.mkdirSync(path.join(first.runDir, 'checkpoints', 'step-4.tmp-99999'));
    fs.renameSync(ck.dir, `${ck.dir}.old-99999`);
    const r = await train(c, () => {}, undefined, { resume: true });
    assert.equal(r.status, 'finished');
    const leftovers = [first.runDir, path.join(first.runDir, 'checkpoints')].flatMap((d) =>
      fs.readdirSync(d).filter((n) => /\.(tmp|old)-\d+$/.test(n)),
    );
    assert.deepEqual(leftovers, []);
  });

  it('a run that fails prints its error once', () => {
    const dir = tempDir();
    // A data file that is gone by the time the run reads it: the run starts, then fails.
    const data = path.join(dir, 'train.tsv');
    fs.copyFileSync(path.join(SST2, 'dev.tsv'), data);
    const file = writeConfig(dir, { data: { ...SETTINGS.data, train: data } });
    fs.writeFileSync(data, 'sentence\tlabel\n'); // a header and no rows
    const r = spawnSync(process.execPath, [CLI, 'train', file], { encoding: 'utf8' });
    const errors = `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => l.startsWith('error: '));
    assert.equal(r.status, 1, r.stderr);
    assert.equal(errors.length, 1, r.stderr);
  });
});
