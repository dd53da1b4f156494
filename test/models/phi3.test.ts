// Phi-3 (tiny-random-phi3) beyond the reference logits of chat-families.test.ts: the fused projections against the
// reference-checked Llama path (the same weights split into q/k/v and gate/up give the same logits, and LoRA on the
// fused Linear gets the gradients of LoRA on its parts with A shared), finite differences through the split, partial
// rotary dims against HF's apply_rotary_pos_emb written out, the sliding window, and what it refuses.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { LoraModule } from '../../src/adapters/lora';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { resolveTargets } from '../../src/engine/train/trainables';
import { applyRope, halfRotation } from '../../src/models/layers';
import { disposeRope, ropeTables } from '../../src/models/llama/attention';
import { LlamaModel } from '../../src/models/llama/model';
import { Phi3Model, splitColumns } from '../../src/models/phi3/model';
import { FAMILIES } from '../../src/models/registry';
import { invFreq, ropeParams } from '../../src/models/rope';
import { NO_ADAPTERS, type Adapters, type BatchTensors, type HFConfig } from '../../src/models/types';
import { maxAbsDiff, SHARED, useBackend, values } from '../helpers/shared';

const PHI3 = path.join(SHARED, 'models', 'tiny-random-phi3');
const H = 32; // hidden
const I = 64; // intermediate
const QKV = 96; // (4 + 2·4 heads) · 8
const R = 4; // LoRA rank here
const opts = { task: 'causal-lm' as const, numLabels: 0, normal: Math.random, dir: PHI3 };
const config = (): HFConfig => openModelFolder(PHI3).config;
const phi3 = (raw: HFConfig = config(), w = loadModelWeights(PHI3)) => new Phi3Model(raw, w, opts);

function batchOf(ids: number[][], mask = ids.map((r) => r.map(() => 1))): BatchTensors {
  return {
    inputIds: tf.tensor2d(ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(mask, undefined, 'int32'),
    typeIds: null,
    labels: null,
  };
}
const BATCH = () =>
  batchOf(
    [
      [5, 300, 17, 912, 44, 8, 650, 3, 77, 101, 4, 0],
      [9, 12, 13, 800, 2, 31, 1000, 64, 7, 4, 0, 0],
    ],
    [
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0],
      [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0],
    ],
  );

/** Rows [from, from + n) of a host [out, in] weight. */
function rows(w: HostTensor, from: number, n: number): HostTensor {
  const inF = w.shape[1];
  return { dtype: 'float32', shape: [n, inF], data: w.data.slice(from * inF, (from + n) * inF) };
}

/** The Phi-3 checkpoint as a Llama one: qkv_proj → q/k/v_proj, gate_up_proj → gate/up_proj. */
function asLlama(): { raw: HFConfig; weights: Map<string, HostTensor> } {
  const weights = new Map<string, HostTensor>();
  for (const [k, w] of loadModelWeights(PHI3)) {
    if (k.endsWith('qkv_proj.weight')) {
      const p = k.slice(0, -'qkv_proj.weight'.length);
      weights.set(`${p}q_proj.weight`, rows(w, 0, 32));
      weights.set(`${p}k_proj.weight`, rows(w, 32, 32));
      weights.set(`${p}v_proj.weight`, rows(w, 64, 32));
    } else if (k.endsWith('gate_up_proj.weight')) {
      const p = k.slice(0, -'gate_up_proj.weight'.length);
      weights.set(`${p}gate_proj.weight`, rows(w, 0, I));
      weights.set(`${p}up_proj.weight`, rows(w, I, I));
    } else weights.set(k, w);
  }
  return { raw: { ...config(), model_type: 'llama', architectures: ['LlamaForCausalLM'] }, weights };
}

const adapters = (lora: LoraModule[]): Adapters => ({
  lora: new Map(lora.map((l) => [l.module, l])),
  trainable: new Map(),
  dropoutSeed: null,
});

describe('phi3 (tiny-random-phi3)', () => {
  before(() => useBackend());

  it('names the fused Linears as transformers does; qkv_proj is the default, all-linear takes four per layer', () => {
    const model = phi3();
    assert.equal(model.family, 'phi3');
    assert.deepEqual([...model.linears.keys()].slice(0, 4), [
      'model.layers.0.self_attn.qkv_proj',
      'model.layers.0.self_attn.o_proj',
      'model.layers.0.mlp.gate_up_proj',
      'model.layers.0.mlp.down_proj',
    ]);
    const qkv = model.linears.get('model.layers.1.self_attn.qkv_proj')!;
    assert.deepEqual([qkv.inFeatures, qkv.outFeatures, qkv.bias], [H, QKV, null]);
    assert.equal(model.linears.get('model.layers.1.mlp.gate_up_proj')!.outFeatures, 2 * I);
    const V = 1024;
    assert.equal(model.paramCount, 2 * V * H + H + 2 * (2 * H + QKV * H + H * H + 2 * I * H + H * I), 'untied head');
    const family = FAMILIES.phi3;
    assert.deepEqual(resolveTargets(model, family, null, []), [
      'model.layers.0.self_attn.qkv_proj',
      'model.layers.1.self_attn.qkv_proj',
    ]);
    const all = resolveTargets(model, family, 'all-linear', []);
    assert.equal(all.length, 8);
    assert.ok(!all.includes('lm_head'));
    model.dispose();
  });

  it('equals Llama on its weights split into q/k/v and gate/up, with and without LoRA; same gradients', async () => {
    const model = phi3();
    const { raw, weights } = asLlama();
    const llama = new LlamaModel(raw, weights, opts);
    const batch = BATCH();
    const base = maxAbsDiff(
      await values(model.logits(batch, NO_ADAPTERS)),
      await values(llama.logits(batch, NO_ADAPTERS)),
    );
    assert.ok(base <= 1e-5, `no adapter: ${base}`);

    // One adapter on each fused Linear (A [r, H], B [q+k+v, r]) is LoRA on each part with A shared and B's rows.
    const rng = new Rng(3);
    const rnd = (shape: [number, number], s: number) =>
      tf.tensor2d(
        Float32Array.from({ length: shape[0] * shape[1] }, () => (rng.next() * 2 - 1) * s),
        shape,
      );
    const groups: { fused: LoraModule; parts: LoraModule[] }[] = [];
    for (let i = 0; i < 2; i++) {
      const p = `model.layers.${i}`;
      for (const [name, out, split] of [
        ['self_attn.qkv_proj', QKV, ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj']],
        ['mlp.gate_up_proj', 2 * I, ['mlp.gate_proj', 'mlp.up_proj']],
      ] as const) {
        const [A, B] = [rnd([R, H], 0.3), rnd([out, R], 0.2)];
        const n = out / split.length;
        groups.push({
          fused: new LoraModule(`${p}.${name}`, A, B, 2, 0),
          parts: split.map((s, j) => new LoraModule(`${p}.${s}`, A, tf.slice(B, [j * n, 0], [n, R]), 2, 0)),
        });
      }
    }
    const fused = groups.map((g) => g.fused);
    const parts = groups.flatMap((g) => g.parts);
    const [a, b] = [adapters(fused), adapters(parts)];
    const withLora = await values(model.logits(batch, a));
    assert.ok(maxAbsDiff(withLora, await values(model.logits(batch, NO_ADAPTERS))) > 1e-2, 'the adapter acts');
    const adapted = maxAbsDiff(withLora, await values(llama.logits(batch, b)));
    assert.ok(adapted <= 1e-5, `with LoRA: ${adapted}`);

    // ∂A of the fused adapter = Σ ∂A of the parts; ∂B = the parts' ∂B stacked as the rows are.
    const vars = (ls: LoraModule[]) => ls.flatMap((l) => [l.A, l.B]);
    const gFused = tf.variableGrads(() => model.loss(batch, a), vars(fused)).grads;
    const gParts = tf.variableGrads(() => llama.loss(batch, b), vars(parts)).grads;
    for (const { fused: f, parts: ps } of groups) {
      const dA = await values(tf.addN(ps.map((q) => gParts[q.A.name])));
      const dB = await values(tf.concat(ps.map((q) => gParts[q.B.name])));
      const [gA, gB] = [await values(gFused[f.A.name]), await values(gFused[f.B.name])];
      const scale = Math.max(...gB.map(Math.abs));
      assert.ok(scale > 1e-4, `${f.module}: a gradient to compare`);
      assert.ok(maxAbsDiff(gA, dA) <= 1e-4 * scale, `∂A ${f.module}: ${maxAbsDiff(gA, dA)}`);
      assert.ok(maxAbsDiff(gB, dB) <= 1e-4 * scale, `∂B ${f.module}: ${maxAbsDiff(gB, dB)}`);
    }
    [...fused, ...parts].forEach((l) => l.dispose());
    model.dispose();
    llama.dispose();
  });

  it('gradients through the fused splits match central finite differences', async () => {
    const model = phi3();
    const batch = BATCH();
    const rng = new Rng(8);
    const init = (n: number, s: number) => Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * s);
    const qkvA = init(R * H, 0.3);
    const qkvB = init(QKV * R, 0.3);
    const guA = init(R * H, 0.3);
    const guB = init(2 * I * R, 0.3);
    const make = (p: Float32Array[]) => [
      new LoraModule('model.layers.0.self_attn.qkv_proj', tf.tensor2d(p[0], [R, H]), tf.tensor2d(p[1], [QKV, R]), 2, 0),
      new LoraModule('model.layers.1.mlp.gate_up_proj', tf.tensor2d(p[2], [R, H]), tf.tensor2d(p[3], [2 * I, R]), 2, 0),
    ];
    const params = [qkvA, qkvB, guA, guB];
    const lossAt = (p: Float32Array[]) => {
      const ls = make(p);
      const v = tf.tidy(() => model.loss(batch, adapters(ls)).dataSync()[0]);
      ls.forEach((l) => l.dispose());
      return v;
    };
    const ls = make(params);
    const { grads } = tf.variableGrads(
      () => model.loss(batch, adapters(ls)),
      ls.flatMap((l) => [l.A, l.B]),
    );
    const g = await Promise.all(ls.flatMap((l) => [l.A, l.B]).map((v) => values(grads[v.name])));
    const eps = 1e-2;
    // Entries of B for q, k and v (and gate, up), and of A: every part of the split gets its own check.
    const picks: [number, number][] = [
      [0, 5],
      [1, 3],
      [1, 40 * R + 1],
      [1, 80 * R + 2],
      [2, 17],
      [3, 10 * R],
      [3, 100 * R + 3],
    ];
    for (const [which, i] of picks) {
      const plus = params.map((p) => p.slice());
      const minus = params.map((p) => p.slice());
      plus[which][i] += eps;
      minus[which][i] -= eps;
      const fd = (lossAt(plus) - lossAt(minus)) / (2 * eps);
      assert.ok(
        Math.abs(fd - g[which][i]) < 5e-4 + 2e-2 * Math.abs(fd),
        `param ${which}[${i}]: autodiff ${g[which][i]} vs finite difference ${fd}`,
      );
    }
    ls.forEach((l) => l.dispose());
    model.dispose();
  });

  it('splitColumns equals tf.split, forward and backward (plain autodiff), and leaves no tensors', async () => {
    for (const [sizes, unit] of [
      [[32, 16, 16], 16], // q, k, v with two query heads per key/value head
      [[64, 64], 64], // gate, up
    ] as [number[], number][]) {
      const c = sizes.reduce((a, b) => a + b);
      const x = tf.randomNormal([6, c], 0, 1, 'float32', 1) as tf.Tensor2D;
      const dys = sizes.map((s, i) => tf.randomNormal([6, s], 0, 1, 'float32', 2 + i));
      const loss = (parts: tf.Tensor[]) => tf.addN(parts.map((p, i) => tf.sum(tf.mul(p, dys[i]))));
      const before = tf.memory().numTensors;
      const ours = tf.tidy(() => splitColumns(x, sizes, unit));
      const gOurs = tf.grad((xx: tf.Tensor) => loss(splitColumns(xx as tf.Tensor2D, sizes, unit)))(x);
      assert.equal(tf.memory().numTensors, before + sizes.length + 1, 'only the parts and the gradient are left');
      const plain = tf.split(x, sizes, 1);
      const gPlain = tf.grad((xx: tf.Tensor) => loss(tf.split(xx, sizes, 1)))(x);
      for (const [i, p] of ours.entries()) assert.deepEqual(await values(p), await values(plain[i]));
      assert.deepEqual(await values(gOurs), await values(gPlain));
      tf.dispose([x, ...dys, ...ours, ...plain, gOurs, gPlain]);
    }
  });

  it('partial rotary: the first dims of each head turn as HF apply_rotary_pos_emb, the rest pass through', async () => {
    const [b, t, n, hd] = [2, 5, 3, 8];
    const factor = 0.5;
    const rope = ropeParams({ rope_parameters: { rope_theta: 100, partial_rotary_factor: factor } }, 'config.json');
    const inv = invFreq(rope, hd, t); // [rd / 2]
    const rd = inv.length * 2;
    assert.equal(rd, 4);
    const tables = ropeTables({ t, nh: n, nkv: n, hd }, inv, rd);
    const rot = halfRotation(hd, rd);
    const x = tf.randomNormal([b, t, n * hd], 0, 1, 'float32', 5) as tf.Tensor3D;
    const dy = tf.randomNormal([b, t, n * hd], 0, 1, 'float32', 6);
    // transformers: cat([x_rot·cos + rotate_half(x_rot)·sin, x_pass]) per head, cos/sin = cat(freqs, freqs).
    const angles = tf.mul(tf.reshape(tf.range(0, t), [t, 1]), tf.tensor2d(inv, [1, rd / 2]));
    const emb = tf.concat([angles, angles], 1); // [T, rd]
    const reference = (xx: tf.Tensor) => {
      const h = tf.reshape(xx, [b, t, n, hd]);
      const xr = tf.slice(h, [0, 0, 0, 0], [b, t, n, rd]);
      const xp = tf.slice(h, [0, 0, 0, rd], [b, t, n, hd - rd]);
      const [x1, x2] = tf.split(xr, 2, 3);
      const cos = tf.reshape(tf.cos(emb), [1, t, 1, rd]);
      const sin = tf.reshape(tf.sin(emb), [1, t, 1, rd]);
      const turned = tf.add(tf.mul(xr, cos), tf.mul(tf.concat([tf.neg(x2), x1], 3), sin));
      return tf.reshape(tf.concat([turned, xp], 3), [b, t, n * hd]);
    };
    // The k tables carry no 1/√hd scale: those are HF's rotation itself.
    const ours = (xx: tf.Tensor) => applyRope(xx as tf.Tensor3D, tables.k.cos, tables.k.sin, rot);
    const diff = maxAbsDiff(await values(ours(x)), await values(reference(x)));
    assert.ok(diff <= 1e-5, `forward ${diff}`);
    const passed = tf.slice(tf.reshape(ours(x), [b, t, n, hd]), [0, 0, 0, rd], [b, t, n, hd - rd]);
    const kept = tf.slice(tf.reshape(x, [b, t, n, hd]), [0, 0, 0, rd], [b, t, n, hd - rd]);
    assert.equal(maxAbsDiff(await values(passed), await values(kept)), 0, 'the pass-through dims are exact');
    const gOurs = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(ours(xx), dy)))(x);
    const gRef = tf.grad((xx: tf.Tensor) => tf.sum(tf.mul(reference(xx), dy)))(x);
    assert.ok(maxAbsDiff(await values(gOurs), await values(gRef)) <= 1e-5, 'gradient');
    // A model with partial rotary builds, runs, and differs from the full rotation.
    const partial = phi3({
      ...config(),
      rope_parameters: { rope_type: 'default', rope_theta: 1e4, partial_rotary_factor: 0.5 },
    });
    const full = phi3();
    const batch = BATCH();
    assert.ok(
      maxAbsDiff(await values(partial.logits(batch, NO_ADAPTERS)), await values(full.logits(batch, NO_ADAPTERS))) >
        1e-3,
    );
    disposeRope(tables);
    tf.dispose([rot.r, rot.rT]);
    partial.dispose();
    full.dispose();
  });

  it('sliding_window hides keys w or more tokens back, and changes nothing while the sequence fits', async () => {
    const run = async (extra: HFConfig) => {
      const model = phi3({ ...config(), ...extra });
      const out = await values(model.logits(BATCH(), NO_ADAPTERS));
      model.dispose();
      return out;
    };
    const full = await run({});
    assert.equal(maxAbsDiff(await run({ sliding_window: 12 }), full), 0);
    const windowed = await run({ sliding_window: 4 });
    const V = 1024;
    const firstFour = (l: number[]) => [0, 1].flatMap((r) => l.slice(r * 12 * V, (r * 12 + 4) * V));
    assert.ok(maxAbsDiff(firstFour(windowed), firstFour(full)) <= 1e-6, 'positions 0-3 see all their keys');
    assert.ok(maxAbsDiff(windowed, full) > 1e-3, 'later positions lose the far keys');
  });

  it('refuses longrope, RoPE types phi3 lacks, missing or misshapen fused weights; ignores biases', async () => {
    const longrope = { rope_type: 'longrope', rope_theta: 1e4, short_factor: [1, 1], long_factor: [1, 1] };
    assert.throws(() => phi3({ ...config(), rope_parameters: longrope }), /longrope RoPE scaling \('longrope'\)/);
    assert.throws(
      () => phi3({ ...config(), rope_scaling: { type: 'linear', factor: 2 }, rope_parameters: undefined }),
      /phi3 does not take the RoPE type 'linear'/,
    );
    const missing = loadModelWeights(PHI3);
    missing.delete('model.layers.1.mlp.gate_up_proj.weight');
    assert.throws(() => phi3(config(), missing), /model\.layers\.1\.mlp\.gate_up_proj\.weight/);
    const wrong = loadModelWeights(PHI3);
    wrong.set(
      'model.layers.0.self_attn.qkv_proj.weight',
      rows(wrong.get('model.layers.0.mlp.gate_up_proj.weight')!, 0, 64),
    );
    assert.throws(
      () => phi3(config(), wrong),
      /qkv_proj\.weight has shape \[64,32\] but config\.json implies \[96,32\]/,
    );
    const biased = loadModelWeights(PHI3);
    biased.set('model.layers.0.self_attn.qkv_proj.bias', {
      dtype: 'float32',
      shape: [QKV],
      data: new Float32Array(QKV).fill(1),
    });
    const batch = BATCH();
    const [x, y] = [phi3(config(), biased), phi3()];
    assert.equal(maxAbsDiff(await values(x.logits(batch, NO_ADAPTERS)), await values(y.logits(batch, NO_ADAPTERS))), 0);
    x.dispose();
    y.dispose();
  });

  it('builds a sequence classifier with a fresh score head', () => {
    const model = buildModel(openModelFolder(PHI3), 'sequence-classification', 2, new Rng(1));
    assert.deepEqual([model.head, model.headCreated, model.linears.has('lm_head')], ['score', true, false]);
    model.dispose();
  });
});
