// Qwen3 through the whole workflow: LoRA+ training on all-linear (the loss falls, no tensor leaks), merge into a
// model folder that gives base + adapter's logits and keeps the chat template, and `loraplus info` / `generate`.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter, makeAdapterConfig, type Adapter } from '../../src/adapters/peft';
import type { HostTensor } from '../../src/adapters/safetensors';
import { configFromObject } from '../../src/config/load';
import { Rng } from '../../src/engine/data/rng';
import { compareLogits, probeBatch, probeLogits } from '../../src/engine/merge/check';
import { mergeAdapters } from '../../src/engine/merge/merge';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { Trainables } from '../../src/engine/train/trainables';
import { loadChatTemplate } from '../../src/models/chat-template';
import type { Task } from '../../src/models/types';
import type { EngineEvent, StepEvent } from '../../src/protocol/events';
import { runCli } from '../helpers/cli';
import { headerOf, rand, saved } from '../engine/merge/fixtures';
import { SHARED, SST2, tempDir, useBackend } from '../helpers/shared';

const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');

/** tiny-random-qwen3 with its template moved from tokenizer_config.json to chat_template.jinja (as Gemma 3 ships). */
function withJinjaTemplate(): { dir: string; template: string } {
  const dir = path.join(tempDir(), 'qwen3-jinja');
  fs.cpSync(QWEN3, dir, { recursive: true });
  const configFile = path.join(dir, 'tokenizer_config.json');
  const config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as Record<string, unknown>;
  const template = String(config.chat_template);
  delete config.chat_template;
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  fs.writeFileSync(path.join(dir, 'chat_template.jinja'), template);
  return { dir, template };
}

/** LoRA r 4 (non-zero B) on every Linear but the head; with `labels`, a trained `score` head too. */
function allLinearAdapter(base: string, seed: number, labels = 0): Adapter {
  const rng = new Rng(seed);
  const lora = new Map<string, { A: HostTensor; B: HostTensor }>();
  const shapes: [string, number, number][] = [
    ['self_attn.q_proj', 64, 32],
    ['self_attn.k_proj', 32, 32],
    ['self_attn.v_proj', 32, 32],
    ['self_attn.o_proj', 32, 64],
    ['mlp.gate_proj', 64, 32],
    ['mlp.up_proj', 64, 32],
    ['mlp.down_proj', 32, 64],
  ];
  for (let i = 0; i < 2; i++)
    for (const [m, out, inF] of shapes)
      lora.set(`model.layers.${i}.${m}`, { A: rand([4, inF], rng, 0.3), B: rand([out, 4], rng, 0.2) });
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

describe('qwen3 workflow', () => {
  before(() => useBackend());

  it('train(): LoRA+ on all-linear over SST-2 text lowers the loss, with a flat tensor count', async () => {
    const dir = tempDir();
    const config = configFromObject(
      {
        model: QWEN3,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'qwen3',
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
    assert.equal(adapter.lora.size, 14, 'all seven Linears of both layers, not lm_head');
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

  it('merge: the logits of base + adapter (≤ 1e-4), the same keys and dtypes, chat_template.jinja kept', async () => {
    const { dir: base, template } = withJinjaTemplate();
    const adapterDir = saved(allLinearAdapter(base, 1));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.passed, s.merge_check.failures.join('; '));
    assert.ok(s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    const merged = await logits(out, 'causal-lm', 0);
    const vsRef = compareLogits(merged, await logits(base, 'causal-lm', 0, adapterDir));
    const vsBase = compareLogits(merged, await logits(base, 'causal-lm', 0));
    assert.ok(vsRef.max_abs_diff <= 1e-4, `merged vs base + adapter: ${vsRef.max_abs_diff}`);
    assert.ok(vsBase.max_abs_diff > 1e-2, `the adapter changes the logits: ${vsBase.max_abs_diff}`);
    assert.deepEqual(headerOf(out), headerOf(QWEN3)); // q_norm/k_norm copied; the tied head stays tied
    assert.equal(fs.readFileSync(path.join(out, 'chat_template.jinja'), 'utf8'), template);
    assert.equal(loadChatTemplate(out), template);
    assert.equal(openModelFolder(out).chatTemplate, template);
  });

  it('merge of a classifier: score added, Qwen3ForSequenceClassification, the template kept', async () => {
    const adapterDir = saved(allLinearAdapter(QWEN3, 2, 3));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    assert.ok(s.ok && s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
    const vsRef = compareLogits(
      await logits(out, 'sequence-classification', 3),
      await logits(QWEN3, 'sequence-classification', 3, adapterDir),
    );
    assert.ok(vsRef.max_abs_diff <= 1e-4, `merged vs base + adapter: ${vsRef.max_abs_diff}`);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['Qwen3ForSequenceClassification']);
    assert.equal(openModelFolder(out).chatTemplate, openModelFolder(QWEN3).chatTemplate);
  });

  it('loraplus info: the family, every Linear, and the chat template', async () => {
    const r = await runCli(['info', QWEN3, '--json', '--device', 'wasm']);
    assert.equal(r.code, 0, r.err);
    const info = JSON.parse(r.out);
    assert.deepEqual(
      [info.model_type, info.family, info.task, info.chat_template],
      ['qwen3', 'qwen3', 'causal-lm', true],
    );
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
    const text = await runCli(['info', QWEN3, '--device', 'wasm']);
    assert.match(text.out, /qwen3 \(family qwen3, built as causal-lm\)/);
    assert.match(text.out, /chat template: yes/);
    assert.match((await runCli(['info', path.join(SHARED, 'models', 'stories260k')])).out, /chat template: none/);
  });

  it('loraplus generate: greedy text, the same with a zero-effect adapter, other with a trained one', async () => {
    const gen = async (extra: string[] = []) => {
      const args = ['generate', QWEN3, '--prompt', 'a gripping film', '--max-new-tokens', '8', '--device', 'wasm'];
      const r = await runCli([...args, ...extra]);
      assert.equal(r.code, 0, r.err);
      return r.out;
    };
    const plain = await gen();
    assert.ok(plain.startsWith('a gripping film') && plain.length > 'a gripping film'.length, plain);
    const zero = allLinearAdapter(QWEN3, 3);
    for (const p of zero.lora.values()) p.B.data.fill(0);
    assert.equal(await gen(['--adapter', saved(zero)]), plain);
    assert.notEqual(await gen(['--adapter', saved(allLinearAdapter(QWEN3, 4))]), plain);
  });
});

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
