// The job folder `loraplus export --to accelerate` writes, without Python: every file, the data exactly as our
// engine batches it (rows, labels, the micro-batch order of every step), and refusals.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { epochOrder } from '../../../src/engine/data/datasets';
import { loadAdapter } from '../../../src/adapters/peft';
import { exportJob } from '../../../src/engine/export/job';
import { train } from '../../../src/engine/train/train';
import { SHARED, SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const readJsonl = (file: string) =>
  fs
    .readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { input_ids: number[]; labels: number[] | number });

describe('exportJob', () => {
  it('writes train.py, launch files and the data in our order (causal LM, 2 epochs, accumulation)', async () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        data: { train: `${SST2}/train.tsv`, text_field: 'sentence', max_length: 16, max_train_samples: 20 },
        training: { batch_size: 3, gradient_accumulation_steps: 2, epochs: 2, seed: 7, eval_every: 0 },
      },
      dir,
    );
    const r = await exportJob(config, { out: path.join(dir, 'job') });
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
    // The llama family's default targets (q, v), as the modules of the start adapter our engine drew.
    const targets = settings.lora.target_modules as string[];
    assert.deepEqual(new Set(targets.map((m) => m.split('.').pop())), new Set(['q_proj', 'v_proj']));
    assert.equal(targets.length, 2 * 5);
    assert.equal(settings.training.total_steps, r.steps);
    await assert.rejects(() => exportJob(config, { out: job }), /not empty/);
  });

  it('sft rows carry -100 where a token has no loss', async () => {
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
    await exportJob(config, { out: path.join(dir, 'job') });
    const rows = readJsonl(path.join(dir, 'job', 'data', 'train.jsonl'));
    for (const row of rows) {
      const labels = row.labels as number[];
      assert.ok(labels.includes(-100) && labels.some((l) => l !== -100));
      labels.forEach((l, t) => assert.ok(l === -100 || l === row.input_ids[t]));
    }
  });

  it('without lora.init_adapter, writes the adapter our engine starts from (head included), so both stacks start equal', async () => {
    const dir = tempDir();
    const doc = {
      model: STORIES,
      task: 'sequence-classification',
      device: 'wasm',
      data: { train: `${SST2}/train.tsv`, text_field: 'sentence', max_length: 16, max_train_samples: 24 },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'o_proj'] },
      training: {
        batch_size: 4,
        max_steps: 3,
        seed: 11,
        eval_every: 0,
        save_every: 0,
        learning_rate: 1e-3,
        log_every: 1,
      },
    };
    await exportJob(configFromObject(doc, dir), { out: path.join(dir, 'job') });
    const job = JSON.parse(fs.readFileSync(path.join(dir, 'job', 'job.json'), 'utf8'));
    assert.equal(job.lora.init_adapter, 'init_adapter/adapter_model.safetensors');
    assert.equal(job.lora.target_modules.length, 2 * 5); // q and o in each of stories260k's 5 layers
    const init = loadAdapter(path.join(dir, 'job', 'init_adapter'));
    assert.ok(init.modulesToSave.has('score.weight'), 'the fresh head is part of the start');
    const losses = async (extra: object, name: string) => {
      const config = configFromObject({ ...doc, lora: { ...doc.lora, ...extra } }, dir);
      const seen: number[] = [];
      await useBackend();
      await train(config, (e) => e.type === 'step' && seen.push(e.loss), undefined, { runDir: path.join(dir, name) });
      return seen;
    };
    const drawn = await losses({}, 'drawn');
    const given = await losses({ init_adapter: path.join(dir, 'job', 'init_adapter') }, 'given');
    assert.equal(drawn.length, 3);
    assert.deepEqual(given, drawn);
  });
});
