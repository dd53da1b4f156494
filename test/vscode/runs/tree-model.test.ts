// The run explorer's items, over real run folders: stories260k trained for a few steps into a temp folder, finished,
// stopped mid-run, failed (diverged, and failed before it started), and a run whose metrics.jsonl ends in a torn line.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import {
  applyStep,
  decideStatus,
  isEngineRun,
  RECENT_MS,
  statusExpires,
  summarizeRun,
  withStatus,
  type RunSummary,
} from '../../../src/engine/runs/summary';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import { CONTEXT } from '../../../src/vscode/command-table';
import { childItems, fmtEvalHeadline, runDirOfFile, runItem, sortRuns } from '../../../src/vscode/runs/tree-model';
import { SST2, STORIES, tempDir, useBackend, withLearningRate } from '../../helpers/shared';

const STATUS_WORDS = ['running', 'finished', 'stopped', 'failed', 'interrupted'];

function config(
  dir: string,
  name: string,
  task: string,
  training: Record<string, unknown>,
  data: Record<string, unknown> = {},
) {
  return configFromObject(
    {
      model: STORIES,
      task,
      device: 'wasm',
      output_dir: 'runs',
      run_name: name,
      data: {
        train: path.join(SST2, 'dev.tsv'),
        eval: path.join(SST2, 'dev.tsv'),
        text_field: 'sentence',
        max_length: 32,
        max_train_samples: 32,
        max_eval_samples: 16,
        ...data,
      },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { learning_rate: 1e-3, loraplus_lr_ratio: 16, batch_size: 4, max_steps: 4, ...training },
    },
    dir,
  );
}

interface Made {
  dir: string;
  events: EngineEvent[];
}
const item = (dir: string, alive = false, now = Date.now()) =>
  runItem(withStatus(summarizeRun(dir, alive), alive, now));

describe('run explorer tree model', () => {
  const runs: Record<'finished' | 'stopped' | 'diverged' | 'broken' | 'torn', Made> = {} as never;

  before(async () => {
    await useBackend();
    const root = tempDir();
    const trainInto = async (name: keyof typeof runs, cfg: ReturnType<typeof config>, stopAt?: number) => {
      const events: EngineEvent[] = [];
      const stop = new AbortController();
      await train(
        cfg,
        (e) => {
          events.push(e);
          if (e.type === 'step' && e.step === stopAt) stop.abort();
        },
        stop.signal,
      ).catch(() => {});
      runs[name] = { dir: path.join(root, 'runs', name), events };
    };
    // A classifier with an eval and a checkpoint every 2 steps: finished, with step-2 and final/.
    await trainInto('finished', config(root, 'finished', 'sequence-classification', { eval_every: 2, save_every: 2 }));
    // A causal LM stopped after step 2 (the eval at step 2 runs first), leaving a checkpoint at step 2.
    await trainInto('stopped', config(root, 'stopped', 'causal-lm', { eval_every: 2, max_steps: 8 }), 2);
    // lr·λ overflows float32 at step 2: an error event, failed, the step-1 checkpoint kept.
    await trainInto(
      'diverged',
      withLearningRate(
        config(root, 'diverged', 'causal-lm', { warmup_steps: 4, save_every: 1, max_grad_norm: 0 }, { eval: null }),
        1e38,
      ),
    );
    // Its training data vanished after the config was checked: failed before any run_start.
    fs.copyFileSync(path.join(SST2, 'dev.tsv'), path.join(root, 'gone.tsv'));
    const broken = config(root, 'broken', 'causal-lm', {}, { train: 'gone.tsv', eval: null });
    fs.rmSync(path.join(root, 'gone.tsv'));
    await trainInto('broken', broken);
    // A run killed mid-write: the finished run's events up to its checkpoint, then half a line, an hour ago.
    const torn = path.join(root, 'runs', 'torn');
    fs.mkdirSync(torn);
    fs.copyFileSync(path.join(runs.finished.dir, 'config.yaml'), path.join(torn, 'config.yaml'));
    const lines = fs.readFileSync(path.join(runs.finished.dir, 'metrics.jsonl'), 'utf8').split('\n');
    const upTo = lines.findIndex((l) => l.includes('"type":"checkpoint"'));
    fs.writeFileSync(
      path.join(torn, 'metrics.jsonl'),
      `${lines.slice(0, upTo + 1).join('\n')}\n${lines[upTo + 1].slice(0, 40)}`,
    );
    const hourAgo = new Date(Date.now() - 3600_000);
    fs.utimesSync(path.join(torn, 'metrics.jsonl'), hourAgo, hourAgo);
    runs.torn = { dir: torn, events: runs.finished.events.slice(0, upTo + 1) };
  });

  it('a finished run: status word first, then steps, its best eval accuracy, λ and r; checkpoints and final adapter', () => {
    const s = summarizeRun(runs.finished.dir, false);
    const it0 = runItem(s);
    assert.equal(it0.label, 'finished');
    // The figures of this seeded run, written out (not computed with the formatters under test).
    assert.equal(it0.description, 'finished · step 4/4 · acc 43.8% · λ16 r4');
    assert.equal(it0.contextValue, CONTEXT.runFinished);
    assert.deepEqual(it0.icon, { id: 'pass', color: 'testing.iconPassed' });
    assert.ok(it0.collapsible);
    for (const want of [
      'stories260k (llama)',
      'sequence-classification',
      'wasm on',
      'steps: 4 of 4',
      'best eval: acc 43.8% · loss 0.7876 at step 4',
      'r 4, α 8',
      'λ (loraplus_lr_ratio): 16',
      'lr: A 0.001, B 0.016',
    ]) {
      assert.ok(it0.tooltip.includes(want), `tooltip lacks ${want}:\n${it0.tooltip}`);
    }

    const kids = childItems(s);
    assert.deepEqual(
      kids.map((k) => [k.label, k.kind, k.contextValue]),
      [
        ['step 2', 'checkpoint', CONTEXT.checkpoint],
        ['final adapter', 'adapter', CONTEXT.adapter],
      ],
    );
    assert.equal(kids[0].description, 'acc 37.5% · loss 0.8164');
    assert.ok(fs.existsSync(path.join(kids[0].dir, 'adapter_model.safetensors')));
    assert.equal(kids[1].description, 'step 4 · acc 43.8% · loss 0.7876');
    assert.ok(fs.existsSync(path.join(kids[1].dir, 'adapter_config.json')));
  });

  it('a stopped run: its stop checkpoint carries the perplexity of the eval at that step', () => {
    const s = summarizeRun(runs.stopped.dir, false);
    assert.equal(s.status, 'stopped');
    assert.equal(runItem(s).description, 'stopped · step 2/8 · ppl 74.1 · λ16 r4');
    assert.deepEqual(runItem(s).icon, { id: 'debug-pause' });
    const kids = childItems(s);
    assert.deepEqual(
      kids.map((k) => k.label),
      ['step 2'],
    );
    assert.match(kids[0].description, /^ppl 74\.1 · loss 4\.3058/);
  });

  it('failed runs: the error in the tooltip, the kept checkpoint, figures from config.yaml when it never started', () => {
    const diverged = runItem(summarizeRun(runs.diverged.dir, false));
    const err = runs.diverged.events.find((e) => e.type === 'error');
    assert.ok(err && err.type === 'error');
    assert.match(diverged.description, /^failed · step 1\/4 · loss \d+\.\d{4} · λ16 r4$/);
    assert.ok(diverged.tooltip.includes('**error:**') && diverged.tooltip.includes('became'), diverged.tooltip);
    assert.deepEqual(diverged.icon, { id: 'error', color: 'testing.iconFailed' });
    assert.deepEqual(
      childItems(summarizeRun(runs.diverged.dir)).map((k) => [k.label, k.description]),
      [['step 1', '']],
    );

    const s = summarizeRun(runs.broken.dir, false);
    assert.equal(s.start, null, 'it failed before run_start');
    assert.ok(isEngineRun(s), 'config.yaml marks it as a run');
    assert.ok(!isEngineRun({ ...s, config: { model: 'x', epochs: 3 } }), "another tool's config.yaml does not");
    const broken = runItem(s);
    assert.equal(broken.description, 'failed · step 0 · λ16 r4');
    assert.equal(broken.collapsible, false);
    assert.ok(broken.tooltip.includes('gone'), broken.tooltip);
  });

  it('a run with no end: running while alive or recently written, interrupted once quiet; a torn last line is skipped', () => {
    const s = summarizeRun(runs.torn.dir, false);
    assert.equal(s.step, 2);
    assert.equal(s.checkpoints.length, 0, 'its folder holds no checkpoint');
    const now = Date.now();
    assert.equal(decideStatus(s, false, now), 'interrupted');
    assert.equal(decideStatus(s, true, now), 'running');
    assert.equal(decideStatus(s, false, s.updated + RECENT_MS - 1000), 'running', 'a CLI run writing in a terminal');
    assert.equal(statusExpires(s, false, s.updated + 1000), s.updated + RECENT_MS);
    assert.equal(statusExpires(s, true, now), null);
    assert.equal(decideStatus(summarizeRun(runs.finished.dir, true), true, now), 'finished', 'an end event wins');

    const quiet = item(runs.torn.dir);
    assert.match(quiet.description, /^interrupted · step 2\/4 · acc \d+\.\d% · λ16 r4$/);
    assert.equal(quiet.contextValue, CONTEXT.runIdle);
    assert.deepEqual(quiet.icon, { id: 'warning', color: 'list.warningForeground' });
    const live = item(runs.torn.dir, true);
    assert.match(live.description, /^running · step 2\/4/);
    assert.equal(live.contextValue, CONTEXT.runRunning);
    assert.equal(live.icon.id, 'sync~spin');
  });

  it('every description starts with its status word; ids are distinct', () => {
    const items = Object.values(runs).map((m) => item(m.dir));
    for (const i of items) assert.ok(STATUS_WORDS.includes(i.description.split(' · ')[0]), i.description);
    assert.deepEqual(
      items.map((i) => i.description.split(' · ')[0]),
      ['finished', 'stopped', 'failed', 'failed', 'interrupted'],
    );
    assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'each run keeps its own id (expansion state)');
  });

  it('sorts newest session first, ties by name; a live step updates the description without a re-read', () => {
    const all = Object.values(runs).map((m) => summarizeRun(m.dir));
    const order = sortRuns(all).map((s) => s.name);
    // torn copies finished's run_start, so they tie and go by name; broken never started: its file's time counts.
    assert.deepEqual(order, ['broken', 'diverged', 'stopped', 'finished', 'torn']);
    assert.deepEqual(
      sortRuns([...all].reverse()).map((s) => s.name),
      order,
      'independent of the input order',
    );

    const stopped = summarizeRun(runs.stopped.dir, true);
    const step = { ...(runs.stopped.events.find((e) => e.type === 'step') as StepEvent), step: 3, loss: 1.25 };
    const next: RunSummary = applyStep(stopped, step, Date.now());
    assert.equal(next.step, 3);
    assert.equal(next.lastLoss, 1.25);
    assert.equal(stopped.step, 2, 'the cached summary is not mutated');
  });

  it('maps watcher paths to their run folder', () => {
    const run = runs.finished.dir;
    assert.equal(runDirOfFile(path.join(run, 'metrics.jsonl')), run);
    assert.equal(runDirOfFile(path.join(run, 'checkpoints', 'step-2', 'trainer_state.json')), run);
    assert.equal(runDirOfFile(path.join(run, 'checkpoints', 'step-4.tmp-123', 'adapter_model.safetensors')), run);
    assert.equal(runDirOfFile(path.join(run, 'final', 'adapter_config.json')), run);
    assert.equal(runDirOfFile(path.join(run, 'final.tmp-77', 'adapter_config.json')), run);
    assert.equal(runDirOfFile(path.join(run, 'config.yaml')), null);
  });

  it('formats eval headlines by task', () => {
    assert.equal(fmtEvalHeadline({ loss: 0.5, accuracy: 0.585 }), 'acc 58.5%');
    assert.equal(fmtEvalHeadline({ loss: 3.27, perplexity: 26.41 }), 'ppl 26.4');
    assert.equal(fmtEvalHeadline({ loss: 0.61234 }), 'eval loss 0.6123');
  });
});
