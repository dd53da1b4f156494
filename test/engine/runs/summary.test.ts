// summarizeRun / summarizeEvents: what a run folder says about its run, on real folders written by train()
// (stories260k for a few steps): a stopped-and-resumed run, a diverged one, and the files around them that a
// workspace also holds (half-written checkpoints, other tools' metrics.jsonl).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { isRunDir, summarizeEvents, summarizeRun } from '../../../src/engine/runs/summary';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, EvalEvent, StepEvent } from '../../../src/protocol/events';
import { SST2, STORIES, tempDir, useBackend, withLearningRate } from '../../helpers/shared';

function config(
  dir: string,
  name: string,
  training: Record<string, unknown>,
  evalData: string | null = path.join(SST2, 'dev.tsv'),
) {
  return configFromObject(
    {
      model: STORIES,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: 'runs',
      run_name: name,
      data: {
        train: path.join(SST2, 'dev.tsv'),
        eval: evalData,
        text_field: 'sentence',
        max_length: 32,
        max_train_samples: 32,
        max_eval_samples: 8,
      },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { learning_rate: 1e-3, loraplus_lr_ratio: 16, batch_size: 4, max_steps: 4, ...training },
    },
    dir,
  );
}

const evals = (events: EngineEvent[]) => events.filter((e): e is EvalEvent => e.type === 'eval');

describe('summarizeRun', () => {
  let root = '';
  let resumed = '';
  let diverged = '';
  const session1: EngineEvent[] = [];
  const session2: EngineEvent[] = [];
  const failedEvents: EngineEvent[] = [];

  before(async () => {
    await useBackend();
    root = tempDir();
    // Stopped after step 3 (checkpoints at 2, by save_every, and at 3, by the stop), then resumed to the end.
    const cfg = config(root, 'resumed', { eval_every: 2, save_every: 2 });
    const stop = new AbortController();
    await train(
      cfg,
      (e) => {
        session1.push(e);
        if (e.type === 'step' && e.step === 3) stop.abort();
      },
      stop.signal,
    );
    resumed = path.join(root, 'runs', 'resumed');
    await train(cfg, (e) => session2.push(e), undefined, { runDir: resumed, resume: true });
    // lr·λ overflows float32 at step 2: an error, failed, the step-1 checkpoint kept.
    await train(
      withLearningRate(config(root, 'diverged', { warmup_steps: 4, save_every: 1, max_grad_norm: 0 }, null), 1e38),
      (e) => failedEvents.push(e),
    ).catch(() => {});
    diverged = path.join(root, 'runs', 'diverged');
  });

  it(
    'a stopped and resumed run reads as one finished run: ' +
      'steps, evals, checkpoints with their evals, final adapter',
    () => {
      const s = summarizeRun(resumed);
      const all = [...session1, ...session2];
      const lastStep = all.filter((e): e is StepEvent => e.type === 'step').at(-1)!;
      assert.equal(s.status, 'finished');
      assert.equal(s.name, 'resumed');
      assert.equal(s.step, 4);
      assert.equal(s.totalSteps, 4);
      assert.equal(s.start?.start_step, 3, 'the latest session');
      assert.equal(s.lastLoss, lastStep.loss);
      const lowest = evals(all).reduce((a, b) => (b.loss < a.loss ? b : a));
      assert.deepEqual(s.bestEval, lowest);
      assert.deepEqual(s.lastEval, evals(session2).at(-1));
      assert.deepEqual(
        s.checkpoints.map((c) => [c.step, c.eval?.loss ?? null]),
        [
          [2, evals(session1).find((e) => e.step === 2)!.loss],
          [3, null],
        ],
      );
      assert.equal(s.finalAdapter, path.join(resumed, 'final'));
      assert.equal(s.error, null);
      assert.equal(s.config?.run_name, 'resumed', 'config.yaml as run');
      assert.equal(s.updated, fs.statSync(path.join(resumed, 'metrics.jsonl')).mtimeMs);
    },
  );

  it('both sessions as one live event stream (a dashboard across a resume) summarize as the file does', () => {
    assert.ok(session1.some((e) => e.type === 'end' && e.status === 'stopped'));
    const fromStream = summarizeEvents(resumed, [...session1, ...session2]);
    const fromFile = summarizeRun(resumed);
    assert.equal(fromStream.status, 'finished', "the second run_start clears the first session's end");
    assert.deepEqual({ ...fromStream, updated: 0 }, { ...fromFile, updated: 0 });
  });

  it('a diverged run is failed with its error message; a later session clears the error', () => {
    const s = summarizeRun(diverged);
    const err = failedEvents.find((e) => e.type === 'error');
    assert.ok(err && err.type === 'error');
    assert.equal(s.status, 'failed');
    assert.equal(s.error, err.error.message);
    assert.equal(s.step, 1);
    assert.deepEqual(
      s.checkpoints.map((c) => c.step),
      [1],
    );
    assert.equal(s.finalAdapter, null);
    assert.equal(s.bestEval, null);
    const again = summarizeEvents(diverged, [...failedEvents, ...session2]);
    assert.equal(again.error, null);
    assert.equal(again.status, 'finished');
  });

  it('a run without an end is running or interrupted as the caller says', () => {
    const events = readMetrics(resumed).filter((e) => e.type !== 'end');
    assert.equal(summarizeEvents(resumed, events, true).status, 'running');
    assert.equal(summarizeEvents(resumed, events, false).status, 'interrupted');
    assert.equal(summarizeEvents(resumed, events).status, 'running', 'unknown: a run_start without an end');
    assert.equal(summarizeEvents(resumed, []).status, 'interrupted', 'unknown and nothing written');
    assert.equal(summarizeEvents(resumed, [], true).status, 'running', 'alive, still loading the model');
  });

  it('a NaN eval loss (null in JSON) is never the best eval', () => {
    const dir = path.join(root, 'nan-eval');
    fs.mkdirSync(dir);
    const events = readMetrics(resumed);
    const at = events.findIndex((e) => e.type === 'eval');
    const bad = { ...(events[at] as EvalEvent), step: 0, loss: NaN, perplexity: NaN };
    fs.writeFileSync(
      path.join(dir, 'metrics.jsonl'),
      [...events.slice(0, at), bad, ...events.slice(at)].map((e) => JSON.stringify(e)).join('\n'),
    );
    const s = summarizeRun(dir);
    assert.equal(s.bestEval?.loss, summarizeRun(resumed).bestEval?.loss);
    assert.ok(Number.isFinite(s.bestEval?.loss));
  });

  it('skips a torn last line and what other tools write into a metrics.jsonl', () => {
    const torn = path.join(root, 'torn');
    fs.mkdirSync(torn);
    const text = fs.readFileSync(path.join(resumed, 'metrics.jsonl'), 'utf8');
    const lines = text.trim().split('\n');
    fs.writeFileSync(
      path.join(torn, 'metrics.jsonl'),
      `${lines.slice(0, -2).join('\n')}\n${lines.at(-2)!.slice(0, 30)}`,
    );
    const s = summarizeRun(torn, false);
    assert.equal(s.status, 'interrupted', 'the end event was torn off');
    assert.equal(s.step, 4);

    const foreign = path.join(root, 'other-tool');
    fs.mkdirSync(foreign);
    fs.writeFileSync(
      path.join(foreign, 'metrics.jsonl'),
      [
        '{"epoch": 1, "loss": 0.5}',
        'null',
        '42',
        '"text"',
        '{"type": "eval", "step": "x", "loss": 1}',
        '{"type": "error"}',
        '{"type": "end", "status": "finished"}',
      ].join('\n'),
    );
    const f = summarizeRun(foreign);
    assert.equal(f.start, null);
    assert.equal(f.config, null);
    assert.equal(f.step, 0);
    assert.equal(f.bestEval, null);
    assert.ok(isRunDir(foreign) && !isRunDir(root));
  });

  it('lists only complete checkpoints and a final adapter with its config', () => {
    const copy = path.join(root, 'partial');
    fs.cpSync(resumed, copy, { recursive: true });
    fs.rmSync(path.join(copy, 'checkpoints', 'step-3', 'trainer_state.json')); // a checkpoint cut off mid-write
    fs.mkdirSync(path.join(copy, 'checkpoints', 'step-9.tmp-123'));
    fs.rmSync(path.join(copy, 'final', 'adapter_config.json'));
    const s = summarizeRun(copy);
    assert.deepEqual(
      s.checkpoints.map((c) => c.step),
      [2],
    );
    assert.equal(s.finalAdapter, null);
  });
});
