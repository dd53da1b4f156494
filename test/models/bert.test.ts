// The BERT-family encoders against an independent PyTorch implementation of Hugging Face's modeling code
// (tiny-random-bert, tiny-random-roberta), and the checkpoint variants: bare and gamma/beta keys, a missing head,
// DistilBERT's layout (a tiny random checkpoint built here).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter, saveAdapter } from '../../src/adapters/peft';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { resolveTargets, Trainables, type LoraSettings } from '../../src/engine/train/trainables';
import { BertModel } from '../../src/models/bert/model';
import { FAMILIES } from '../../src/models/registry';
import { NO_ADAPTERS, type BatchTensors, type Model } from '../../src/models/types';
import { maxAbsDiff, readJson, REFERENCE, SHARED, tempDir, useBackend, values } from '../helpers/shared';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const ROBERTA = path.join(SHARED, 'models', 'tiny-random-roberta');

interface Ref {
  input_ids: number[][];
  attention_mask: number[][];
  logits: number[][];
}
const reference = (name: string) => readJson<Record<string, Ref>>(path.join(REFERENCE, 'logits.json'))[name];

function batchOf(ids: number[][], mask: number[][], labels: number[] | null = null): BatchTensors {
  return {
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    typeIds: tf.zeros([ids.length, ids[0].length], 'int32'),
    labels: labels ? tf.tensor1d(labels, 'int32') : null,
  };
}

const build = (dir: string, weights = loadModelWeights(dir), seed = 0): Model =>
  new BertModel(openModelFolder(dir).config, weights, {
    task: 'sequence-classification',
    numLabels: 2,
    normal: normalFrom(seed),
    dir,
  });

function normalFrom(seed: number): () => number {
  const rng = new Rng(seed);
  return () => Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12))) * Math.cos(2 * Math.PI * rng.next());
}

const LORA: LoraSettings = {
  r: 4,
  lora_alpha: 8,
  lora_dropout: 0,
  use_rslora: false,
  target_modules: null,
  modules_to_save: null,
};

describe('bert family (tiny random checkpoints)', () => {
  before(() => useBackend());

  for (const [name, dir] of [
    ['tiny-random-bert', BERT],
    ['tiny-random-roberta', ROBERTA],
  ] as const) {
    it(`${name}: sequence-classification logits match the reference within 1e-4 (padded row included)`, async () => {
      const ref = reference(name);
      const model = buildModel(openModelFolder(dir), 'sequence-classification', 2, new Rng(0));
      assert.equal(model.headCreated, false);
      const batch = batchOf(ref.input_ids, ref.attention_mask);
      const logits = model.logits(batch, NO_ADAPTERS);
      assert.deepEqual(logits.shape, [2, 2]);
      const diff = maxAbsDiff(await values(logits), ref.logits.flat());
      assert.ok(diff <= 1e-4, `max |Δlogit| = ${diff}`);
      model.dispose();
    });
  }

  it('loads bare keys with gamma/beta LayerNorm names (old checkpoints) to the same model', async () => {
    const ref = reference('tiny-random-bert');
    const old = new Map<string, HostTensor>();
    for (const [k, v] of loadModelWeights(BERT)) {
      const renamed = k.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
      old.set(renamed.replace(/^bert\./, ''), v);
    }
    assert.ok(old.has('embeddings.LayerNorm.gamma') && old.has('encoder.layer.1.output.LayerNorm.beta'));
    const model = build(BERT, old);
    const logits = model.logits(batchOf(ref.input_ids, ref.attention_mask), NO_ADAPTERS);
    assert.ok(maxAbsDiff(await values(logits), ref.logits.flat()) <= 1e-4);
    model.dispose();
  });

  it('names modules as Hugging Face does; default targets and all-linear follow PEFT', () => {
    const bert = build(BERT);
    assert.ok(bert.linears.has('bert.encoder.layer.0.attention.self.query'));
    assert.ok(bert.linears.has('bert.pooler.dense') && bert.linears.has('classifier'));
    const family = FAMILIES.bert;
    assert.deepEqual(resolveTargets(bert, family, null, []), [
      'bert.encoder.layer.0.attention.self.query',
      'bert.encoder.layer.0.attention.self.value',
      'bert.encoder.layer.1.attention.self.query',
      'bert.encoder.layer.1.attention.self.value',
    ]);
    const all = resolveTargets(bert, family, 'all-linear', []);
    assert.equal(all.length, 2 * 6 + 1, 'six Linears per layer and the pooler');
    assert.ok(!all.includes('classifier'));
    assert.equal(
      bert.paramCount,
      1000 * 32 +
        66 * 32 +
        2 * 32 +
        2 * 32 +
        2 * (4 * (32 * 32 + 32) + 2 * (32 * 64) + 64 + 32 + 4 * 32) +
        32 * 32 +
        32 +
        2 * 32 +
        2,
    );
    bert.dispose();

    const roberta = build(ROBERTA);
    assert.ok(roberta.linears.has('roberta.encoder.layer.1.output.dense'));
    assert.ok(!roberta.linears.has('roberta.pooler.dense'), 'RobertaForSequenceClassification has no pooler');
    const w = new Trainables(roberta, { ...LORA, target_modules: 'all-linear' }, family, Math.random, null);
    assert.deepEqual(
      [...w.trainable.keys()],
      ['classifier.dense', 'classifier.out_proj'],
      "modules_to_save 'classifier' is the whole head",
    );
    assert.ok([...w.lora.keys()].every((m) => m.startsWith('roberta.encoder.')));
    w.dispose();
    roberta.dispose();
  });

  it('creates a missing head (normal(0, initializer_range), zero bias) and trains it; the adapter round-trips', async () => {
    const ref = reference('tiny-random-roberta');
    const weights = loadModelWeights(ROBERTA);
    for (const k of [...weights.keys()]) if (k.startsWith('classifier.')) weights.delete(k);
    const model = build(ROBERTA, weights, 7);
    assert.equal(model.headCreated, true);
    const outW = await values(tf.transpose(model.linears.get('classifier.out_proj')!.wT));
    const std = Math.sqrt(outW.reduce((s, x) => s + x * x, 0) / outW.length);
    assert.ok(std > 0.01 && std < 0.04, `std ${std} (initializer_range 0.02)`);
    assert.deepEqual(await values(model.linears.get('classifier.dense')!.bias!), Array(32).fill(0));

    const family = FAMILIES.roberta;
    const rng = new Rng(2);
    const w = new Trainables(model, LORA, family, () => rng.next(), null);
    assert.deepEqual(
      [...w.lora.keys()].map((m) => m.split('.').pop()),
      ['query', 'value', 'query', 'value'],
    );
    // One step's gradients reach the head and lora_B (lora_A's are zero while B = 0).
    const batch = batchOf(ref.input_ids, ref.attention_mask, [0, 1]);
    const params = w.params();
    const { value, grads } = tf.variableGrads(
      () => model.loss(batch, w),
      params.map((p) => p.variable),
    );
    assert.ok(Number.isFinite((await value.data())[0]));
    for (const p of params.filter((q) => !q.name.includes('lora_A')))
      assert.ok(tf.norm(grads[p.variable.name]).dataSync()[0] > 0, p.name);

    // Saved as PEFT writes it: modules_to_save ['classifier'], tensors classifier.dense.* and classifier.out_proj.*.
    w.trainable.get('classifier.out_proj')!.bias!.assign(tf.tensor1d([0.25, -0.5]));
    const dir = path.join(tempDir(), 'adapter');
    saveAdapter(dir, await w.toAdapter(ROBERTA, 'SEQ_CLS', {}));
    const back = loadAdapter(dir);
    assert.deepEqual(back.config.modules_to_save, ['classifier']);
    assert.deepEqual([...back.modulesToSave.keys()].sort(), [
      'classifier.dense.bias',
      'classifier.dense.weight',
      'classifier.out_proj.bias',
      'classifier.out_proj.weight',
    ]);
    const again = Trainables.fromAdapter(model, family, back);
    assert.deepEqual([...again.trainable.keys()], ['classifier.dense', 'classifier.out_proj']);
    const a = await values(model.logits(batch, w));
    const b = await values(model.logits(batch, again));
    assert.ok(maxAbsDiff(a, b) < 1e-6);
    w.dispose();
    again.dispose();
    model.dispose();
  });

  it('a causal-lm task is refused with a clear error', () => {
    assert.throws(
      () => buildModel(openModelFolder(BERT), 'causal-lm', 0, new Rng(0)),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'model/unsupported-task');
        assert.match(err.message, /sequence-classification/);
        return true;
      },
    );
  });
});

// ---- DistilBERT: a tiny random checkpoint in HF's key layout -----------------------------------------------------

function randomDistilBert(
  h: number,
  layers: number,
  ffn: number,
  vocab: number,
  positions: number,
  rng: Rng,
): Map<string, HostTensor> {
  const w = new Map<string, HostTensor>();
  const put = (key: string, shape: number[], fill?: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    w.set(key, {
      dtype: 'float32',
      shape,
      data: Float32Array.from({ length: n }, () => fill ?? (rng.next() - 0.5) * 0.2),
    });
  };
  const linear = (p: string, out: number, inp: number) => {
    put(`${p}.weight`, [out, inp]);
    put(`${p}.bias`, [out]);
  };
  const norm = (p: string) => {
    put(`${p}.weight`, [h], 1);
    put(`${p}.bias`, [h], 0);
  };
  put('distilbert.embeddings.word_embeddings.weight', [vocab, h]);
  put('distilbert.embeddings.position_embeddings.weight', [positions, h]);
  norm('distilbert.embeddings.LayerNorm');
  for (let i = 0; i < layers; i++) {
    const p = `distilbert.transformer.layer.${i}`;
    for (const n of ['q_lin', 'k_lin', 'v_lin', 'out_lin']) linear(`${p}.attention.${n}`, h, h);
    linear(`${p}.ffn.lin1`, ffn, h);
    linear(`${p}.ffn.lin2`, h, ffn);
    norm(`${p}.sa_layer_norm`);
    norm(`${p}.output_layer_norm`);
  }
  linear('pre_classifier', h, h);
  linear('classifier', 3, h);
  return w;
}

describe('distilbert (tiny random checkpoint)', () => {
  before(() => useBackend());

  const config = {
    model_type: 'distilbert',
    dim: 16,
    n_layers: 2,
    n_heads: 2,
    hidden_dim: 32,
    vocab_size: 50,
    max_position_embeddings: 24,
    activation: 'gelu',
    pad_token_id: 0,
  };

  it('runs: logits [B, 3], a finite loss, gradients reach LoRA (q_lin, v_lin) and the head', async () => {
    const rng = new Rng(3);
    const model = new BertModel(config, randomDistilBert(16, 2, 32, 50, 24, rng), {
      task: 'sequence-classification',
      numLabels: 3,
      normal: normalFrom(1),
      dir: 'memory',
    });
    assert.equal(model.headCreated, false);
    assert.ok(
      model.linears.has('distilbert.transformer.layer.1.attention.q_lin') && model.linears.has('pre_classifier'),
    );
    const w = new Trainables(model, LORA, FAMILIES.distilbert, () => rng.next(), null);
    assert.deepEqual(
      [...w.lora.keys()],
      [
        'distilbert.transformer.layer.0.attention.q_lin',
        'distilbert.transformer.layer.0.attention.v_lin',
        'distilbert.transformer.layer.1.attention.q_lin',
        'distilbert.transformer.layer.1.attention.v_lin',
      ],
    );
    // PEFT's modules_to_save match is a plain suffix, so `classifier` also trains pre_classifier.
    assert.deepEqual([...w.trainable.keys()], ['pre_classifier', 'classifier']);
    for (const l of w.lora.values()) l.B.assign(tf.randomNormal(l.B.shape, 0, 0.1, 'float32', 5)); // so lora_A gets a gradient too

    const batch = batchOf(
      [
        [1, 7, 9, 11, 4, 2, 0, 0],
        [1, 30, 31, 2, 0, 0, 0, 0],
      ],
      [
        [1, 1, 1, 1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0, 0, 0, 0],
      ],
      [2, 0],
    );
    const logits = model.logits(batch, w);
    assert.deepEqual(logits.shape, [2, 3]);
    const params = w.params();
    const { value, grads } = tf.variableGrads(
      () => model.loss(batch, w),
      params.map((p) => p.variable),
    );
    const loss = (await value.data())[0];
    assert.ok(Number.isFinite(loss) && loss > 0, `loss ${loss}`);
    for (const p of params) assert.ok(tf.norm(grads[p.variable.name]).dataSync()[0] > 0, `no gradient for ${p.name}`);

    // Padding does not change a row's logits (masked keys; positions 0…T−1).
    const short = batchOf([[1, 30, 31, 2]], [[1, 1, 1, 1]]);
    assert.ok(maxAbsDiff((await values(logits)).slice(3), await values(model.logits(short, w))) < 1e-5);
    w.dispose();
    model.dispose();
  });
});
