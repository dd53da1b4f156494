// The exported job with training.optimizer riemannian and lorafa: train.py calls PEFT's create_riemannian_optimizer
// and create_lorafa_optimizer, and must give our engine's losses on the same config, init adapter and data. Runs
// when a Python with torch, transformers, peft and accelerate is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors, makeAdapterConfig, saveAdapter } from '../../src/adapters/peft';
import { readSafetensors } from '../../src/adapters/safetensors';
import { requireValidConfig } from '../../src/config/load';
import { train } from '../../src/engine/train/train';
import type { EngineEvent, RunStartEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { EXPORT_MODULES, launch, losses, maxDeviation } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { REFERENCE, SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);

describe(
  'loraplus export --to accelerate, PEFT optimizers',
  { skip: python ? false : noPython(EXPORT_MODULES) },
  () => {
    const dir = tempDir();
    before(async () => {
      await useBackend();
      const init = adapterWeightsFromSafetensors(
        readSafetensors(path.join(REFERENCE, 'loraplus_llama.init_adapter.safetensors')).tensors,
        'init',
      );
      const config = makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] });
      saveAdapter(path.join(dir, 'init'), { ...init, config });
    });

    for (const optimizer of ['riemannian', 'lorafa']) {
      it(`${optimizer}: torch's losses equal ours within 1e-4 relative`, async () => {
        const file = path.join(dir, `${optimizer}.lora.yaml`);
        fs.writeFileSync(
          file,
          `model: ${STORIES}
device: wasm
data: {train: ${SST2}/train.tsv, text_field: sentence, max_length: 32, max_train_samples: 80}
lora: {r: 4, lora_alpha: 8, init_adapter: init}
training: {optimizer: ${optimizer}, learning_rate: 2.0e-3, batch_size: 4, max_steps: 8, lr_scheduler: linear,
           warmup_steps: 2, max_grad_norm: 1.0, eval_every: 0, save_every: 0, weight_decay: 0.01}
`,
        );
        const job = path.join(dir, `job-${optimizer}`);
        const exported = await runCli(['export', file, '--out', job]);
        assert.equal(exported.code, 0, exported.err);
        const torch = launch(python!, job, path.join(dir, `torch-${optimizer}`), ['--cpu', '--num_processes', '1']);
        const start = torch.find((e): e is RunStartEvent => e.type === 'run_start')!;
        assert.equal(start.optimizer, optimizer);
        const ours: EngineEvent[] = [];
        const runDir = path.join(dir, `ours-${optimizer}`);
        await train(requireValidConfig(file), (e) => ours.push(e), undefined, { runDir });
        const d = maxDeviation(losses(ours, 'step'), losses(torch, 'step'), true);
        assert.equal(losses(torch, 'step').length, 8);
        assert.ok(d < 1e-4, `max relative |Δloss| ${d} (measured about 2.6e-7 on 12 steps)`);
      });
    }
  },
);
