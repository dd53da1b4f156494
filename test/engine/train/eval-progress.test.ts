// An eval never looks frozen: evaluate() reports its examples as it goes, the training loop writes eval_progress
// events (one as each eval starts, then at most about one a second) before each eval event, and the eval event and
// run_start carry what an ETA needs (the clock at the eval's end, eval_every).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { throttledProgress } from '../../../src/engine/train/evaluate';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent } from '../../../src/protocol/events';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

describe('eval progress', () => {
  before(() => useBackend());

  it('throttles: the start always, then at most one report per interval, the last batch left to the result', () => {
    let now = 0;
    const seen: [number, number][] = [];
    const report = throttledProgress(
      (d, t) => seen.push([d, t]),
      1000,
      () => now,
    );
    report(0, 40);
    const batches = [
      [100, 8],
      [1200, 16],
      [1500, 24],
      [2300, 32],
      [3500, 40],
    ];
    for (const [t, done] of batches) {
      now = t;
      report(done, 40);
    }
    assert.deepEqual(seen, [
      [0, 40],
      [16, 40],
      [32, 40],
    ]);
  });

  it('a run writes eval_progress from 0 of N before each eval, and evals carry the clock', async () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: path.join(dir, 'runs'),
        data: {
          train: path.join(SST2, 'dev.tsv'),
          eval: path.join(SST2, 'dev.tsv'),
          text_field: 'sentence',
          max_length: 32,
          max_train_samples: 16,
          max_eval_samples: 8,
        },
        lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] },
        training: { learning_rate: 1e-3, batch_size: 4, max_steps: 2, eval_every: 1 },
      },
      dir,
    );
    const live: EngineEvent[] = [];
    const r = await train(config, (e) => live.push(e));
    const events = readMetrics(r.runDir);
    assert.deepEqual(
      events.map((e) => e.type),
      live.map((e) => e.type),
      'every event is also a line of metrics.jsonl',
    );
    const start = events.find((e) => e.type === 'run_start');
    assert.equal(start?.type === 'run_start' && start.eval_every, 1);
    const evals = events.flatMap((e, i) => (e.type === 'eval' ? [i] : []));
    assert.deepEqual(
      evals.map((i) => (events[i].type === 'eval' ? events[i].step : -1)),
      [0, 1, 2],
      'the baseline, the one at step 1, the final',
    );
    for (const i of evals) {
      const e = events[i];
      const begin = events
        .slice(0, i)
        .reverse()
        .find((x) => x.type === 'eval_progress' && x.done === 0);
      assert.ok(begin?.type === 'eval_progress' && e.type === 'eval', `an eval_progress before eval ${i}`);
      assert.deepEqual([begin.step, begin.total], [e.step, e.examples]);
      assert.ok(typeof e.elapsed_s === 'number' && e.elapsed_s >= begin.elapsed_s, 'the eval ends after it began');
    }
  });
});
