// sft training as TRL and transformers do it: gradient accumulation divides by the answer tokens of the whole
// accumulated batch, so two micro-batches of 2 rows take exactly the steps one batch of 4 takes; packing trains too,
// says what it saved, and leaks no tensors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { configFromObject } from '../../../src/config/load';
import { train } from '../../../src/engine/train/train';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import { SHARED, tempDir, useBackend } from '../../helpers/shared';

function config(dir: string, name: string, data: Record<string, unknown>, training: Record<string, unknown>) {
  return configFromObject(
    {
      model: path.join(SHARED, 'models', 'tiny-random-qwen3'),
      task: 'sft',
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: name,
      data: {
        train: path.join(SHARED, 'data', 'sst2-chat', 'messages.train.jsonl'),
        max_train_samples: 8,
        max_length: 128,
        ...data,
      },
      lora: { r: 4, lora_alpha: 8, lora_dropout: 0, target_modules: 'all-linear' },
      training: { learning_rate: 1e-3, shuffle: false, max_steps: 3, log_every: 1, save_every: 0, ...training },
    },
    dir,
  );
}

const losses = (events: EngineEvent[]) => events.filter((e): e is StepEvent => e.type === 'step').map((e) => e.loss);

describe('sft training', () => {
  before(() => useBackend());

  it('gradient accumulation normalises over the answer tokens of the whole accumulated batch', async () => {
    const dir = tempDir();
    // Answers of very different lengths: the mean of the micro-batches' means would differ from the mean over all.
    const answers = ['a long answer that goes on about the film and its actors at length', 'no', 'fine', 'yes'];
    const file = path.join(dir, 'varied.jsonl');
    const row = (a: string, i: number) =>
      JSON.stringify({
        messages: [
          { role: 'user', content: `review ${i}` },
          { role: 'assistant', content: a },
        ],
      });
    fs.writeFileSync(file, [...answers, ...answers].map(row).join('\n'));
    const [one, two]: EngineEvent[][] = [[], []];
    await train(config(dir, 'one', { train: file }, { batch_size: 4 }), (e) => one.push(e));
    const twoConfig = config(dir, 'two', { train: file }, { batch_size: 2, gradient_accumulation_steps: 2 });
    await train(twoConfig, (e) => two.push(e));
    const [a, b] = [losses(one), losses(two)];
    assert.equal(a.length, 3);
    a.forEach((l, i) => assert.ok(Math.abs(l - b[i]) <= 1e-5 * l, `step ${i + 1}: ${l} vs ${b[i]}`));
  });

  it('packing trains, reports the padding it saved, and keeps the tensor count flat', async () => {
    const dir = tempDir();
    const events: EngineEvent[] = [];
    const counts: number[] = [];
    await train(config(dir, 'packed', { packing: true, max_length: 256 }, { batch_size: 2, max_steps: 4 }), (e) => {
      events.push(e);
      if (e.type === 'step') counts.push(tf.memory().numTensors);
    });
    const report = events.find((e) => e.type === 'log' && e.message.startsWith('sft data:'));
    assert.match(
      report && report.type === 'log' ? report.message : '',
      /packed into \d+ blocks: [\d,]+ tokens of padding saved/,
    );
    assert.equal(losses(events).length, 4);
    assert.ok(losses(events).every(Number.isFinite));
    assert.deepEqual(
      counts.slice(1),
      counts.slice(1).map(() => counts[1]),
      'no tensor leaks across steps',
    );
  });
});
