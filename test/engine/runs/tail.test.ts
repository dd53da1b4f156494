// What the run feeds read from a run folder (src/engine/runs/tail.ts): following a live run's
// metrics.jsonl yields exactly its events, once each; partial lines wait; a resumed run's rewrite starts over.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { dashboardSummary, summarizeEvents } from '../../../src/engine/runs/summary';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent } from '../../../src/protocol/events';
import { MetricsTail } from '../../../src/engine/runs/tail';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const line = (e: unknown) => `${JSON.stringify(e)}\n`;

describe('MetricsTail', () => {
  it('following a real run while it trains yields exactly the events of its metrics.jsonl, in order', async () => {
    await useBackend();
    const dir = tempDir();
    const runDir = path.join(dir, 'runs', 'followed');
    const tail = new MetricsTail(path.join(runDir, 'metrics.jsonl'));
    const seen: EngineEvent[] = [];
    let resets = 0;
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: path.join(dir, 'runs'),
        run_name: 'followed',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 24 },
        lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] },
        training: { learning_rate: 1e-3, batch_size: 4, max_steps: 3, save_every: 2 },
      },
      dir,
    );
    // The engine appends each event to the file before it calls onEvent: read the tail at every event, as the host does.
    await train(config, () => {
      const r = tail.read();
      resets += Number(r.reset);
      seen.push(...r.events);
    });
    seen.push(...tail.read().events);
    assert.equal(resets, 0);
    assert.deepEqual(seen, readMetrics(runDir));
    assert.deepEqual(
      seen.map((e) => e.type).filter((t) => t !== 'step'),
      ['run_start', 'checkpoint', 'checkpoint', 'end'],
    );
  });

  it('returns only whole lines, also when a multi-byte character straddles a read chunk', () => {
    const file = path.join(tempDir(), 'metrics.jsonl');
    const a = { type: 'log', level: 'info', message: 'λ = 16 ‖ΔB‖/‖ΔA‖ ≈ λ' };
    const b = { type: 'log', level: 'warning', message: 'ünïcödé' };
    const text = line(a) + line(b);
    const cut = Buffer.byteLength(line(a)) + 20;
    fs.writeFileSync(file, Buffer.from(text).subarray(0, cut)); // b is half written
    const tail = new MetricsTail(file, 7); // 7-byte reads: chunk edges fall inside 'λ', '‖', 'ü'
    assert.deepEqual(tail.read().events, [a]);
    assert.deepEqual(tail.read().events, []);
    fs.writeFileSync(file, text);
    assert.deepEqual(tail.read(), { events: [b], reset: false });
  });

  it('starts over when the file is replaced (a resume) or disappears, and skips a torn line', () => {
    const dir = tempDir();
    const file = path.join(dir, 'metrics.jsonl');
    const tail = new MetricsTail(file);
    assert.deepEqual(tail.read(), { events: [], reset: false }); // not there yet
    const s = (n: number) => ({ type: 'log', level: 'info', message: `step ${n}` });
    fs.writeFileSync(file, line(s(1)) + line(s(2)) + '{"type":"log","lev\n' + line(s(3)));
    assert.deepEqual(tail.read().events, [s(1), s(2), s(3)]);
    // What writeFileAtomic does on resume: a new file renamed over the old one, holding the kept lines.
    fs.writeFileSync(`${file}.tmp`, line(s(1)) + line(s(9)));
    fs.renameSync(`${file}.tmp`, file);
    assert.deepEqual(tail.read(), { events: [s(1), s(9)], reset: true });
    fs.rmSync(file);
    assert.deepEqual(tail.read(), { events: [], reset: true });
    assert.deepEqual(tail.readAll(), []);
  });
});

describe('dashboardSummary', () => {
  it('takes the header’s config from config.yaml and the status from the file, or else from the process', () => {
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'config.yaml'),
      'model: /models/stories260k\ntask: causal-lm\ndevice: wasm\nlora:\n  r: 4\n  lora_alpha: 8\ntraining:\n  learning_rate: 0.002\n  loraplus_lr_ratio: 16\n',
    );
    const events: EngineEvent[] = [
      {
        type: 'step',
        step: 1,
        epoch: 0,
        loss: 2.5,
        lr: {},
        grad_norm: 1,
        tokens_per_s: 1,
        tokens_seen: 1,
        elapsed_s: 1,
        modules: [],
      },
    ];
    const running = dashboardSummary(summarizeEvents(dir, events, true));
    assert.deepEqual(running.config, {
      model: '/models/stories260k',
      task: 'causal-lm',
      r: 4,
      lora_alpha: 8,
      learning_rate: 0.002,
      loraplus_lr_ratio: 16,
      optimizer: 'adamw', // a config.yaml without training.optimizer (older runs) trained LoRA+'s AdamW
      device: 'wasm',
    });
    assert.equal(running.status, 'running');
    assert.equal(running.lastLoss, 2.5);
    // A crash of this window's process is decided by the run feeds (src/vscode/runs/feeds.ts) and reaches the
    // header as the summary's status and error.
    const crashed = dashboardSummary({
      ...summarizeEvents(dir, events, true),
      status: 'failed',
      error: 'the training process ended unexpectedly',
    });
    assert.deepEqual([crashed.status, crashed.error], ['failed', 'the training process ended unexpectedly']);
    const ended: EngineEvent = {
      type: 'end',
      status: 'stopped',
      step: 1,
      elapsed_s: 1,
      final_adapter: null,
      last_checkpoint: null,
    };
    assert.equal(dashboardSummary(summarizeEvents(dir, [...events, ended], true)).status, 'stopped');
  });
});
