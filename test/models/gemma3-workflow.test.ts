// Gemma 3 through the whole workflow: LoRA+ training on all-linear (the loss falls, no tensor leaks), merge into a
// model folder that gives base + adapter's logits (gemma3_text, a classifier, and a multimodal gemma3 checkpoint,
// whose keys are kept), and `loraplus info` / `generate` (greedy ids as transformers 5.18 generates them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter, makeAdapterConfig, type Adapter } from '../../src/adapters/peft';
import { loadModelWeights, writeSafetensors, type HostTensor } from '../../src/adapters/safetensors';
import { configFromObject } from '../../src/config/load';
import { Rng } from '../../src/engine/data/rng';
import { compareLogits, probeBatch, probeLogits } from '../../src/engine/merge/check';
import { mergeAdapters } from '../../src/engine/merge/merge';
import { generate } from '../../src/engine/train/generate';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { Trainables } from '../../src/engine/train/trainables';
import type { Task } from '../../src/models/types';
import type { EngineEvent, StepEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { headerOf, rand, saved } from '../engine/merge/fixtures';
import { SHARED, SST2, tempDir, useBackend } from '../helpers/shared';

const GEMMA3 = path.join(SHARED, 'models', 'tiny-random-gemma3');

/** LoRA r 4 (non-zero B) on every Linear of the three layers (under `prefix`); with `labels`, a trained `score`. */
export function gemma3Adapter(base: string, seed: number, labels = 0, prefix = 'model'): Adapter {
  const rng = new Rng(seed);
  const lora = new Map<string, { A: HostTensor; B: HostTensor }>();
  const shapes: [string, number, number][] = [
    ['self_attn.q_proj', 32, 32],
    ['self_attn.k_proj', 8, 32],
    ['self_attn.v_proj', 8, 32],
    ['self_attn.o_proj', 32, 32],
    ['mlp.gate_proj', 64, 32],
    ['mlp.up_proj', 64, 32],
    ['mlp.down_proj', 32, 64],
  ];
  for (let i = 0; i < 3; i++)
    for (const [m, out, inF] of shapes)
      lora.set(`${prefix}.layers.${i}.${m}`, { A: rand([4, inF], rng, 0.3), B: rand([out, 4], rng, 0.2) });
  const config = makeAdapterConfig({
    r: 4,
    lora_alpha: 8,
    target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
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

async function assertMerged(out: string, base: string, adapterDir: string, task: Task, labels = 0): Promise<void> {
  const merged = await logits(out, task, labels);
  const vsRef = compareLogits(merged, await logits(base, task, labels, adapterDir));
  const vsBase = compareLogits(merged, await logits(base, task, labels));
  assert.ok(vsRef.max_abs_diff <= 1e-4, `merged vs base + adapter: ${vsRef.max_abs_diff}`);
  assert.ok(vsBase.max_abs_diff > 1e-2, `the adapter changes the logits: ${vsBase.max_abs_diff}`);
}

describe('gemma3 workflow', () => {
  before(() => useBackend());

  it('train(): LoRA+ on all-linear over SST-2 text (past the window) lowers the loss, tensor count flat', async () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: GEMMA3,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'gemma3',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 64 },
        lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
        training: {
          learning_rate: 5e-3,
          loraplus_lr_ratio: 16,
          batch_size: 8,
          max_steps: 12,
          lr_scheduler: 'constant',
        },
      },
      dir,
    );
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
    const losses = events.filter((e): e is StepEvent => e.type === 'step').map((e) => e.loss);
    const [first, last] = [mean(losses.slice(0, 3)), mean(losses.slice(-3))];
    assert.ok(last < first - 0.1, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    const adapter = loadAdapter(result.finalAdapter!);
    assert.equal(adapter.lora.size, 21, 'all seven Linears of the three layers, not lm_head');
    assert.deepEqual(adapter.config.target_modules, [
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
  });

  it('merge: the merged folder gives base + adapter (≤ 1e-4), keeps keys, dtypes, config, chat template', async () => {
    const adapterDir = saved(gemma3Adapter(GEMMA3, 1));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.passed, s.merge_check.failures.join('; '));
    assert.ok(s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    await assertMerged(out, GEMMA3, adapterDir, 'causal-lm');
    assert.deepEqual(headerOf(out), headerOf(GEMMA3)); // norms copied; the tied head stays tied
    const config = (dir: string) => JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    assert.deepEqual(config(out), config(GEMMA3));
    const template = (dir: string) => fs.readFileSync(path.join(dir, 'chat_template.jinja'), 'utf8');
    assert.equal(template(out), template(GEMMA3));
  });

  it('merge of a classifier: score added, Gemma3TextForSequenceClassification, equivalent', async () => {
    const adapterDir = saved(gemma3Adapter(GEMMA3, 2, 3));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    await assertMerged(out, GEMMA3, adapterDir, 'sequence-classification', 3);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['Gemma3TextForSequenceClassification']);
    assert.ok(headerOf(out).has('score.weight'));
  });

  it('merge into a multimodal gemma3: its language_model.model.* keys and the vision tower kept', async () => {
    const base = path.join(tempDir(), 'gemma3-mm');
    fs.mkdirSync(base);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'])
      fs.copyFileSync(path.join(GEMMA3, f), path.join(base, f));
    const text = JSON.parse(fs.readFileSync(path.join(GEMMA3, 'config.json'), 'utf8'));
    fs.writeFileSync(
      path.join(base, 'config.json'),
      JSON.stringify({ architectures: ['Gemma3ForConditionalGeneration'], model_type: 'gemma3', text_config: text }),
    );
    const weights = new Map<string, HostTensor>();
    for (const [k, v] of loadModelWeights(GEMMA3)) weights.set(k.replace(/^model\./, 'language_model.model.'), v);
    const vision = 'vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight';
    weights.set(vision, { dtype: 'float32', shape: [4, 4], data: new Float32Array(16).fill(0.5) });
    writeSafetensors(path.join(base, 'model.safetensors'), weights);

    const adapterDir = saved(gemma3Adapter(base, 3, 0, 'model.language_model'));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    await assertMerged(out, base, adapterDir, 'causal-lm');
    assert.deepEqual(headerOf(out), headerOf(base));
    const merged = loadModelWeights(out);
    const down = 'language_model.model.layers.2.mlp.down_proj.weight';
    assert.notDeepEqual(merged.get(down)!.data, weights.get(down)!.data, "merged under the checkpoint's own key");
    assert.deepEqual(merged.get(vision)!.data, weights.get(vision)!.data);
  });

  it('loraplus info: family gemma3, the default targets and every Linear', async () => {
    const r = await runCli(['info', GEMMA3, '--json', '--device', 'wasm']);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assert.deepEqual([info.model_type, info.family, info.task], ['gemma3_text', 'gemma3', 'causal-lm']);
    assert.deepEqual(info.default_target_modules, ['q_proj', 'v_proj']);
    assert.deepEqual(info.target_module_names, [
      'q_proj',
      'k_proj',
      'v_proj',
      'o_proj',
      'gate_proj',
      'up_proj',
      'down_proj',
      'lm_head',
    ]);
    assert.equal(info.linears.length, 22);
  });

  it('greedy decoding past the window gives the ids transformers 5.18 does; generate with adapters', async () => {
    const folder = openModelFolder(GEMMA3);
    const prompt = folder.tokenizer.encode('a gripping film').ids;
    assert.deepEqual(prompt, [2, 69, 311, 337, 518, 272, 342]);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    // Gemma3ForCausalLM.generate(max_new_tokens=8, do_sample=False) on this fixture, in float32.
    assert.deepEqual(await generate(model, prompt, { maxNewTokens: 8 }), [
      ...prompt,
      342,
      114,
      241,
      292,
      366,
      366,
      366,
      366,
    ]);
    model.dispose();
    const gen = async (extra: string[] = []) => {
      const args = ['generate', GEMMA3, '--prompt', 'a gripping film', '--max-new-tokens', '8', '--device', 'wasm'];
      const r = await runCli([...args, ...extra]);
      assert.equal(r.code, 0, r.err);
      return r.out;
    };
    const plain = await gen();
    assert.ok(plain.startsWith('a gripping film film'), plain);
    const zero = gemma3Adapter(GEMMA3, 4);
    for (const p of zero.lora.values()) p.B.data.fill(0);
    assert.equal(await gen(['--adapter', saved(zero)]), plain);
    assert.notEqual(await gen(['--adapter', saved(gemma3Adapter(GEMMA3, 5))]), plain);
  });
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
