// Qwen3 (tiny-random-qwen3: head_dim 16 ≠ hidden/heads, GQA 4/2, tied embeddings): the config as transformers reads
// it, the per-head q_norm/k_norm path against a plain autodiff formulation of HF's modeling_qwen3 (logits and the
// gradients of LoRA on q_proj and k_proj), the checks on its weights, all-linear and the classification head.
// The logits against transformers itself are in chat-families.test.ts.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { makeAdapterConfig, type Adapter } from '../../src/adapters/peft';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { resolveTargets, Trainables } from '../../src/engine/train/trainables';
import { parseQwen3Config } from '../../src/models/qwen3/config';
import { Qwen3Model } from '../../src/models/qwen3/model';
import { FAMILIES } from '../../src/models/registry';
import { NO_ADAPTERS, type BatchTensors, type HFConfig } from '../../src/models/types';
import { rand } from '../engine/merge/fixtures';
import { maxAbsDiff, SHARED, useBackend, values } from '../helpers/shared';

const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');
const [H, NH, NKV, HD, LAYERS, EPS, THETA] = [32, 4, 2, 16, 2, 1e-6, 1e6];
const opts = { task: 'causal-lm' as const, numLabels: 0, normal: Math.random, dir: QWEN3 };
const config = (): HFConfig => openModelFolder(QWEN3).config;

const IDS = [
  [5, 300, 17, 912, 44, 8, 600, 71],
  [9, 250, 33, 1000, 2, 0, 0, 0],
];
const MASK = [
  [1, 1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 0, 0, 0],
];
const batch = (): BatchTensors => ({
  inputIds: tf.tensor2d(IDS, undefined, 'int32'),
  attentionMask: tf.tensor2d(MASK, undefined, 'int32'),
  typeIds: null,
  labels: null,
});

/**
 * HF's Qwen3ForCausalLM written plainly, as modeling_qwen3 reads: heads split with view + transpose, q_norm/k_norm
 * on [B, T, n, hd], rotate_half with split/concat, repeat_kv by Tile, scaled scores + mask, autodiff everywhere.
 */
function plainLogits(w: Map<string, tf.Tensor>, lora: Trainables): tf.Tensor {
  const [b, t] = [IDS.length, IDS[0].length];
  const lin = (name: string, x: tf.Tensor) => {
    let y = tf.matMul(x, w.get(`${name}.weight`)!, false, true);
    const l = lora.lora.get(name);
    if (l) y = tf.add(y, tf.mul(tf.matMul(tf.matMul(x, l.A, false, true), l.B, false, true), l.scaling));
    return y;
  };
  const rms = (x: tf.Tensor, name: string) =>
    tf.mul(tf.mul(x, tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), EPS))), w.get(`${name}.weight`)!);
  const inv = Array.from({ length: HD / 2 }, (_, i) => 1 / Math.pow(THETA, (2 * i) / HD));
  const ang = Array.from({ length: t }, (_, p) => [...inv, ...inv].map((f) => p * f)).flat();
  const [cos, sin] = [tf.tensor2d(ang.map(Math.cos), [t, HD]), tf.tensor2d(ang.map(Math.sin), [t, HD])];
  const rope = (x: tf.Tensor) => {
    const [x1, x2] = tf.split(x, 2, -1);
    return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
  };
  const heads = (y: tf.Tensor, n: number, norm?: string) => {
    const v = tf.reshape(y, [b, t, n, HD]); // .view(hidden_shape)
    return tf.transpose(norm ? rms(v, norm) : v, [0, 2, 1, 3]);
  };
  const repeatKv = (x: tf.Tensor) =>
    tf.reshape(tf.tile(tf.reshape(x, [b, NKV, 1, t * HD]), [1, 1, NH / NKV, 1]), [b, NH, t, HD]);
  const causal = tf.linalg.bandPart(tf.ones([t, t]), -1, 0);
  const bias = tf.mul(tf.sub(1, tf.mul(tf.reshape(tf.tensor2d(MASK), [b, 1, 1, t]), causal)), -1e9);
  let x: tf.Tensor = tf.gather(w.get('model.embed_tokens.weight')!, tf.tensor1d(IDS.flat(), 'int32'));
  for (let i = 0; i < LAYERS; i++) {
    const p = `model.layers.${i}`;
    const h = rms(x, `${p}.input_layernorm`);
    const q = rope(heads(lin(`${p}.self_attn.q_proj`, h), NH, `${p}.self_attn.q_norm`));
    const k = repeatKv(rope(heads(lin(`${p}.self_attn.k_proj`, h), NKV, `${p}.self_attn.k_norm`)));
    const v = repeatKv(heads(lin(`${p}.self_attn.v_proj`, h), NKV));
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(HD)), bias);
    const att = tf.reshape(tf.transpose(tf.matMul(tf.softmax(scores), v), [0, 2, 1, 3]), [b * t, NH * HD]);
    x = tf.add(x, lin(`${p}.self_attn.o_proj`, att));
    const h2 = rms(x, `${p}.post_attention_layernorm`);
    const gate = lin(`${p}.mlp.gate_proj`, h2);
    x = tf.add(x, lin(`${p}.mlp.down_proj`, tf.mul(tf.mul(gate, tf.sigmoid(gate)), lin(`${p}.mlp.up_proj`, h2))));
  }
  return tf.matMul(rms(x, 'model.norm'), w.get('model.embed_tokens.weight')!, false, true); // tied head
}

/** LoRA r 4 with non-zero A and B on q_proj and k_proj of both layers (B = 0 would hide the q/k_norm gradients). */
function qkAdapter(seed: number): Adapter {
  const rng = new Rng(seed);
  const lora = new Map<string, { A: HostTensor; B: HostTensor }>();
  for (let i = 0; i < LAYERS; i++) {
    for (const [n, out] of [
      ['q_proj', NH * HD],
      ['k_proj', NKV * HD],
    ] as const)
      lora.set(`model.layers.${i}.self_attn.${n}`, { A: rand([4, H], rng, 0.3), B: rand([out, 4], rng, 0.3) });
  }
  const config = makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['q_proj', 'k_proj'] });
  return { config, lora, modulesToSave: new Map() };
}

describe('qwen3 (tiny-random-qwen3)', () => {
  before(() => useBackend());

  it('reads config.json as transformers does: explicit head_dim, Qwen3Config defaults, no sliding window', () => {
    const c = parseQwen3Config(config(), 'config.json');
    assert.deepEqual([c.headDim, c.numHeads, c.numKvHeads, c.hiddenSize], [HD, NH, NKV, H]); // 16 ≠ 32/4
    assert.deepEqual([c.tieWordEmbeddings, c.attentionBias, c.rope.theta], [true, false, THETA]);
    const bare = { ...config() };
    delete bare.head_dim;
    delete bare.max_position_embeddings;
    const d = parseQwen3Config(bare, 'config.json');
    assert.deepEqual([d.headDim, d.maxPositions], [128, 32768], "Qwen3Config's defaults, not hidden/heads");
    // transformers 5 style RoPE (rope_parameters) reads the same base.
    const v5: HFConfig = { ...config(), rope_parameters: { rope_type: 'default', rope_theta: 5e5 } };
    delete v5.rope_theta;
    assert.equal(parseQwen3Config(v5, 'config.json').rope.theta, 5e5);
    const sliding = { ...config(), use_sliding_window: true, sliding_window: 8, max_window_layers: 1 };
    assert.throws(() => parseQwen3Config(sliding, 'config.json'), /sliding-window attention.*not supported/);
    // Qwen3Config: with use_sliding_window, only the layers from max_window_layers on slide.
    assert.doesNotThrow(() => parseQwen3Config({ ...sliding, max_window_layers: 28 }, 'config.json'));
  });

  it('logits and LoRA gradients through q_norm/k_norm equal a plain autodiff formulation of HF', async () => {
    const model = buildModel(openModelFolder(QWEN3), 'causal-lm', 0, new Rng(0));
    const adapters = Trainables.fromAdapter(model, FAMILIES.qwen3, qkAdapter(3));
    const host = loadModelWeights(QWEN3);
    const w = new Map([...host].map(([k, v]) => [k, tf.tensor(v.data, v.shape, 'float32')]));
    const b = batch();
    const cot = tf.randomNormal([IDS.length * IDS[0].length, 1024], 0, 1, 'float32', 7); // a random cotangent
    const vars = adapters.params().map((p) => p.variable);
    const ours = tf.variableGrads(() => tf.sum(tf.mul(tf.reshape(model.logits(b, adapters), cot.shape), cot)), vars);
    const plain = tf.variableGrads(() => tf.sum(tf.mul(plainLogits(w, adapters), cot)), vars);
    const yOurs = await values(tf.tidy(() => model.logits(b, adapters)));
    const yPlain = await values(tf.tidy(() => plainLogits(w, adapters)));
    assert.ok(maxAbsDiff(yOurs, yPlain) <= 1e-4, `logits: ${maxAbsDiff(yOurs, yPlain)}`);
    for (const p of adapters.params()) {
      const [g, want] = [await values(ours.grads[p.variable.name]), await values(plain.grads[p.variable.name])];
      const scale = Math.max(...want.map(Math.abs));
      assert.ok(scale > 1e-3, `${p.name}: a gradient reaches it`);
      assert.ok(maxAbsDiff(g, want) <= 1e-4 * Math.max(1, scale), `${p.name}: ${maxAbsDiff(g, want)} of ${scale}`);
    }
    tf.dispose([ours.value, plain.value, ...Object.values(ours.grads), ...Object.values(plain.grads), cot]);
    tf.dispose([b.inputIds, b.attentionMask, ...w.values()]);
    adapters.dispose();
    model.dispose();
  });

  it('uses the stored q_norm/k_norm, and refuses a checkpoint without them, naming the weight', async () => {
    const logitsOf = async (weights: Map<string, HostTensor>) => {
      const model = new Qwen3Model(config(), weights, opts);
      const b = batch();
      const out = await values(tf.tidy(() => model.logits(b, NO_ADAPTERS)));
      tf.dispose([b.inputIds, b.attentionMask]);
      model.dispose();
      return out;
    };
    const base = await logitsOf(loadModelWeights(QWEN3));
    const ones = loadModelWeights(QWEN3);
    ones.set('model.layers.1.self_attn.k_norm.weight', {
      dtype: 'float32',
      shape: [HD],
      data: new Float32Array(HD).fill(1),
    });
    assert.ok(maxAbsDiff(await logitsOf(ones), base) > 1e-3, 'k_norm weights change the logits');
    const before = tf.memory().numTensors;
    const missing = loadModelWeights(QWEN3);
    missing.delete('model.layers.0.self_attn.q_norm.weight');
    assert.throws(() => new Qwen3Model(config(), missing, opts), /model\.layers\.0\.self_attn\.q_norm\.weight/);
    const wrong = loadModelWeights(QWEN3);
    wrong.set('model.layers.0.self_attn.k_norm.weight', { dtype: 'float32', shape: [H], data: new Float32Array(H) });
    assert.throws(() => new Qwen3Model(config(), wrong, opts), /k_norm\.weight has shape \[32\].*\[16\]/);
    assert.equal(tf.memory().numTensors, before, 'a refused checkpoint leaves no tensors');
  });

  it('attention biases: required with attention_bias, ignored without it (as in transformers)', async () => {
    const withBias = (value: number) => {
      const w = loadModelWeights(QWEN3);
      for (let i = 0; i < LAYERS; i++) {
        for (const [n, size] of [
          ['q_proj', NH * HD],
          ['k_proj', NKV * HD],
          ['v_proj', NKV * HD],
          ['o_proj', H],
        ] as const)
          w.set(`model.layers.${i}.self_attn.${n}.bias`, {
            dtype: 'float32',
            shape: [size],
            data: new Float32Array(size).fill(value),
          });
      }
      return w;
    };
    const bare = new Qwen3Model(config(), withBias(0.5), opts);
    assert.ok(![...bare.linears.values()].some((l) => l.bias), 'attention_bias false: stored biases are unused');
    bare.dispose();
    const biased = new Qwen3Model({ ...config(), attention_bias: true }, withBias(0.5), opts);
    assert.equal([...biased.linears.values()].filter((l) => l.bias).length, 4 * LAYERS);
    biased.dispose();
    assert.throws(
      () => new Qwen3Model({ ...config(), attention_bias: true }, loadModelWeights(QWEN3), opts),
      /lacks 8 weight\(s\).*q_proj\.bias/,
    );
  });

  it('Linears as transformers names them; q_proj/v_proj by default; all-linear is every Linear but the head', () => {
    const folder = openModelFolder(QWEN3);
    assert.equal(folder.family.name, 'qwen3');
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    assert.equal(model.family, 'qwen3');
    assert.equal(model.linears.size, 7 * LAYERS + 1);
    assert.deepEqual(
      [...model.linears.get('model.layers.0.self_attn.q_proj')!.wT.shape],
      [H, NH * HD],
      'q_proj [heads·head_dim, hidden]',
    );
    assert.deepEqual(resolveTargets(model, folder.family, null, []), [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
    ]);
    const all = resolveTargets(model, folder.family, 'all-linear', []);
    assert.equal(all.length, 7 * LAYERS);
    assert.ok(!all.includes('lm_head'));
    // 1024·32 embedding (= the tied head) + per layer 7 Linears, 2 norms [32], q_norm/k_norm [16]; + the final norm
    const perLayer = 64 * 32 + 2 * 32 * 32 + 32 * 64 + 3 * 64 * 32 + 2 * 32 + 2 * 16;
    assert.equal(model.paramCount, 1024 * 32 + LAYERS * perLayer + 32);
    model.dispose();
  });

  it('sequence classification: a fresh score head on the last real token; all-linear leaves it out', async () => {
    const folder = openModelFolder(QWEN3);
    const model = buildModel(folder, 'sequence-classification', 2, new Rng(1));
    assert.deepEqual([model.head, model.headCreated], ['score', true]);
    const b = batch();
    const both = await values(tf.tidy(() => model.logits(b, NO_ADAPTERS)));
    const alone = tf.tensor2d([IDS[1].slice(0, 5)], undefined, 'int32');
    const one = await values(
      tf.tidy(() =>
        model.logits({ inputIds: alone, attentionMask: tf.onesLike(alone), typeIds: null, labels: null }, NO_ADAPTERS),
      ),
    );
    assert.ok(maxAbsDiff(both.slice(2), one) < 1e-5, 'right padding changes nothing');
    assert.ok(!resolveTargets(model, folder.family, 'all-linear', []).includes('score'));
    tf.dispose([b.inputIds, b.attentionMask, alone]);
    model.dispose();
  });
});
