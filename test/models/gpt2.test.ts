// GPT-2 against an independent PyTorch implementation of Hugging Face's modeling code (tiny-random-gpt2), the
// checkpoint variants (with and without the `transformer.` prefix), LoRA on the fused c_attn (training, PEFT's
// fan_in_fan_out adapters, the merge that layout needs), the classification head, and `loraplus info`.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { mergeWeight } from '../../src/adapters/merge';
import { loadAdapter, makeAdapterConfig, saveAdapter } from '../../src/adapters/peft';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { configFromObject } from '../../src/config/load';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { resolveTargets, Trainables, type LoraSettings } from '../../src/engine/train/trainables';
import { Gpt2Model } from '../../src/models/gpt2/model';
import { FAMILIES } from '../../src/models/registry';
import { NO_ADAPTERS, type BatchTensors, type Model } from '../../src/models/types';
import type { EngineEvent, StepEvent } from '../../src/protocol/events';
import { maxAbsDiff, readJson, REFERENCE, SHARED, tempDir, useBackend, values } from '../helpers/shared';
import { runCli } from '../helpers/cli';

const GPT2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const H = 32; // n_embd
const V = 512;

interface Ref {
  input_ids: number[][];
  attention_mask: number[][];
  logits: number[][][];
}
const reference = () => readJson<Record<string, Ref>>(path.join(REFERENCE, 'logits.json'))['tiny-random-gpt2'];

function batchOf(ids: number[][], mask = ids.map((r) => r.map(() => 1)), labels: number[] | null = null): BatchTensors {
  return {
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    typeIds: null,
    labels: labels ? tf.tensor1d(labels, 'int32') : null,
  };
}

const causal = (weights = loadModelWeights(GPT2), config: Record<string, unknown> = {}): Model =>
  new Gpt2Model({ ...openModelFolder(GPT2).config, ...config }, weights, {
    task: 'causal-lm',
    numLabels: 0,
    normal: Math.random,
    dir: GPT2,
  });

/** The logits at positions the mask marks as tokens (the reference's padded positions are not meaningful). */
async function realLogits(logits: tf.Tensor, mask: number[][]): Promise<number[]> {
  const all = await values(logits);
  return mask.flat().flatMap((m, pos) => (m ? all.slice(pos * V, (pos + 1) * V) : []));
}

const LORA: LoraSettings = {
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  use_rslora: false,
  target_modules: null,
  modules_to_save: null,
};

describe('gpt2 (tiny-random-gpt2)', () => {
  before(() => useBackend());

  it('matches the reference logits within 1e-4 at every non-padding position', async () => {
    const ref = reference();
    const model = buildModel(openModelFolder(GPT2), 'causal-lm', 0, new Rng(0));
    const logits = model.logits(batchOf(ref.input_ids, ref.attention_mask), NO_ADAPTERS);
    assert.deepEqual(logits.shape, [2, 16, V]);
    const expected = ref.logits
      .flat()
      .filter((_, pos) => ref.attention_mask.flat()[pos])
      .flat();
    const diff = maxAbsDiff(await realLogits(logits, ref.attention_mask), expected);
    assert.ok(diff <= 1e-4, `max |Δlogit| = ${diff}`);
    model.dispose();
  });

  it('loads keys with and without the transformer. prefix (and ignores mask buffers, a stored tied lm_head) alike', async () => {
    const ref = reference();
    const bare = loadModelWeights(GPT2);
    assert.ok(
      bare.has('h.0.attn.c_attn.weight') && !bare.has('lm_head.weight'),
      'the shared checkpoint is bare, as the Hub gpt2',
    );
    const prefixed = new Map<string, HostTensor>();
    for (const [k, v] of bare) prefixed.set(`transformer.${k}`, v);
    prefixed.set('lm_head.weight', bare.get('wte.weight')!); // GPT2LMHeadModel saves the tied head in some versions
    prefixed.set('transformer.h.0.attn.bias', {
      dtype: 'float32',
      shape: [1, 1, 64, 64],
      data: new Float32Array(64 * 64),
    }); // the old causal-mask buffer
    const a = causal(bare);
    const b = causal(prefixed);
    const batch = batchOf(ref.input_ids, ref.attention_mask);
    assert.equal(maxAbsDiff(await values(a.logits(batch, NO_ADAPTERS)), await values(b.logits(batch, NO_ADAPTERS))), 0);
    a.dispose();
    b.dispose();
  });

  it('names modules as Hugging Face does, counts parameters once, and refuses an untied config without lm_head', () => {
    const model = causal();
    assert.deepEqual([...model.linears.keys()].slice(0, 4), [
      'transformer.h.0.attn.c_attn',
      'transformer.h.0.attn.c_proj',
      'transformer.h.0.mlp.c_fc',
      'transformer.h.0.mlp.c_proj',
    ]);
    assert.ok(model.linears.has('lm_head'));
    // Conv1D weights are used as stored, [in, out].
    assert.deepEqual(model.linears.get('transformer.h.1.attn.c_attn')!.wT.shape, [H, 3 * H]);
    assert.deepEqual(model.linears.get('transformer.h.1.mlp.c_proj')!.wT.shape, [4 * H, H]);
    assert.equal(
      model.paramCount,
      V * H + 64 * H + 2 * (4 * H + (H * 3 * H + 3 * H) + (H * H + H) + (H * 4 * H + 4 * H) + (4 * H * H + H)) + 2 * H,
    );
    const family = FAMILIES.gpt2;
    assert.deepEqual(resolveTargets(model, family, null, []), [
      'transformer.h.0.attn.c_attn',
      'transformer.h.1.attn.c_attn',
    ]);
    assert.equal(resolveTargets(model, family, 'all-linear', []).length, 8, 'every Conv1D, not lm_head');
    model.dispose();
    assert.throws(() => causal(loadModelWeights(GPT2), { tie_word_embeddings: false }), /lm_head\.weight/);
  });

  it('LoRA on c_attn: y = x·W + s·x·Aᵀ·Bᵀ with W [in, out]; merged as W + s·(B·A)ᵀ it gives the same logits', async () => {
    const model = causal();
    const rng = new Rng(5);
    const w = new Trainables(model, LORA, FAMILIES.gpt2, () => rng.next(), null);
    for (const l of w.lora.values()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.2, 'float32', 11));
    const adapter = await w.toAdapter(GPT2, 'CAUSAL_LM', {});
    const merged = loadModelWeights(GPT2);
    for (const [module, { A, B }] of adapter.lora) {
      assert.deepEqual(
        [A.shape, B.shape],
        [
          [4, H],
          [3 * H, 4],
        ],
        'lora_A [r, in], lora_B [out, r]',
      );
      const key = module.replace(/^transformer\./, '') + '.weight';
      merged.set(key, mergeWeight(merged.get(key)!, A, B, 8 / 4, true)); // W stored [in, out]: W + s·(B·A)ᵀ
    }
    const mergedModel = causal(merged);
    const batch = batchOf([[1, 403, 407, 261, 378, 432, 383, 286]]);
    const withAdapter = await values(model.logits(batch, w));
    assert.ok(
      maxAbsDiff(withAdapter, await values(model.logits(batch, NO_ADAPTERS))) > 1e-2,
      'the adapter changes the outputs',
    );
    assert.ok(maxAbsDiff(withAdapter, await values(mergedModel.logits(batch, NO_ADAPTERS))) <= 1e-4);
    w.dispose();
    model.dispose();
    mergedModel.dispose();
  });

  it('a PEFT adapter round-trips with fan_in_fan_out: true, and a hand-written one loads', async () => {
    const model = causal();
    const family = FAMILIES.gpt2;
    const rng = new Rng(6);
    const w = new Trainables(model, LORA, family, () => rng.next(), null);
    for (const l of w.lora.values()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.2, 'float32', 12));
    const dir = path.join(tempDir(), 'adapter');
    saveAdapter(dir, await w.toAdapter(GPT2, 'CAUSAL_LM', {}));
    const written = readJson<Record<string, unknown>>(path.join(dir, 'adapter_config.json'));
    assert.equal(written.fan_in_fan_out, true);
    assert.deepEqual(written.target_modules, ['c_attn']);
    const back = loadAdapter(dir);
    assert.deepEqual([...back.lora.keys()], ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    const again = Trainables.fromAdapter(model, family, back);
    const batch = batchOf([[1, 403, 407, 261, 378, 432, 383, 286]]);
    assert.ok(maxAbsDiff(await values(model.logits(batch, w)), await values(model.logits(batch, again))) < 1e-6);
    again.dispose();

    // As PEFT writes it for get_peft_model(gpt2, LoraConfig(target_modules=['c_attn', 'c_fc'], fan_in_fan_out=True)).
    const peftDir = path.join(tempDir(), 'peft');
    const lora = new Map([...back.lora].map(([m, p]) => [m, p]));
    lora.set('transformer.h.0.mlp.c_fc', {
      A: { dtype: 'float32', shape: [4, H], data: new Float32Array(4 * H).fill(0.01) },
      B: { dtype: 'float32', shape: [4 * H, 4], data: new Float32Array(16 * H) },
    });
    saveAdapter(peftDir, {
      config: makeAdapterConfig({
        r: 4,
        lora_alpha: 8,
        target_modules: ['c_attn', 'c_fc'],
        fan_in_fan_out: true,
        task_type: 'CAUSAL_LM',
      }),
      lora,
      modulesToSave: new Map(),
    });
    const peft = Trainables.fromAdapter(model, family, loadAdapter(peftDir));
    assert.equal(peft.lora.get('transformer.h.0.mlp.c_fc')!.A.shape[1], H);
    assert.equal(peft.lora.get('transformer.h.0.mlp.c_fc')!.scaling, 2);
    assert.ok(
      maxAbsDiff(await values(model.logits(batch, w)), await values(model.logits(batch, peft))) < 1e-6,
      'B = 0 on c_fc changes nothing',
    );
    peft.dispose();
    // alpha_pattern gives one module its own scaling (PEFT's get_pattern_key: the name's tail after a dot).
    saveAdapter(peftDir, {
      config: makeAdapterConfig({
        r: 4,
        lora_alpha: 8,
        alpha_pattern: { 'h.1.attn.c_attn': 32 },
        target_modules: ['c_attn'],
        fan_in_fan_out: true,
      }),
      lora: back.lora,
      modulesToSave: new Map(),
    });
    const patterned = Trainables.fromAdapter(model, family, loadAdapter(peftDir));
    assert.deepEqual(
      ['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn'].map((m) => patterned.lora.get(m)!.scaling),
      [2, 8],
    );
    patterned.dispose();
    w.dispose();
    model.dispose();
    // PEFT's flag follows the targets: GPT-2's Conv1D names only.
    assert.equal(
      makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }).fan_in_fan_out,
      false,
    );
  });

  it('a Conv1D module in modules_to_save trains as [out, in] and is saved [in, out], as PEFT stores it', async () => {
    const model = causal();
    const family = FAMILIES.gpt2;
    const rng = new Rng(9);
    const w = new Trainables(model, { ...LORA, modules_to_save: ['h.0.attn.c_proj'] }, family, () => rng.next(), null);
    const t = w.trainable.get('transformer.h.0.attn.c_proj')!;
    assert.deepEqual(t.w.shape, [H, H]);
    const batch = batchOf([[1, 403, 407, 261, 378, 432, 383, 286]]);
    const base = await values(model.logits(batch, NO_ADAPTERS));
    assert.ok(
      maxAbsDiff(base, await values(model.logits(batch, w))) < 1e-6,
      'the copy starts equal to the frozen weight',
    );
    t.w.assign(tf.add(t.w, tf.randomNormal([H, H], 0, 0.1, 'float32', 13)));
    const trained = await values(model.logits(batch, w));

    const adapter = await w.toAdapter(GPT2, 'CAUSAL_LM', {});
    const saved = adapter.modulesToSave.get('transformer.h.0.attn.c_proj.weight')!;
    const stored = loadModelWeights(GPT2).get('h.0.attn.c_proj.weight')!;
    // c_proj is square, so compare values: the saved tensor is the checkpoint's [in, out] layout plus the change.
    const frozenT = await values(tf.transpose(tf.tensor2d(stored.data as Float32Array, [H, H])));
    const savedAsOutIn = await values(tf.transpose(tf.tensor2d(saved.data as Float32Array, [H, H])));
    const trainedW = await values(t.w);
    assert.ok(maxAbsDiff(savedAsOutIn, trainedW) < 1e-7, 'saved = trained weight, transposed to [in, out]');
    assert.ok(maxAbsDiff(frozenT, trainedW) > 1e-3);
    const dir = path.join(tempDir(), 'adapter');
    saveAdapter(dir, adapter);
    const again = Trainables.fromAdapter(model, family, loadAdapter(dir));
    assert.ok(
      maxAbsDiff(trained, await values(model.logits(batch, again))) < 1e-6,
      'loading it back gives the same outputs',
    );
    again.dispose();
    w.dispose();
    model.dispose();
  });

  it('a batch longer than the learned positions is refused, naming data.max_length', () => {
    const model = buildModel(openModelFolder(GPT2), 'causal-lm', 0, new Rng(0));
    const batch = batchOf([Array.from({ length: model.maxPositions + 1 }, (_, i) => 1 + (i % 50))]);
    assert.throws(
      () => model.logits(batch, NO_ADAPTERS),
      (e: Error & { info?: { code: string; yamlPath?: string; hint?: string } }) =>
        e.info?.code === 'model/sequence-too-long' &&
        e.info.yamlPath === 'data.max_length' &&
        e.info.hint === `Set data.max_length to ${model.maxPositions} or less.`,
    );
    tf.dispose([batch.inputIds, batch.attentionMask]);
    model.dispose();
  });

  it('sequence classification: a fresh score [L, H] on the last non-padding token, trained as modules_to_save', async () => {
    const model = buildModel(openModelFolder(GPT2), 'sequence-classification', 3, new Rng(4));
    assert.deepEqual([model.head, model.headCreated, model.numLabels], ['score', true, 3]);
    const score = model.linears.get('score')!;
    assert.deepEqual([score.outFeatures, score.inFeatures, score.bias], [3, H, null]);
    const std = Math.sqrt((await values(score.wT)).reduce((s, x) => s + x * x, 0) / (3 * H));
    assert.ok(std > 0.01 && std < 0.04, `std ${std} (initializer_range 0.02)`);

    const rng = new Rng(8);
    const w = new Trainables(model, LORA, FAMILIES.gpt2, () => rng.next(), null);
    assert.deepEqual([...w.trainable.keys()], ['score']);
    const padded = batchOf(
      [
        [1, 403, 407, 261, 0, 0, 0, 0],
        [1, 30, 31, 32, 33, 34, 35, 2],
      ],
      [
        [1, 1, 1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 1, 1, 1, 1],
      ],
      [2, 0],
    );
    const logits = await values(model.logits(padded, w));
    const alone = await values(model.logits(batchOf([[1, 403, 407, 261]]), w));
    assert.ok(maxAbsDiff(logits.slice(0, 3), alone) < 1e-5, 'padding after the last token changes nothing');
    const params = w.params();
    const { value, grads } = tf.variableGrads(
      () => model.loss(padded, w),
      params.map((p) => p.variable),
    );
    assert.ok(Number.isFinite((await value.data())[0]));
    for (const p of params.filter((q) => !q.name.includes('lora_A')))
      assert.ok(tf.norm(grads[p.variable.name]).dataSync()[0] > 0, p.name);
    const saved = await w.toAdapter(GPT2, 'SEQ_CLS', {});
    assert.deepEqual(saved.modulesToSave.get('score.weight')!.shape, [3, H], 'nn.Linear layout, as PEFT saves it');
    w.dispose();
    model.dispose();
  });

  it('train(): LoRA+ on c_attn lowers the loss on a toy batch and writes a fan_in_fan_out adapter', async () => {
    const dir = tempDir();
    const rows = [
      [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 30, 31, 32, 33, 34, 2],
      [1, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 2],
    ];
    fs.writeFileSync(path.join(dir, 'toy.jsonl'), rows.map((ids) => JSON.stringify({ input_ids: ids })).join('\n'));
    const config = configFromObject(
      {
        model: GPT2,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        run_name: 'toy',
        data: { train: 'toy.jsonl', max_length: 16 },
        lora: { r: 4, lora_alpha: 8 },
        training: {
          learning_rate: 1e-2,
          loraplus_lr_ratio: 4,
          batch_size: 2,
          max_steps: 8,
          lr_scheduler: 'constant',
          shuffle: false,
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
      `tensors per step: ${counts.join(' ')} (none may leak)`,
    );
    const losses = events.filter((e): e is StepEvent => e.type === 'step').map((e) => e.loss);
    assert.equal(losses.length, 8);
    assert.ok(losses[7] < losses[0] - 0.05, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    const final = loadAdapter(result.finalAdapter!);
    assert.deepEqual([final.config.fan_in_fan_out, final.config.target_modules], [true, ['c_attn']]);
  });
});

describe('loraplus info lists every Linear (decoders and encoders)', () => {
  before(() => useBackend());

  async function info(
    dir: string,
  ): Promise<{ task: string; linears: { name: string; in: number; out: number }[]; target_module_names: string[] }> {
    const { code, out } = await runCli(['info', dir, '--json', '--device', 'wasm']);
    assert.equal(code, 0);
    return JSON.parse(out);
  }

  it('gpt2: the four Conv1D per block and the tied lm_head, with [in, out] read the Conv1D way', async () => {
    const r = await info(GPT2);
    assert.equal(r.task, 'causal-lm');
    assert.equal(r.linears.length, 2 * 4 + 1);
    assert.deepEqual(r.target_module_names, ['c_attn', 'c_proj', 'c_fc', 'lm_head']);
    assert.deepEqual(
      r.linears.find((l) => l.name === 'transformer.h.0.mlp.c_fc'),
      { name: 'transformer.h.0.mlp.c_fc', in: H, out: 4 * H, bias: true },
    );
  });

  it('bert: built as a classifier (no language-model head), pooler and classifier included', async () => {
    const r = await info(BERT);
    assert.equal(r.task, 'sequence-classification');
    assert.equal(r.linears.length, 2 * 6 + 2);
    assert.ok(
      r.linears.some((l) => l.name === 'bert.pooler.dense') &&
        r.linears.some((l) => l.name === 'classifier' && l.out === 2),
    );
  });

  it('generate refuses an encoder, saying why', async () => {
    const { code, err } = await runCli(['generate', BERT, '--prompt', 'hi', '--device', 'wasm']);
    assert.equal(code, 1);
    assert.match(err, /encoder with no language-model head/);
  });
});
