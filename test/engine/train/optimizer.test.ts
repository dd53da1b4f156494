// The LoRA+ optimizer: PEFT create_loraplus_optimizer's groups, PyTorch's AdamW formulas, schedules, clipping.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { AdamW, clipGradients, loraplusGroups, type Trainable } from '../../../src/engine/train/optimizer';
import { lrMultiplier } from '../../../src/engine/train/schedule';
import { useBackend, values } from '../../helpers/shared';

const param = (name: string, shape: number[], embedding = false): Trainable => ({
  name,
  variable: tf.variable(tf.ones(shape), true, `${name}-${Math.random()}`),
  embedding,
});
const settings = { learning_rate: 1e-3, loraplus_lr_ratio: 16, loraplus_lr_embedding: 1e-6, weight_decay: 0.1 };

describe('LoRA+ parameter groups (PEFT create_loraplus_optimizer)', () => {
  before(() => useBackend());

  it('puts lora_B and 1-D tensors at lr·λ, lora_A and 2-D head weights at lr, embedding adapters at their own lr', () => {
    const groups = loraplusGroups(
      [
        param('model.layers.0.self_attn.q_proj.lora_A.weight', [4, 8]),
        param('model.layers.0.self_attn.q_proj.lora_B.weight', [8, 4]),
        param('classifier.weight', [2, 8]),
        param('classifier.bias', [2]),
        param('model.embed_tokens.lora_embedding_A', [4, 16], true),
      ],
      settings,
    );
    const by = Object.fromEntries(groups.map((g) => [g.name, g]));
    assert.deepEqual(by.A.params, ['model.layers.0.self_attn.q_proj.lora_A.weight', 'classifier.weight']);
    assert.equal(by.A.lr, 1e-3);
    assert.deepEqual(by.B.params, ['model.layers.0.self_attn.q_proj.lora_B.weight']);
    assert.equal(by.B.lr, 16e-3);
    assert.equal(by.B.weight_decay, 0.1);
    assert.deepEqual(by.B_no_decay.params, ['classifier.bias']); // 1-D: lr·λ and, as transformers does, no decay
    assert.equal(by.B_no_decay.lr, 16e-3);
    assert.equal(by.B_no_decay.weight_decay, 0);
    assert.deepEqual(by.embedding.params, ['model.embed_tokens.lora_embedding_A']);
    assert.equal(by.embedding.lr, 1e-6);
  });

  it('with λ = 1 every LoRA tensor gets the same lr (plain LoRA)', () => {
    const groups = loraplusGroups([param('m.lora_A.weight', [2, 3]), param('m.lora_B.weight', [3, 2])], {
      ...settings,
      loraplus_lr_ratio: 1,
    });
    assert.deepEqual(
      groups.map((g) => g.lr),
      [1e-3, 1e-3],
    );
  });
});

describe('AdamW', () => {
  before(() => useBackend());

  it('follows torch.optim.AdamW for two steps (decoupled weight decay, bias correction)', async () => {
    const p = param('w.lora_A.weight', [2]);
    p.variable.assign(tf.tensor1d([0.5, -1]));
    const opt = new AdamW([{ name: 'A', lr: 0.1, weight_decay: 0.01, params: [p.name], vars: [p] }], {
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
    });
    // By hand: torch's update, written out.
    let w = [0.5, -1];
    const m = [0, 0];
    const v = [0, 0];
    const gs = [
      [0.2, -0.4],
      [0.1, 0.3],
    ];
    for (let t = 1; t <= 2; t++) {
      const d = opt.step(new Map([[p.name, tf.tensor1d(gs[t - 1])]]), 1);
      tf.dispose([...d.values()]);
      w = w.map((wi, i) => {
        const decayed = wi * (1 - 0.1 * 0.01);
        m[i] = 0.9 * m[i] + 0.1 * gs[t - 1][i];
        v[i] = 0.999 * v[i] + 0.001 * gs[t - 1][i] ** 2;
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - 0.999 ** t) + 1e-8;
        return decayed - (0.1 / (1 - 0.9 ** t)) * (m[i] / denom);
      });
      const got = await values(p.variable);
      got.forEach((g, i) => assert.ok(Math.abs(g - w[i]) < 1e-6, `step ${t}: ${g} vs ${w[i]}`));
    }
    const state = await opt.state();
    assert.deepEqual([...state.keys()].sort(), ['w.lora_A.weight.exp_avg', 'w.lora_A.weight.exp_avg_sq']);
    opt.dispose();
  });

  it('clips the global gradient norm like clip_grad_norm_, and leaves small gradients alone', async () => {
    const big = new Map([
      ['a', tf.tensor1d([3, 0])],
      ['b', tf.tensor1d([0, 4])],
    ]);
    const c = clipGradients(big, 1);
    assert.ok(Math.abs((await values(c.norm))[0] - 5) < 1e-6);
    assert.ok(Math.abs((await values(c.grads.get('b')!))[1] - 0.8) < 1e-5);
    const off = clipGradients(big, 0);
    assert.deepEqual(await values(off.grads.get('a')!), [3, 0]);
  });
});

describe('schedules (transformers formulas)', () => {
  it('linear warmup then linear decay to 0; cosine; constant', () => {
    assert.equal(lrMultiplier('linear', 0, 10, 110), 0);
    assert.equal(lrMultiplier('linear', 5, 10, 110), 0.5);
    assert.equal(lrMultiplier('linear', 10, 10, 110), 1);
    assert.equal(lrMultiplier('linear', 60, 10, 110), 0.5);
    assert.equal(lrMultiplier('linear', 110, 10, 110), 0);
    assert.ok(Math.abs(lrMultiplier('cosine', 60, 10, 110) - 0.5) < 1e-12);
    assert.equal(lrMultiplier('cosine', 10, 10, 110), 1);
    assert.equal(lrMultiplier('constant', 99, 0, 100), 1);
    assert.equal(lrMultiplier('constant', 2, 4, 100), 0.5);
  });
});
