// `loraplus export --to accelerate` run for real: the job on 1 and 2 CPU processes (DDP must average to the same
// losses), against our own engine on the same config, init adapter and data; the run folder it writes read by our
// readers, its final/ adapter loaded and merged. Runs when a Python with torch, transformers, peft and accelerate
// is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors, loadAdapter, makeAdapterConfig, saveAdapter } from '../../src/adapters/peft';
import { readSafetensors } from '../../src/adapters/safetensors';
import { requireValidConfig } from '../../src/config/load';
import { summarizeRun } from '../../src/engine/runs/summary';
import { train } from '../../src/engine/train/train';
import type { EngineEvent, RunStartEvent, StepEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { EXPORT_MODULES, launch, launchTwoNodes, losses, maxDeviation, twoProcesses } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { REFERENCE, SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const python = pythonWith(EXPORT_MODULES);

/** 12 LoRA+ steps on stories260k: accumulation 2, warmup + linear decay, clipping, evals and checkpoints. */
function writeConfig(dir: string): string {
  const init = adapterWeightsFromSafetensors(
    readSafetensors(path.join(REFERENCE, 'loraplus_llama.init_adapter.safetensors')).tensors,
    'init',
  );
  const config = makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] });
  saveAdapter(path.join(dir, 'init'), { ...init, config });
  const yaml = `model: ${STORIES}
task: causal-lm
device: wasm
data: {train: ${SST2}/train.tsv, eval: ${SST2}/dev.tsv, text_field: sentence, max_length: 32,
       max_train_samples: 120, max_eval_samples: 16}
lora: {r: 4, lora_alpha: 8, init_adapter: init}
training: {learning_rate: 2.0e-3, loraplus_lr_ratio: 16, batch_size: 4, gradient_accumulation_steps: 2,
           max_steps: 12, lr_scheduler: linear, warmup_steps: 3, max_grad_norm: 1.0, eval_every: 6, save_every: 6}
`;
  fs.writeFileSync(path.join(dir, 'export.lora.yaml'), yaml);
  return path.join(dir, 'export.lora.yaml');
}

describe('loraplus export --to accelerate, run', { skip: python ? false : noPython(EXPORT_MODULES) }, () => {
  const dir = tempDir();
  const job = path.join(dir, 'job');
  let one: EngineEvent[] = [];
  let two: EngineEvent[] = [];

  before(async () => {
    await useBackend();
    const exported = await runCli(['export', writeConfig(dir), '--to', 'accelerate', '--out', job]);
    assert.equal(exported.code, 0, exported.err);
    one = launch(python!, job, path.join(dir, 'one'), ['--cpu', '--num_processes', '1']);
    two = launch(python!, job, path.join(dir, 'two'), await twoProcesses());
  });

  it('2 processes (DDP) give the losses of 1 with the same global batch, within 1e-5', () => {
    const start = two.find((e) => e.type === 'run_start');
    assert.equal(start && 'world_size' in start && start.world_size, 2);
    for (const type of ['step', 'eval'] as const) {
      const [a, b] = [losses(one, type), losses(two, type)];
      assert.equal(a.length, type === 'step' ? 12 : 3);
      const d = maxDeviation(a, b);
      assert.ok(d < 1e-5, `${type}: max |Δloss| ${d} (measured 4.9e-7)`);
    }
  });

  it('equals our TF.js engine on the same config, init adapter and data, within 1e-4 relative', async () => {
    const config = requireValidConfig(path.join(dir, 'export.lora.yaml'));
    const ours: EngineEvent[] = [];
    await train(config, (e) => ours.push(e), undefined, { runDir: path.join(dir, 'ours') });
    for (const type of ['step', 'eval'] as const) {
      const d = maxDeviation(losses(ours, type), losses(one, type), true);
      assert.ok(d < 1e-4, `${type}: max relative |Δloss| ${d} (measured 3.2e-7)`);
    }
    const [s1, s2] = [ours, one].map((ev) => ev.filter((e): e is StepEvent => e.type === 'step')[4]);
    assert.deepEqual(Object.keys(s2.lr).sort(), Object.keys(s1.lr).sort());
    for (const k of Object.keys(s1.lr)) assert.ok(Math.abs(s1.lr[k] - s2.lr[k]) < 1e-12, `lr ${k}`);
  });

  it('writes a run folder our readers, loadAdapter and loraplus merge take', async () => {
    const runDir = path.join(dir, 'two');
    const s = summarizeRun(runDir, false);
    assert.equal(s.status, 'finished');
    assert.equal(s.step, 12);
    assert.equal(s.settings.ratio, 16);
    assert.equal(s.checkpoints.length, 1); // step-6; step 12 is final/
    const step = two.filter((e): e is StepEvent => e.type === 'step').at(-1)!; // at step 1 B = 0, so ∇A = 0
    assert.equal(step.modules.length, 10); // q_proj and v_proj of 5 layers: the A/B view's figures
    assert.ok(step.modules.every((m) => m.grad_A > 0 && m.delta_B > 0 && m.out_B! > 0));
    const adapter = loadAdapter(path.join(runDir, 'final'));
    assert.equal(adapter.lora.size, 10);
    assert.equal(adapter.loraplus?.loraplus_lr_ratio, 16);
    const merged = await runCli(['merge', '--adapter', path.join(runDir, 'final'), '--out', path.join(dir, 'merged')]);
    assert.equal(merged.code, 0, merged.err);
    assert.ok(fs.existsSync(path.join(dir, 'merged', 'config.json')));
  });

  it('--resume continues a run cut after its step-6 checkpoint to the same losses', () => {
    // What a killed job leaves: its events up to the checkpoint (and perhaps a few more) and the checkpoint.
    const [from, cut] = [path.join(dir, 'one'), path.join(dir, 'cut')];
    fs.mkdirSync(path.join(cut, 'checkpoints'), { recursive: true });
    fs.cpSync(path.join(from, 'checkpoints', 'step-6'), path.join(cut, 'checkpoints', 'step-6'), { recursive: true });
    const lines = fs.readFileSync(path.join(from, 'metrics.jsonl'), 'utf8').split('\n');
    const kept = lines.slice(0, lines.findIndex((l) => l.includes('"type": "checkpoint"')) + 2); // + step 7
    fs.writeFileSync(path.join(cut, 'metrics.jsonl'), kept.join('\n') + '\n');
    const resumed = launch(python!, job, cut, ['--cpu', '--num_processes', '1'], '--resume');
    const start = resumed.filter((e): e is RunStartEvent => e.type === 'run_start').at(-1)!;
    assert.equal(start.start_step, 6);
    const after = resumed.slice(resumed.indexOf(start));
    const d = maxDeviation(losses(one, 'step').slice(6), losses(after, 'step'));
    assert.ok(d < 1e-6, `max |Δloss| after the resume ${d}`);
    assert.equal(summarizeRun(cut, false).status, 'finished');
  });

  it('a two-node launch on loopback (machine ranks 0 and 1) gives the same losses', async () => {
    const nodes = await launchTwoNodes(python!, job, path.join(dir, 'nodes'));
    const start = nodes.find((e): e is RunStartEvent => e.type === 'run_start')!;
    assert.equal(start.world_size, 2);
    assert.ok(maxDeviation(losses(one, 'step'), losses(nodes, 'step')) < 1e-5);
  });
});
