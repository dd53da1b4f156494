// The exported job on sequence classification (stories260k with a `score` head, SST-2, right-padded batches): 2
// processes against 1, and both stacks against each other. The init adapter carries the head too, so neither stack
// draws it. Runs when a Python with torch, transformers, peft and accelerate is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors, makeAdapterConfig, saveAdapter } from '../../src/adapters/peft';
import { readSafetensors } from '../../src/adapters/safetensors';
import { requireValidConfig } from '../../src/config/load';
import { train } from '../../src/engine/train/train';
import type { EngineEvent, EvalEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { EXPORT_MODULES, launch, losses, maxDeviation, twoProcesses } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { REFERENCE, SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);

/** The reference's q/v LoRA pairs plus a small fixed `score` head [2, 64], as a PEFT SEQ_CLS adapter folder. */
function writeInit(dir: string): void {
  const init = adapterWeightsFromSafetensors(
    readSafetensors(path.join(REFERENCE, 'loraplus_llama.init_adapter.safetensors')).tensors,
    'init',
  );
  const head = Float32Array.from({ length: 2 * 64 }, (_, i) => 0.05 * Math.sin(i * 0.7));
  init.modulesToSave.set('score.weight', { dtype: 'float32', data: head, shape: [2, 64] });
  const config = makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'], task_type: 'SEQ_CLS' });
  saveAdapter(path.join(dir, 'init'), { ...init, config });
}

describe('loraplus export --to accelerate, classification', { skip: python ? false : noPython(EXPORT_MODULES) }, () => {
  const dir = tempDir();
  const file = path.join(dir, 'cls.lora.yaml');
  let one: EngineEvent[] = [];
  let two: EngineEvent[] = [];

  before(async () => {
    await useBackend();
    writeInit(dir);
    fs.writeFileSync(
      file,
      `model: ${STORIES}
task: sequence-classification
device: wasm
data: {train: ${SST2}/train.tsv, eval: ${SST2}/dev.tsv, text_field: sentence, max_length: 32,
       max_train_samples: 64, max_eval_samples: 16}
lora: {r: 4, lora_alpha: 8, init_adapter: init}
training: {learning_rate: 1.0e-3, loraplus_lr_ratio: 16, batch_size: 4, gradient_accumulation_steps: 2,
           max_steps: 8, lr_scheduler: linear, warmup_steps: 2, max_grad_norm: 1.0, eval_every: 4, save_every: 0}
`,
    );
    const exported = await runCli(['export', file, '--out', path.join(dir, 'job')]);
    assert.equal(exported.code, 0, exported.err);
    one = launch(python!, path.join(dir, 'job'), path.join(dir, 'one'), ['--cpu', '--num_processes', '1']);
    two = launch(python!, path.join(dir, 'job'), path.join(dir, 'two'), await twoProcesses());
  });

  it('2 processes give the losses of 1, within 1e-5', () => {
    assert.equal(losses(one, 'step').length, 8);
    for (const type of ['step', 'eval'] as const) {
      const d = maxDeviation(losses(one, type), losses(two, type));
      assert.ok(d < 1e-5, `${type}: max |Δloss| ${d} (measured 1.3e-7)`);
    }
  });

  it('equals our TF.js engine within 1e-4 relative (loss and accuracy)', async () => {
    const ours: EngineEvent[] = [];
    await train(requireValidConfig(file), (e) => ours.push(e), undefined, { runDir: path.join(dir, 'ours') });
    for (const type of ['step', 'eval'] as const) {
      const d = maxDeviation(losses(ours, type), losses(one, type), true);
      assert.ok(d < 1e-4, `${type}: max relative |Δloss| ${d} (measured 5.4e-7)`);
    }
    const accuracy = (ev: EngineEvent[]) => ev.filter((e): e is EvalEvent => e.type === 'eval').map((e) => e.accuracy);
    assert.deepEqual(accuracy(one), accuracy(ours));
  });
});
