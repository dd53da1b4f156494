// The memory estimate (src/engine/checks/memory.ts): its components against exact counts (parameters, LoRA factors,
// AdamW state; on wasm the tensors the engine really holds, counted by the backend's allocations, not RSS), real
// model shapes refused or not on wasm, the one problem a config that cannot fit gets, and the hover on `model`.
// The measured comparison with real runs (wasm heap, peak RSS) is bench/memory.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights } from '../../../src/adapters/safetensors';
import { configFromObject } from '../../../src/config/load';
import { checkConfigText } from '../../../src/engine/checks/config';
import { inspectModel, type ModelSummary } from '../../../src/engine/checks/inspect';
import { estimateMemory, judgeMemory } from '../../../src/engine/checks/memory';
import { backendLimit, WASM_HEAP, WASM_RUNTIME } from '../../../src/engine/checks/sizes';
import { Rng } from '../../../src/engine/data/rng';
import { AdamW, loraplusGroups } from '../../../src/engine/train/optimizer';
import { Trainables } from '../../../src/engine/train/trainables';
import { createModel } from '../../../src/models/create';
import { FAMILIES } from '../../../src/models/registry';
import type { HFConfig } from '../../../src/models/types';
import { hoverAt } from '../../../src/vscode/editor/suggest';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const skip = !fs.existsSync(path.join(STORIES, 'model.safetensors')) && 'needs ../shared (stories260k, SST-2)';
const DEV = path.join(SST2, 'dev.tsv');
const NEVER_WRITTEN = () => false;

interface Settings {
  batch?: number;
  length?: number;
  targets?: string[] | string;
  accumulate?: number;
}

/** A config (defaults filled in) with these settings on wasm; its `model` is stories260k (the estimate takes the
 *  model summary it is given). */
function config(o: Settings) {
  return configFromObject(
    {
      model: STORIES,
      device: 'wasm',
      data: { train: DEV, text_field: 'sentence', max_length: o.length ?? 256 },
      lora: { r: 8, lora_alpha: 16, ...(o.targets ? { target_modules: o.targets } : {}) },
      training: { batch_size: o.batch ?? 1, gradient_accumulation_steps: o.accumulate ?? 1 },
    },
    path.dirname(DEV),
  );
}

interface Shape {
  modelType: string;
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  qkNorm: boolean; // Qwen3's per-head q_norm and k_norm
}

/** A model summary as inspectModel reads it from a tied Llama-layout checkpoint's headers, without the file. */
function synthetic(s: Shape): ModelSummary {
  const raw: HFConfig = {
    model_type: s.modelType,
    hidden_size: s.hidden,
    num_hidden_layers: s.layers,
    num_attention_heads: s.heads,
    num_key_value_heads: s.kvHeads,
    head_dim: s.headDim,
    intermediate_size: s.intermediate,
    vocab_size: s.vocab,
    tie_word_embeddings: true,
  };
  const [q, kv] = [s.heads * s.headDim, s.kvHeads * s.headDim];
  const linears = new Map<string, [number, number]>();
  const tensors = new Map<string, number>([
    ['model.embed_tokens.weight', s.vocab * s.hidden],
    ['model.norm.weight', s.hidden],
  ]);
  for (let i = 0; i < s.layers; i++) {
    const p = `model.layers.${i}`;
    const shapes: [string, number, number][] = [
      ['self_attn.q_proj', q, s.hidden],
      ['self_attn.k_proj', kv, s.hidden],
      ['self_attn.v_proj', kv, s.hidden],
      ['self_attn.o_proj', s.hidden, q],
      ['mlp.gate_proj', s.intermediate, s.hidden],
      ['mlp.up_proj', s.intermediate, s.hidden],
      ['mlp.down_proj', s.hidden, s.intermediate],
    ];
    for (const [n, out, inp] of shapes) {
      linears.set(`${p}.${n}`, [out, inp]);
      tensors.set(`${p}.${n}.weight`, out * inp);
    }
    for (const n of ['input_layernorm', 'post_attention_layernorm']) tensors.set(`${p}.${n}.weight`, s.hidden);
    if (s.qkNorm) for (const n of ['q_norm', 'k_norm']) tensors.set(`${p}.self_attn.${n}.weight`, s.headDim);
  }
  const family = FAMILIES[s.modelType];
  return {
    dir: s.modelType,
    config: raw,
    family,
    linears,
    embeddings: ['model.embed_tokens'],
    positions: null,
    tensors,
    storedF32: 0, // as the Hub ships them: bf16
  };
}

const QWEN3_06B: Shape = {
  modelType: 'qwen3',
  layers: 28,
  hidden: 1024,
  heads: 16,
  kvHeads: 8,
  headDim: 128,
  intermediate: 3072,
  vocab: 151936,
  qkNorm: true,
};
const LLAMA_32_1B: Shape = {
  modelType: 'llama',
  layers: 16,
  hidden: 2048,
  heads: 32,
  kvHeads: 8,
  headDim: 64,
  intermediate: 8192,
  vocab: 128256,
  qkNorm: false,
};

describe('the estimate at real shapes, batch 1 × 256 on wasm', { skip }, () => {
  const qwen = synthetic(QWEN3_06B);
  const llama = synthetic(LLAMA_32_1B);
  const c = () => config({ batch: 1, length: 256 });

  it('Qwen3-0.6B: its parameters, LoRA factors and optimizer state, counted exactly', () => {
    const e = estimateMemory(c(), qwen, 'cpu')!;
    // Qwen3-0.6B has 596,049,920 parameters (tied head): 0.44B in the layers, 0.16B in the embedding.
    const lora = 28 * 8 * (1024 + 2048 + (1024 + 1024)); // q_proj and v_proj, r = 8: r·(in + out) each
    assert.equal(e.parameters, 596_049_920 + lora);
    assert.equal(e.trainable, lora);
    assert.equal(e.weights, 4 * e.parameters); // float32, whatever the checkpoint's dtype
    assert.equal(e.optimizer, 4 * 4 * lora); // m, v, the gradient and its clipped copy
    assert.equal(estimateMemory(config({ accumulate: 4 }), qwen, 'cpu')!.optimizer, 5 * 4 * lora); // + the running sum
    assert.ok(Math.abs(e.weights / 1e9 - 2.39) < 0.01, `${e.weights}`);
  });

  it("Qwen3-0.6B does not fit: wasm's packed copies double its 2.4 GB of weights past the 4 GiB heap", () => {
    const e = estimateMemory(c(), qwen, 'wasm')!;
    const linears = 28 * (2048 * 1024 * 2 + 1024 * 1024 * 2 + 3 * 3072 * 1024);
    assert.equal(e.packed, 4 * (linears + 151936 * 1024)); // every Linear and the tied head
    assert.ok(e.weights > WASM_HEAP, `${e.weights}`);
    // The activations of 256 tokens alone are about 5 GB: 28 layers of ≈ 150 tensors [256, 1024] each, and logits.
    assert.ok(e.activations > 4e9 && e.activations < 6e9, `${e.activations}`);
    const p = judgeMemory(c(), qwen, backendLimit('wasm'), NEVER_WRITTEN)!;
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/memory-too-large', 'model']);
    assert.match(p.message, /needs ≈ \d+\.\d GB on wasm for batch_size 1 × max_length 256 \(weights 4\.\d\d GB/);
    assert.match(p.message, /more than the 4\.28 GB of the wasm backend's 4 GiB heap/);
    assert.match(p.hint!, /The weights alone need 4\.\d\d GB \(2\.\d\d GB of them wasm's packed copies\)/);
    // On a GPU, whose memory the host cannot know, it is a warning at most.
    assert.equal(judgeMemory(c(), qwen, backendLimit('webgpu'), NEVER_WRITTEN)?.severity ?? 'warning', 'warning');
  });

  it('Llama-3.2-1B is refused: its weights alone are 4.9 GB', () => {
    const e = estimateMemory(c(), llama, 'cpu')!;
    assert.equal(e.parameters - e.trainable, 1_235_814_400);
    assert.ok(Math.abs(e.weights / 1e9 - 4.94) < 0.01, `${e.weights}`);
    const p = judgeMemory(c(), llama, backendLimit('wasm'), NEVER_WRITTEN)!;
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/memory-too-large', 'model']);
    assert.match(p.hint!, /use a smaller model/);
  });

  it('activations grow with batch × length, and with length² for the attention scores', () => {
    const at = (batch: number, length: number) => estimateMemory(config({ batch, length }), qwen, 'cpu')!;
    const [a, b, l] = [at(1, 256), at(2, 256), at(1, 512)];
    assert.ok(Math.abs(b.activations / a.activations - 2) < 1e-9);
    assert.ok(Math.abs(b.quadratic / a.quadratic - 2) < 1e-9);
    assert.ok(Math.abs(l.quadratic / a.quadratic - 4) < 1e-9);
    assert.equal(b.weights, a.weights);
    // all-linear adapts 7 Linears a layer: more factors, and each adapted input is kept with its gradient.
    const all = estimateMemory(config({ targets: 'all-linear' }), qwen, 'cpu')!;
    const perLayer = (1024 + 2048) * 2 + (1024 + 1024) * 2 + (1024 + 3072) * 3; // q, o; k, v; gate, up, down
    assert.equal(all.trainable, 28 * 8 * perLayer);
    assert.ok(all.activations > a.activations);
  });
});

describe('the estimate against the tensors the engine holds (stories260k, wasm)', { skip }, () => {
  before(() => useBackend());

  it('weights, LoRA factors and AdamW state exactly; one step’s activations within 25%, never under', () => {
    const cfg = config({ batch: 8, length: 64, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
    const m = inspectModel(STORIES);
    assert.ok(m.ok);
    const e = estimateMemory(cfg, m.value, 'wasm')!;
    const live = allocations();
    const start = live.bytes(); // the backend's buffers (tf.memory() counts a variable and its initial value twice)
    const family = FAMILIES.llama;
    const rng = new Rng(1);
    const model = createModel(family, m.value.config, loadModelWeights(STORIES), {
      task: 'causal-lm',
      numLabels: 0,
      normal: () => 0,
      dir: STORIES,
    });
    const tr = new Trainables(model, { ...cfg.lora }, family, () => rng.next(), null);
    const params = tr.params();
    // The checkpoint's tensors and the factors, and RoPE's rotation R and Rᵀ (head_dim² each, too small to count).
    const rotation = 4 * 2 * 8 ** 2;
    assert.equal(live.bytes() - start, 4 * e.parameters + rotation);
    const groups = loraplusGroups(params, { ...cfg.training, loraplus_lr_embedding: 1e-6 });
    const opt = new AdamW(groups, { beta1: 0.9, beta2: 0.999, eps: 1e-8 });
    assert.equal(live.bytes() - start - 4 * e.parameters - rotation, 8 * e.trainable); // m and v
    const ids = Int32Array.from({ length: 8 * 64 }, () => 3 + Math.floor(rng.next() * 500));
    const batch = {
      inputIds: tf.tensor2d(ids, [8, 64], 'int32'),
      attentionMask: tf.ones([8, 64], 'int32') as tf.Tensor2D,
      typeIds: null,
      labels: null,
    };
    const step = () => {
      const { value, grads } = tf.variableGrads(
        () => model.loss(batch, tr),
        params.map((p) => p.variable),
      );
      const deltas = opt.step(new Map(params.map((p) => [p.name, grads[p.variable.name]])), 1);
      tf.dispose([...Object.values(grads), ...deltas.values(), value]);
    };
    step(); // the RoPE tables of this length are made once
    const base = live.bytes();
    live.reset();
    step();
    const used = live.peak() - base;
    tf.dispose([batch.inputIds, batch.attentionMask]);
    opt.dispose();
    tr.dispose();
    model.dispose();
    live.stop();
    assert.ok(e.activations >= used && e.activations <= 1.25 * used, `estimate ${e.activations}, used ${used}`);
  });
});

/** The wasm backend's allocations: bytes live now and at most since reset (tensor data, without the heap's own). */
function allocations() {
  const be = tf.backend() as unknown as {
    move: (id: object, v: unknown, shape: number[], dtype: string, rc: number) => void;
    disposeData: (id: object, force?: boolean) => boolean;
    dataIdMap: { has(id: object): boolean };
  };
  const [move, dispose] = [be.move, be.disposeData];
  const sizes = new Map<object, number>();
  let [now, top] = [0, 0];
  be.move = (id, v, shape, dtype, rc) => {
    move.call(be, id, v, shape, dtype, rc);
    sizes.set(id, 4 * shape.reduce((a, b) => a * b, 1));
    now += sizes.get(id)!;
    top = Math.max(top, now);
  };
  be.disposeData = (id, force) => {
    const r = dispose.call(be, id, force);
    if (sizes.has(id) && !be.dataIdMap.has(id)) {
      now -= sizes.get(id)!;
      sizes.delete(id);
    }
    return r;
  };
  return {
    bytes: () => now,
    peak: () => top,
    reset: () => (top = now),
    stop: () => Object.assign(be, { move, disposeData: dispose }),
  };
}

describe('the memory check in validate, train and the editor', { skip }, () => {
  const dir = tempDir('loraplus-memory-');
  const base = `model: ${STORIES}\ndevice: wasm\ndata:\n  train: ${DEV}\n  text_field: sentence\n`;
  const check = (text: string) =>
    checkConfigText(text, dir).problems.filter((p) => p.code.startsWith('config/memory') || p.code.includes('pass'));

  it('a batch that cannot fit: one error at batch_size, with the numbers and a batch_size that fits', () => {
    const [p, ...rest] = check(`${base}  max_length: 256\ntraining:\n  batch_size: 128\n`);
    assert.deepEqual(rest, []);
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/memory-too-large', 'training.batch_size']);
    assert.match(p.message, /needs ≈ \d+\.\d+ GB on wasm for batch_size 128 × max_length 256 \(weights 2 MB/);
    assert.match(p.message, /activations \d+\.\d+ GB.*more than the 4\.28 GB of the wasm backend's 4 GiB heap/);
    const fit = Number(/batch_size (\d+) fits/.exec(p.hint!)![1]);
    assert.ok(fit >= 32 && fit < 128, p.hint);
    assert.equal(128 % fit, 0); // a divisor: the same effective batch with more accumulation steps
    assert.match(p.hint!, new RegExp(`gradient_accumulation_steps to ${128 / fit} to keep the effective batch 128`));
    assert.deepEqual(p.fix, { kind: 'setValue', title: `Set batch_size to ${fit}`, value: fit });
    const stories = (inspectModel(STORIES) as { value: ModelSummary }).value;
    assert.ok(estimateMemory(config({ batch: fit }), stories, 'wasm')!.total <= WASM_HEAP - WASM_RUNTIME);
    assert.deepEqual(check(`${base}  max_length: 256\ntraining:\n  batch_size: ${fit}\n`), []);
    // device: torch trains on PyTorch, whose memory is not our engine's tensors: no estimate, no refusal.
    assert.deepEqual(check(`${base.replace('wasm', 'torch')}  max_length: 256\ntraining:\n  batch_size: 128\n`), []);
  });

  it('when the attention scores are most of it, the error is at max_length', () => {
    const [p] = check(`${base}  max_length: 1024\ntraining:\n  batch_size: 16\n`);
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/memory-too-large', 'data.max_length']);
    const fit = Number(/max_length (\d+) fits/.exec(p.hint!)![1]);
    assert.ok(fit >= 256 && fit < 1024 && fit % 8 === 0, p.hint);
    assert.deepEqual(p.fix, { kind: 'setValue', title: `Set max_length to ${fit}`, value: fit });
  });

  it('a single tensor past what wasm allocates (2 GiB): pass-too-large, at max_length when the scores are it', () => {
    const [p] = check(`${base}  max_length: 4096\ntraining:\n  batch_size: 8\n`);
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/pass-too-large', 'data.max_length']);
    assert.match(p.message, /8 × 8 × 4096².*the 0\.5G \(2\.15 GB\) one tensor can hold on wasm/);
  });

  it('the hover on `model` shows what this config needs and the limit', () => {
    const h = hoverAt(`${base}  max_length: 128\ntraining:\n  batch_size: 32\n`, 1, dir)!;
    assert.match(h.markdown, /Memory: needs ≈ \d+ MB for this config at batch_size 32 × max_length 128 \(/);
    assert.match(h.markdown, /\(weights 2 MB with wasm's packed copies, optimizer 1 MB, activations \d+ MB, /);
    assert.match(h.markdown, /heap overhead \d+ MB; limit 4\.28 GB on wasm\)/);
  });
});
