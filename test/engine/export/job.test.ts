// The job folder `loraplus export --to accelerate` writes, without Python: every file, the data exactly as our
// engine batches it (rows, labels, the micro-batch order of every step), and refusals.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { epochOrder } from '../../../src/engine/data/datasets';
import { exportJob } from '../../../src/engine/export/job';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const readJsonl = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { input_ids: number[]; labels: number[] | number });

describe('exportJob', () => {
  it('writes train.py, launch files and the data in our order (causal LM, 2 epochs, accumulation)', () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        data: { train: `${SST2}/train.tsv`, text_field: 'sentence', max_length: 16, max_train_samples: 20 },
        training: { batch_size: 3, gradient_accumulation_steps: 2, epochs: 2, seed: 7, eval_every: 0 },
      },
      dir,
    );
    const r = exportJob(config, { out: path.join(dir, 'job') });
    const job = path.join(dir, 'job');
    for (const f of ['train.py', 'launch.sh', 'job.sbatch', 'requirements.txt', 'README.md', 'config.yaml'])
      assert.ok(fs.existsSync(path.join(job, f)), f);
    for (const f of ['single_gpu.yaml', 'multi_gpu.yaml', 'fsdp.yaml'])
      assert.ok(fs.existsSync(path.join(job, 'accelerate', f)), f);
    assert.ok(fs.statSync(path.join(job, 'launch.sh')).mode & 0o100);
    const rows = readJsonl(path.join(job, 'data', 'train.jsonl'));
    assert.equal(rows.length, r.trainExamples);
    assert.ok(rows.every((row) => row.input_ids.length === 16));
    assert.deepEqual(rows[0].labels, rows[0].input_ids); // causal LM: transformers shifts the labels itself
    const order = JSON.parse(fs.readFileSync(path.join(job, 'data', 'order.json'), 'utf8')) as number[][];
    const perEpoch = Math.ceil(r.trainExamples / 3);
    assert.equal(order.length, r.steps * 2);
    assert.deepEqual(order[0], epochOrder(r.trainExamples, 7, 0, true).slice(0, 3));
    assert.deepEqual(order[perEpoch], epochOrder(r.trainExamples, 7, 1, true).slice(0, 3));
    const settings = JSON.parse(fs.readFileSync(path.join(job, 'job.json'), 'utf8'));
    assert.deepEqual(settings.lora.target_modules, ['q_proj', 'v_proj']); // the llama family's default
    assert.equal(settings.training.total_steps, r.steps);
    assert.throws(() => exportJob(config, { out: job }), /not empty/);
  });

  it('sft rows carry -100 where a token has no loss', () => {
    const dir = tempDir();
    const chat = path.join(SHARED, 'data', 'sst2-chat');
    const config = configFromObject(
      {
        model: path.join(SHARED, 'models', 'tiny-random-qwen3'),
        task: 'sft',
        data: { train: `${chat}/messages.train.jsonl`, max_length: 128, max_train_samples: 4 },
        training: { batch_size: 2, max_steps: 2, eval_every: 0 },
      },
      dir,
    );
    exportJob(config, { out: path.join(dir, 'job') });
    const rows = readJsonl(path.join(dir, 'job', 'data', 'train.jsonl'));
    for (const row of rows) {
      const labels = row.labels as number[];
      assert.ok(labels.includes(-100) && labels.some((l) => l !== -100));
      labels.forEach((l, t) => assert.ok(l === -100 || l === row.input_ids[t]));
    }
  });
});
