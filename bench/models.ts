// What the bench measures: the two models (stories260k from ../shared, and a Llama of GPT-2-small size with random
// weights, since no such checkpoint ships here), their batch shapes and time budgets, the LoRA / LoRA+ settings of
// the training step, and the code that builds each model's config and host weights. Shared by the parent (paths,
// warm-up count for PyTorch) and the worker (everything else), so both sides train the same thing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelWeights, type HostTensor } from '../src/adapters/safetensors';
import type { Rng } from '../src/engine/rng';
import type { HFConfig } from '../src/models/types';

export const MODEL_IDS = ['stories260k', 'gpt2-small'] as const;
export type ModelId = (typeof MODEL_IDS)[number];
export const BACKENDS = ['cuda', 'webgpu', 'wasm', 'cpu'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface ModelSpec {
  label: string;
  batch: number;
  seq: number;
  /** Budget for the timed steps of one row (default mode): stop adding steps once it is spent (≥ 3 steps). */
  budgetS: number;
}

export const SPECS: Record<ModelId, ModelSpec> = {
  stories260k: { label: 'stories260k', batch: 32, seq: 128, budgetS: 20 },
  'gpt2-small': { label: 'gpt2-small (Llama, random)', batch: 2, seq: 128, budgetS: 45 },
};

// __dirname is dist/ once bundled (every bench module ends up in dist/bench.js).
export const STORIES_DIR = path.resolve(__dirname, '..', '..', 'shared', 'models', 'stories260k');

export const storiesPresent = (): boolean => fs.existsSync(path.join(STORIES_DIR, 'model.safetensors'));

/** A Llama-shaped model at GPT-2-small size (12 × 768, 12 heads, MLP 3072, vocab 50257, tied embeddings). */
export const GPT2_SMALL_CONFIG: HFConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  num_key_value_heads: 12,
  vocab_size: 50257,
  max_position_embeddings: 1024,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  hidden_act: 'silu',
  tie_word_embeddings: true,
  initializer_range: 0.02,
};

export const LORA = { r: 8, lora_alpha: 16, lora_dropout: 0, use_rslora: false, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'], modules_to_save: null };
export const LORAPLUS = { learning_rate: 1e-4, loraplus_lr_ratio: 16, loraplus_lr_embedding: 1e-6, weight_decay: 0 };
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
export const WARMUP = 2;
/** A row whose first warm-up step takes longer than this (the plain-JS cpu backend: over a minute) gets one warm-up
 *  step and two timed ones, so that the whole bench stays near ten minutes. --steps overrides it. */
export const SLOW_STEP_MS = 30_000;

/** The config and host weights of a model: stories260k's checkpoint, or random GPT-2-small-sized weights. */
export function modelWeights(model: ModelId, normal: () => number): { config: HFConfig; weights: Map<string, HostTensor>; dir: string } {
  if (model === 'gpt2-small') return { config: GPT2_SMALL_CONFIG, weights: randomLlamaWeights(GPT2_SMALL_CONFIG, normal), dir: '<random gpt2-small>' };
  const config = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8')) as HFConfig;
  return { config, weights: loadModelWeights(STORIES_DIR), dir: STORIES_DIR };
}

/** N(0, 0.02) weights for a Llama config (norm weights 1), as HF's _init_weights. */
function randomLlamaWeights(c: HFConfig, normal: () => number): Map<string, HostTensor> {
  const h = c.hidden_size as number;
  const inter = c.intermediate_size as number;
  const hd = h / (c.num_attention_heads as number);
  const q = (c.num_attention_heads as number) * hd;
  const kv = (c.num_key_value_heads as number) * hd;
  const w = new Map<string, HostTensor>();
  const randn = (shape: number[]): HostTensor => {
    const data = new Float32Array(shape[0] * (shape[1] ?? 1));
    for (let i = 0; i < data.length; i++) data[i] = normal() * 0.02;
    return { dtype: 'float32', shape, data };
  };
  const ones = (n: number): HostTensor => ({ dtype: 'float32', shape: [n], data: new Float32Array(n).fill(1) });
  w.set('model.embed_tokens.weight', randn([c.vocab_size as number, h]));
  w.set('model.norm.weight', ones(h));
  for (let i = 0; i < (c.num_hidden_layers as number); i++) {
    const p = `model.layers.${i}`;
    w.set(`${p}.input_layernorm.weight`, ones(h));
    w.set(`${p}.post_attention_layernorm.weight`, ones(h));
    w.set(`${p}.self_attn.q_proj.weight`, randn([q, h]));
    w.set(`${p}.self_attn.k_proj.weight`, randn([kv, h]));
    w.set(`${p}.self_attn.v_proj.weight`, randn([kv, h]));
    w.set(`${p}.self_attn.o_proj.weight`, randn([h, q]));
    w.set(`${p}.mlp.gate_proj.weight`, randn([inter, h]));
    w.set(`${p}.mlp.up_proj.weight`, randn([inter, h]));
    w.set(`${p}.mlp.down_proj.weight`, randn([h, inter]));
  }
  return w;
}

/** Box–Muller over the seeded generator (both values of each pair are used). */
export function gaussian(rng: Rng): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const r = Math.sqrt(-2 * Math.log(Math.max(rng.next(), 1e-12)));
    const th = 2 * Math.PI * rng.next();
    spare = r * Math.sin(th);
    return r * Math.cos(th);
  };
}
