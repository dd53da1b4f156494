// Run names: the default says which config and settings a run has (and never collides), run_name wins, and a rename
// moves the folder only when no process writes it, after which the run reads the same everywhere and resumes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { configFromObject } from '../../../src/config/load';
import { lockRun } from '../../../src/engine/runs/lock';
import { badRunName, configStem, runName } from '../../../src/engine/runs/names';
import { renameRun } from '../../../src/engine/runs/rename';
import { summarizeRun } from '../../../src/engine/runs/summary';
import { createRun, readMetrics } from '../../../src/engine/runs/writer';
import { train } from '../../../src/engine/train/train';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const SETTINGS = {
  model: STORIES,
  task: 'causal-lm',
  device: 'wasm',
  output_dir: 'runs',
  data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 16 },
  lora: { r: 8, lora_alpha: 16, target_modules: ['q_proj'] },
  training: { learning_rate: 5e-4, loraplus_lr_ratio: 16, batch_size: 4, max_steps: 2, save_every: 1 },
};

function config(dir: string, extra: Record<string, unknown> = {}, training: Record<string, unknown> = {}) {
  return configFromObject({ ...SETTINGS, ...extra, training: { ...SETTINGS.training, ...training } }, dir);
}

function refuses(fn: () => unknown, code: string): LoraPlusError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LoraPlusError, String(err));
    assert.equal(err.code, code, err.message);
    assert.ok(err.info.hint, 'says what to do');
    return err;
  }
  assert.fail(`expected ${code}`);
}

describe('run names', () => {
  before(() => useBackend());

  it('the default: the config file’s name and the settings that tell runs apart, as tune trials say them', () => {
    const dir = tempDir();
    assert.equal(runName(config(dir), path.join(dir, 'sst2-cls.lora.yaml')), 'sst2-cls-lr5e-4-ratio16');
    assert.equal(runName(config(dir, {}, { loraplus_lr_ratio: 1 }), 'x/sst2-cls.yaml'), 'sst2-cls-lr5e-4-ratio1');
    assert.equal(
      runName(
        config(dir, { lora: { ...SETTINGS.lora, r: 4 } }, { optimizer: 'riemannian', learning_rate: 2e-3 }),
        'a.yml',
      ),
      'a-lr2e-3-riemannian-r4',
    );
    // A config file whose name says nothing (loraplus.yaml), or none: the model's folder name.
    assert.equal(runName(config(dir), path.join(dir, 'loraplus.yaml')), 'stories260k-lr5e-4-ratio16');
    assert.equal(runName(config(dir)), 'stories260k-lr5e-4-ratio16');
    assert.equal(configStem('/x/My config (v2).lora.yaml', STORIES), 'My-config-v2');
    // run_name wins.
    assert.equal(runName(config(dir, { run_name: 'mine' }), 'sst2-cls.lora.yaml'), 'mine');
    for (const n of ['sst2-cls-lr5e-4-ratio16', 'stories260k-lr1.5e-4-ratio4']) assert.equal(badRunName(n), null, n);
  });

  it('default names never collide: the same config twice gets -2, and a taken name is never written into', () => {
    const dir = tempDir();
    const file = path.join(dir, 'sst2-lm.lora.yaml');
    const c = config(dir);
    const [a, b] = [createRun(c, undefined, file), createRun(c, undefined, file)];
    try {
      assert.equal(path.basename(a.dir), 'sst2-lm-lr5e-4-ratio16');
      assert.equal(b.dir, `${a.dir}-2`);
    } finally {
      a.close();
      b.close();
    }
  });

  it('rename moves a stopped run’s folder, rewrites what names it; the run resumes from there', async () => {
    const dir = tempDir();
    const first = await train(config(dir, { run_name: 'old-name' }), () => {});
    const to = renameRun(first.runDir, 'new-name');
    assert.equal(to, path.join(dir, 'runs', 'new-name'));
    assert.equal(fs.existsSync(first.runDir), false);
    assert.equal(fs.existsSync(path.join(to, '.lock')), false, 'no lock left behind');
    const events = readMetrics(to);
    const start = events.find((e) => e.type === 'run_start')!;
    assert.deepEqual([start.run_name, start.run_dir], ['new-name', to]);
    for (const e of events) {
      if (e.type === 'checkpoint') assert.ok(e.path.startsWith(to + path.sep), e.path);
      if (e.type === 'end') assert.equal(e.final_adapter, path.join(to, 'final'));
    }
    const cfg = fs.readFileSync(path.join(to, 'config.yaml'), 'utf8');
    assert.match(cfg, /^# The config as run/, 'comments kept');
    assert.equal((parse(cfg) as { run_name: string }).run_name, 'new-name');
    const s = summarizeRun(to, false);
    assert.deepEqual([s.name, s.status, s.checkpoints.length], ['new-name', 'finished', 1]);
    // Resumable: by folder, and by the config's run_name as the renamed config.yaml now says.
    const longer = config(dir, { run_name: 'new-name' }, { max_steps: 3 });
    const r = await train(longer, () => {}, undefined, { resume: true });
    assert.deepEqual([r.status, r.step, r.runDir], ['finished', 3, to]);
  });

  it('rename is refused while a process writes the run, for a taken or bad name, and for a tune trial', async () => {
    const dir = tempDir();
    const { runDir } = await train(config(dir, { run_name: 'busy' }), () => {});
    const held = lockRun(runDir); // as a training process holds it
    const locked = refuses(() => renameRun(runDir, 'elsewhere'), 'run/locked');
    assert.match(locked.message, new RegExp(`process ${process.pid}`));
    held.release();
    assert.ok(fs.existsSync(runDir) && !fs.existsSync(path.join(dir, 'runs', 'elsewhere')));
    fs.mkdirSync(path.join(dir, 'runs', 'taken'));
    refuses(() => renameRun(runDir, 'taken'), 'run/rename-taken');
    for (const bad of ['', '../up', 'a/b', '-flag', 'λ16']) refuses(() => renameRun(runDir, bad), 'run/rename');
    const trial = path.join(dir, 'tune', 'trials', 'lr5e-4-ratio16');
    fs.mkdirSync(path.dirname(trial), { recursive: true });
    fs.cpSync(runDir, trial, { recursive: true });
    assert.match(refuses(() => renameRun(trial, 'x'), 'run/rename').message, /tune/);
    assert.equal(renameRun(runDir, 'busy'), runDir, 'the same name: nothing to do');
  });
});
