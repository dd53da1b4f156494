// `loraplus train CONFIG --engine torch`: the run exported into <run>/job and trained by the user's Python, its
// events streamed as our engine's. Runs when a Python with torch, transformers, peft and accelerate is here; the
// missing-stack error is checked everywhere.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { summarizeRun } from '../../src/engine/runs/summary';
import { runCli } from '../helpers/cli';
import { requireValidConfig } from '../../src/config/load';
import { readMetrics } from '../../src/engine/runs/writer';
import { train } from '../../src/engine/train/train';
import type { EngineEvent } from '../../src/protocol/events';
import { EXPORT_MODULES, losses, maxDeviation } from '../helpers/export-job';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);

function writeConfig(dir: string): string {
  const file = path.join(dir, 'torch.lora.yaml');
  fs.writeFileSync(
    file,
    `model: ${STORIES}
data: {train: ${SST2}/train.tsv, text_field: sentence, max_length: 32, max_train_samples: 40}
training: {batch_size: 4, max_steps: 4, eval_every: 0, save_every: 2}
`,
  );
  return file;
}

async function withPython<T>(py: string, f: () => Promise<T>): Promise<T> {
  const before = process.env.LORAPLUS_PYTHON;
  process.env.LORAPLUS_PYTHON = py;
  try {
    return await f();
  } finally {
    if (before === undefined) delete process.env.LORAPLUS_PYTHON;
    else process.env.LORAPLUS_PYTHON = before;
  }
}

describe('loraplus train --engine torch', () => {
  it('says what to pip install when the Python stack is missing, and writes nothing', async () => {
    const dir = tempDir();
    const r = await withPython(path.join(dir, 'no-python'), () =>
      runCli(['train', writeConfig(dir), '--engine', 'torch', '--run-dir', path.join(dir, 'run')]),
    );
    assert.equal(r.code, 1);
    assert.match(r.err, /pip install torch transformers peft accelerate/);
    assert.ok(!fs.existsSync(path.join(dir, 'run')));
  });

  it(
    'trains the exported job and streams its events',
    { skip: python ? false : noPython(EXPORT_MODULES) },
    async () => {
      const dir = tempDir();
      const runDir = path.join(dir, 'run');
      const r = await withPython(python!, () =>
        runCli(['train', writeConfig(dir), '--engine', 'torch', '--run-dir', runDir]),
      );
      assert.equal(r.code, 0, r.err);
      const s = summarizeRun(runDir, false);
      assert.equal(s.status, 'finished');
      assert.equal(s.start?.backend, 'torch');
      assert.equal(s.step, 4);
      assert.ok(fs.existsSync(path.join(runDir, 'job', 'train.py')));
      assert.ok(fs.existsSync(path.join(runDir, 'final', 'adapter_model.safetensors')));
    },
  );

  it(
    'device: torch without an init adapter starts from the adapter our engine draws: both stacks train alike',
    { skip: python ? false : noPython(EXPORT_MODULES) },
    async () => {
      const dir = tempDir();
      const yaml = (device: string) => `model: ${STORIES}
task: sequence-classification
device: ${device}
data: {train: ${SST2}/train.tsv, eval: ${SST2}/dev.tsv, text_field: sentence, max_length: 32,
       max_train_samples: 48, max_eval_samples: 16}
lora: {r: 4, lora_alpha: 8, target_modules: all-linear}
training: {learning_rate: 1.0e-3, loraplus_lr_ratio: 16, batch_size: 4, max_steps: 6, log_every: 1, eval_every: 3,
           save_every: 0, seed: 3}
`;
      fs.writeFileSync(path.join(dir, 'torch.lora.yaml'), yaml('torch'));
      fs.writeFileSync(path.join(dir, 'ours.lora.yaml'), yaml('wasm'));
      const torchRun = path.join(dir, 'torch-run');
      const r = await withPython(python!, () =>
        runCli(['train', path.join(dir, 'torch.lora.yaml'), '--run-dir', torchRun]),
      );
      assert.equal(r.code, 0, r.err);
      const theirs = readMetrics(torchRun);
      assert.equal(summarizeRun(torchRun, false).start?.backend, 'torch');
      const ours: EngineEvent[] = [];
      const config = requireValidConfig(path.join(dir, 'ours.lora.yaml'));
      await useBackend();
      await train(config, (e) => ours.push(e), undefined, { runDir: path.join(dir, 'ours-run') });
      for (const type of ['step', 'eval'] as const) {
        assert.equal(losses(theirs, type).length, losses(ours, type).length, type);
        const d = maxDeviation(losses(ours, type), losses(theirs, type), true);
        assert.ok(d < 1e-4, `${type}: max relative |Δloss| ${d}`);
      }
    },
  );

  it(
    'a stop (the signal train() gets) checkpoints and ends stopped; resume finishes it, and PEFT loads final/',
    { skip: python ? false : noPython(EXPORT_MODULES) },
    async () => {
      const dir = tempDir();
      const file = path.join(dir, 'stop.lora.yaml');
      fs.writeFileSync(
        file,
        `model: ${STORIES}
device: torch
data: {train: ${SST2}/train.tsv, text_field: sentence, max_length: 32, max_train_samples: 400}
training: {batch_size: 4, max_steps: 60, eval_every: 0, save_every: 0, log_every: 1}
`,
      );
      const config = requireValidConfig(file);
      const runDir = path.join(dir, 'run');
      const stop = new AbortController();
      const onEvent = (e: EngineEvent) => e.type === 'step' && e.step >= 3 && stop.abort();
      const first = await train(config, onEvent, stop.signal, { runDir, python: python! });
      assert.equal(first.status, 'stopped');
      assert.ok(first.step >= 3 && first.step < 60, `stopped at ${first.step}`);
      assert.ok(first.lastCheckpoint && fs.existsSync(first.lastCheckpoint), 'a checkpoint to resume from');
      assert.equal(summarizeRun(runDir, false).status, 'stopped');
      const second = await train(config, () => {}, undefined, { runDir, resume: true, python: python! });
      assert.equal(second.status, 'finished');
      assert.equal(second.step, 60);
      const loaded = runPython(
        python!,
        [
          'import sys',
          'from transformers import AutoModelForCausalLM',
          'from peft import PeftModel',
          'model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sys.argv[1]), sys.argv[2])',
          'print(sum(1 for n, _ in model.named_parameters() if "lora_B" in n))',
        ].join('\n'),
        [STORIES, second.finalAdapter!],
      );
      assert.equal(Number(loaded.trim().split('\n').at(-1)), 10); // q and v of 5 layers
    },
  );
});
