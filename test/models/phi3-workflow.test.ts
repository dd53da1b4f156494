// Phi-3 through the whole workflow, with LoRA on its fused Linears as PEFT puts it there (one adapter on qkv_proj,
// lora_B [q+k+v, r]): LoRA+ training on the default target (the loss falls, no tensor leaks, the A/B figures per
// fused module), merge into the fused weight under the checkpoint's own key, compare, `loraplus info` / `generate`,
// and the editor's view of the model (module names, positions, target_modules completion, the New Config template).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter, makeAdapterConfig, type Adapter } from '../../src/adapters/peft';
import { loadModelWeights, readSafetensors, type HostTensor } from '../../src/adapters/safetensors';
import { configFromObject } from '../../src/config/load';
import { configTemplate } from '../../src/config/template';
import { checkConfigText } from '../../src/engine/checks/config';
import { inspectModel } from '../../src/engine/checks/inspect';
import { compare } from '../../src/engine/compare/compare';
import { Rng } from '../../src/engine/data/rng';
import { compareLogits, probeBatch, probeLogits } from '../../src/engine/merge/check';
import { mergeAdapters } from '../../src/engine/merge/merge';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { Trainables } from '../../src/engine/train/trainables';
import type { Task } from '../../src/models/types';
import type { EngineEvent, StepEvent } from '../../src/protocol/events';
import { describeModel, planConfig } from '../../src/vscode/editor/new-config-plan';
import { suggestionsAt } from '../../src/vscode/editor/suggest';
import { runCli } from '../helpers/cli';
import { headerOf, rand, saved } from '../engine/merge/fixtures';
import { SHARED, SST2, tempDir, useBackend } from '../helpers/shared';

const PHI3 = path.join(SHARED, 'models', 'tiny-random-phi3');

/** LoRA r 4 (non-zero B) on both fused Linears of both layers (and o_proj); with `labels`, a trained `score`. */
export function fusedAdapter(base: string, seed: number, labels = 0): Adapter {
  const rng = new Rng(seed);
  const lora = new Map<string, { A: HostTensor; B: HostTensor }>();
  for (let i = 0; i < 2; i++)
    for (const [m, out] of [
      ['self_attn.qkv_proj', 96],
      ['self_attn.o_proj', 32],
      ['mlp.gate_up_proj', 128],
    ] as const)
      lora.set(`model.layers.${i}.${m}`, { A: rand([4, 32], rng, 0.3), B: rand([out, 4], rng, 0.2) });
  const config = makeAdapterConfig({
    r: 4,
    lora_alpha: 8,
    target_modules: ['qkv_proj', 'o_proj', 'gate_up_proj'],
    base_model_name_or_path: base,
    task_type: labels ? 'SEQ_CLS' : 'CAUSAL_LM',
    modules_to_save: labels ? ['score'] : null,
  });
  return { config, lora, modulesToSave: new Map(labels ? [['score.weight', rand([labels, 32], rng, 0.5)]] : []) };
}

async function logits(dir: string, task: Task, labels: number, adapterDir?: string): Promise<Float32Array> {
  const folder = openModelFolder(dir);
  const model = buildModel(folder, task, labels, new Rng(0));
  const weights = adapterDir ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapterDir)) : undefined;
  try {
    return await probeLogits(model, probeBatch(folder, task, model.vocabSize), weights);
  } finally {
    weights?.dispose();
    model.dispose();
  }
}

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
let trained = ''; // the final adapter of the training test, for generate

describe('phi3 workflow', () => {
  before(() => useBackend());

  it('train(): LoRA+ on the default qkv_proj lowers the loss, tensors flat, one module per fused Linear', async () => {
    const dir = tempDir();
    const config = configFromObjectFor(dir);
    const events: EngineEvent[] = [];
    const counts: number[] = [];
    const result = await train(config, (e) => {
      events.push(e);
      if (e.type === 'step') counts.push(tf.memory().numTensors);
    });
    assert.equal(result.status, 'finished');
    assert.ok(
      counts.slice(2).every((n) => n === counts[1]),
      `tensors per step: ${counts.join(' ')}`,
    );
    const steps = events.filter((e): e is StepEvent => e.type === 'step');
    const losses = steps.map((e) => e.loss);
    assert.ok(mean(losses.slice(-3)) < mean(losses.slice(0, 3)) - 0.1, `losses ${losses.map((l) => l.toFixed(3))}`);
    // The A/B view's figures: one entry per fused module, with both halves moving.
    const last = steps.at(-1)!.modules;
    assert.deepEqual(
      last.map((m) => m.module),
      ['model.layers.0.self_attn.qkv_proj', 'model.layers.1.self_attn.qkv_proj'],
    );
    for (const m of last) assert.ok([m.grad_A, m.grad_B, m.delta_A, m.delta_B, m.out_A!, m.out_B!].every((v) => v > 0));
    // PEFT's layout: one lora_A [r, hidden] and one lora_B [q+k+v, r] per fused Linear, under its own name.
    trained = result.finalAdapter!;
    const adapter = loadAdapter(trained);
    assert.deepEqual(adapter.config.target_modules, ['qkv_proj']);
    const keys = [...readSafetensors(path.join(trained, 'adapter_model.safetensors')).tensors].map(([k, t]) => [
      k,
      t.shape.join('×'),
    ]);
    assert.deepEqual(keys.sort(), [
      ['base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight', '8×32'],
      ['base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight', '96×8'],
      ['base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight', '8×32'],
      ['base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight', '96×8'],
    ]);
  });

  it('merge: W_qkv + s·B·A under its own key; logits of base + adapter (≤ 1e-4); the rest as stored', async () => {
    const adapter = fusedAdapter(PHI3, 1);
    const adapterDir = saved(adapter);
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.passed, s.merge_check.failures.join('; '));
    assert.ok(s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    const merged = await logits(out, 'causal-lm', 0);
    const vsRef = compareLogits(merged, await logits(PHI3, 'causal-lm', 0, adapterDir));
    const vsBase = compareLogits(merged, await logits(PHI3, 'causal-lm', 0));
    assert.ok(vsRef.max_abs_diff <= 1e-4, `merged vs base + adapter: ${vsRef.max_abs_diff}`);
    assert.ok(vsBase.max_abs_diff > 1e-2, `the adapter changes the logits: ${vsBase.max_abs_diff}`);
    assert.deepEqual(headerOf(out), headerOf(PHI3));
    const [b, m] = [loadModelWeights(PHI3), loadModelWeights(out)];
    const key = 'model.layers.1.self_attn.qkv_proj.weight';
    const { A, B } = adapter.lora.get('model.layers.1.self_attn.qkv_proj')!;
    const want = tf.add(
      tf.tensor2d(b.get(key)!.data as Float32Array, [96, 32]),
      tf.mul(2, tf.matMul(tensor(B), tensor(A))),
    );
    const got = tf.tensor2d(m.get(key)!.data as Float32Array, [96, 32]);
    assert.ok(tf.max(tf.abs(tf.sub(got, want))).dataSync()[0] < 1e-6, 'the fused weight gets one ΔW [q+k+v, hidden]');
    for (const k of ['model.layers.0.mlp.down_proj.weight', 'lm_head.weight', 'model.embed_tokens.weight'])
      assert.deepEqual(m.get(k)!.data, b.get(k)!.data, k);
  });

  it('merge of a classifier: score added, Phi3ForSequenceClassification', async () => {
    const adapterDir = saved(fusedAdapter(PHI3, 2, 3));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.max_abs_diff! <= 1e-4, s.merge_check.failures.join('; '));
    const config = openModelFolder(out).config;
    assert.deepEqual(config.architectures, ['Phi3ForSequenceClassification']);
    assert.ok(headerOf(out).has('score.weight'));
  });

  it('compare: each fused Linear is one module, its ΔW [q+k+v, hidden] of rank r', () => {
    const [a, b] = [saved(fusedAdapter(PHI3, 3)), saved(fusedAdapter(PHI3, 4))];
    const report = compare([a, b]);
    const mods = report.modules[0];
    assert.equal(mods.length, 6);
    const qkv = mods.find((x) => x.module === 'model.layers.0.self_attn.qkv_proj')!;
    assert.equal(qkv.kind, 'self_attn.qkv_proj');
    assert.deepEqual([qkv.shape, qkv.sigma.length], [[96, 32], 4]);
    assert.ok(report.similarity[0].modules.some((x) => x.module === 'model.layers.1.mlp.gate_up_proj'));
  });

  it('loraplus info lists the fused Linears; generate runs with and without the trained adapter', async () => {
    const { code, out } = await runCli(['info', PHI3, '--json', '--device', 'wasm']);
    assert.equal(code, 0);
    const info = JSON.parse(out);
    assert.deepEqual([info.family, info.task, info.default_target_modules], ['phi3', 'causal-lm', ['qkv_proj']]);
    assert.deepEqual(info.target_module_names, ['qkv_proj', 'o_proj', 'gate_up_proj', 'down_proj', 'lm_head']);
    assert.deepEqual(
      info.linears.find((l: { name: string }) => l.name === 'model.layers.0.self_attn.qkv_proj'),
      { name: 'model.layers.0.self_attn.qkv_proj', in: 32, out: 96, bias: false },
    );
    const plain = await runCli([
      'generate',
      PHI3,
      '--prompt',
      'a gripping film',
      '--max-new-tokens',
      '6',
      '--device',
      'wasm',
    ]);
    assert.equal(plain.code, 0, plain.err);
    assert.ok(plain.out.startsWith('a gripping film'), plain.out);
    if (trained) {
      const adapted = await runCli([
        'generate',
        PHI3,
        '--prompt',
        'a gripping film',
        '--max-new-tokens',
        '6',
        '--adapter',
        trained,
        '--device',
        'wasm',
      ]);
      assert.equal(adapted.code, 0, adapted.err);
    }
  });

  it('the editor: module names and positions from the headers, target_modules completion, a valid New Config', () => {
    const inspected = inspectModel(PHI3);
    assert.ok(inspected.ok);
    const m = inspected.value;
    assert.deepEqual(m.linears.get('model.layers.0.self_attn.qkv_proj'), [96, 32]);
    assert.deepEqual(m.linears.get('model.layers.1.mlp.gate_up_proj'), [128, 32]);
    assert.deepEqual(m.positions, { max: 128, learned: false });

    const text =
      'model: ../models/tiny-random-phi3\ndata:\n  train: glue-sst2/train.tsv\nlora:\n  target_modules: []\n';
    const items = suggestionsAt(text, text.indexOf('[]') + 1, path.join(SHARED, 'data'), '[');
    const qkv = items.find((s) => s.label === 'qkv_proj')!;
    assert.ok(qkv.preselect);
    assert.match(qkv.detail, /^2 Linears 96×32 · phi3 default$/);
    for (const n of ['o_proj', 'gate_up_proj', 'down_proj'])
      assert.ok(
        items.some((s) => s.label === n),
        n,
      );

    for (const task of ['causal-lm', 'sequence-classification'] as const) {
      const dir = tempDir();
      const choice = describeModel(PHI3);
      assert.ok(choice.ok);
      const yaml = configTemplate(
        planConfig(dir, choice.value, task, {
          train: path.join(SST2, 'train.tsv'),
          eval: path.join(SST2, 'dev.tsv'),
          evalFraction: 0,
          textField: 'sentence',
          labelField: 'label',
        }),
      );
      const { config, problems } = checkConfigText(yaml, dir);
      const serious = problems.filter((p) => p.severity === 'error' || p.severity === 'warning');
      assert.deepEqual(
        serious.map((p) => `${p.line}: ${p.message}`),
        [],
        yaml,
      );
      assert.deepEqual(config!.lora.target_modules, ['qkv_proj']);
      assert.ok(config!.data.max_length <= 128);
    }
  });
});

function tensor(h: HostTensor): tf.Tensor2D {
  return tf.tensor2d(h.data as Float32Array, h.shape as [number, number]);
}

function configFromObjectFor(dir: string) {
  return configFromObject(
    {
      model: PHI3,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: 'runs',
      run_name: 'phi3',
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 64 },
      lora: { r: 8, lora_alpha: 16 }, // target_modules: the phi3 default, qkv_proj
      training: { learning_rate: 5e-3, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 12, lr_scheduler: 'constant' },
    },
    dir,
  );
}
