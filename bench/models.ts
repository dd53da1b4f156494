// What the bench measures: the models (stories260k from ../shared; and, with random weights since no such
// checkpoints ship here, a Llama of GPT-2-small size, GPT-2-small itself, a BERT-base classifier, and Qwen3-0.6B and
// Gemma-3-270m at their real shapes), their batch
// shapes and time budgets, the LoRA / LoRA+ settings of the training step, and the code that builds each model's
// config and host weights. Shared by the parent (paths, warm-up count for PyTorch) and the worker (everything else),
// so both sides train the same thing.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadModelWeights, releaseAfterUpload, type HostTensor } from '../src/adapters/safetensors';
import type { Rng } from '../src/engine/data/rng';
import { parseBertConfig } from '../src/models/bert/config';
import { requiredBertWeights } from '../src/models/bert/weights';
import { parseGemma3Config } from '../src/models/gemma3/config';
import { requiredGemma3Weights } from '../src/models/gemma3/weights';
import { parseGpt2Config } from '../src/models/gpt2/config';
import { requiredGpt2Weights } from '../src/models/gpt2/weights';
import { parseLlamaConfig } from '../src/models/llama/config';
import { requiredLlamaWeights } from '../src/models/llama/weights';
import { parseQwen3Config } from '../src/models/qwen3/config';
import { requiredQwen3Weights } from '../src/models/qwen3/weights';
import type { HFConfig, Task } from '../src/models/types';

// `gpt2-small` is the Llama-shaped model at GPT-2-small size (its id predates the gpt2 family; the targets
// name it); `gpt2` is the gpt2 family at the same size.
export const MODEL_IDS = ['stories260k', 'gpt2-small', 'gpt2', 'bert-base', 'qwen3-0.6b', 'gemma3-270m'] as const;
export type ModelId = (typeof MODEL_IDS)[number];
export const BACKENDS = ['cuda', 'webgpu', 'wasm', 'cpu'] as const;
export type Backend = (typeof BACKENDS)[number];

export interface ModelSpec {
  label: string;
  task: Task;
  numLabels: number; // sequence-classification: labels of the fresh head; 0 for a causal LM
  targets: string[]; // LoRA target_modules (module-name suffixes)
  batch: number;
  seq: number;
  /** Budget for the timed steps of one row (default mode): stop adding steps once it is spent (≥ 3 steps). */
  budgetS: number;
}

const LLAMA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'];
export const SPECS: Record<ModelId, ModelSpec> = {
  stories260k: {
    label: 'stories260k',
    task: 'causal-lm',
    numLabels: 0,
    targets: LLAMA_TARGETS,
    batch: 32,
    seq: 128,
    budgetS: 20,
  },
  'gpt2-small': {
    label: 'Llama at GPT-2-small size (random)',
    task: 'causal-lm',
    numLabels: 0,
    targets: LLAMA_TARGETS,
    batch: 2,
    seq: 128,
    budgetS: 45,
  },
  // PEFT's default target for GPT-2 (the fused q,k,v Conv1D) and for BERT (query, value); the fresh classifier is
  // trained in full (modules_to_save), as a BERT fine-tune from bert-base-uncased does. Batch 8: the HF Trainer's
  // default per-device batch.
  gpt2: {
    label: 'GPT-2-small (gpt2, random)',
    task: 'causal-lm',
    numLabels: 0,
    targets: ['c_attn'],
    batch: 2,
    seq: 128,
    budgetS: 45,
  },
  'bert-base': {
    label: 'BERT-base classifier (random)',
    task: 'sequence-classification',
    numLabels: 2,
    targets: ['query', 'value'],
    batch: 8,
    seq: 128,
    budgetS: 60,
  },
  // The real shapes of two small models people fine-tune (random weights: speed does not depend on them), at batch
  // 1 × 256, LoRA on the attention projections. PyTorch runs them with transformers' own classes and PEFT.
  'qwen3-0.6b': {
    label: 'Qwen3-0.6B shape (random)',
    task: 'causal-lm',
    numLabels: 0,
    targets: LLAMA_TARGETS,
    batch: 1,
    seq: 256,
    budgetS: 60,
  },
  'gemma3-270m': {
    label: 'Gemma-3-270m shape (random)',
    task: 'causal-lm',
    numLabels: 0,
    targets: LLAMA_TARGETS,
    batch: 1,
    seq: 256,
    budgetS: 45,
  },
};

/** The rows whose PyTorch side is transformers' own model class with PEFT (bench/torch_hf_lora.py). */
export const HF_MODELS: readonly ModelId[] = ['qwen3-0.6b', 'gemma3-270m'];

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

/** GPT-2-small's own config.json (the Hub's `gpt2`): 12 × 768, 12 heads, MLP 3072, vocab 50257, 1024 positions. */
export const GPT2_CONFIG: HFConfig = {
  architectures: ['GPT2LMHeadModel'],
  model_type: 'gpt2',
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  vocab_size: 50257,
  activation_function: 'gelu_new',
  layer_norm_epsilon: 1e-5,
  tie_word_embeddings: true,
  initializer_range: 0.02,
};

/** bert-base-uncased's config.json: 12 × 768, 12 heads, intermediate 3072, vocab 30522, 512 positions, 2 types. */
export const BERT_BASE_CONFIG: HFConfig = {
  architectures: ['BertForSequenceClassification'],
  model_type: 'bert',
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  hidden_act: 'gelu',
  vocab_size: 30522,
  max_position_embeddings: 512,
  type_vocab_size: 2,
  layer_norm_eps: 1e-12,
  pad_token_id: 0,
  initializer_range: 0.02,
};

/** Qwen/Qwen3-0.6B's config.json: 28 layers, hidden 1024, 16 heads / 8 KV heads of 128, MLP 3072, vocab 151936,
 *  q_norm/k_norm, tied (596 M parameters). */
export const QWEN3_06B_CONFIG: HFConfig = {
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  hidden_size: 1024,
  intermediate_size: 3072,
  num_hidden_layers: 28,
  num_attention_heads: 16,
  num_key_value_heads: 8,
  head_dim: 128,
  vocab_size: 151936,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000,
  rope_scaling: null,
  hidden_act: 'silu',
  attention_bias: false,
  attention_dropout: 0,
  use_sliding_window: false,
  sliding_window: null,
  tie_word_embeddings: true,
  initializer_range: 0.02,
};

/** google/gemma-3-270m's config.json (as transformers 5 writes it): 18 layers, hidden 640, 4 heads / 1 KV head of
 *  256, MLP 2048 (gelu_pytorch_tanh), vocab 262144, a 512-token sliding window on 5 layers of every 6,
 *  query_pre_attn_scalar 256, RoPE base 1e6 (full) / 1e4 (sliding), tied (268 M parameters, 168 M of them the
 *  embedding). */
export const GEMMA3_270M_CONFIG: HFConfig = {
  architectures: ['Gemma3ForCausalLM'],
  model_type: 'gemma3_text',
  hidden_size: 640,
  intermediate_size: 2048,
  num_hidden_layers: 18,
  num_attention_heads: 4,
  num_key_value_heads: 1,
  head_dim: 256,
  vocab_size: 262144,
  max_position_embeddings: 32768,
  hidden_activation: 'gelu_pytorch_tanh',
  query_pre_attn_scalar: 256,
  sliding_window: 512,
  layer_types: Array.from({ length: 18 }, (_, i) => ((i + 1) % 6 ? 'sliding_attention' : 'full_attention')),
  rope_parameters: {
    full_attention: { rope_type: 'default', rope_theta: 1000000 },
    sliding_attention: { rope_type: 'default', rope_theta: 10000 },
  },
  rms_norm_eps: 1e-6,
  attention_bias: false,
  attention_dropout: 0,
  attn_logit_softcapping: null,
  final_logit_softcapping: null,
  use_bidirectional_attention: false,
  tie_word_embeddings: true,
  initializer_range: 0.02,
  pad_token_id: 0,
  bos_token_id: 2,
  eos_token_id: 1,
};

/** The config.json of a random-weight row (null: stories260k, whose config is its checkpoint's). */
export function benchConfig(model: ModelId): HFConfig | null {
  const configs: Partial<Record<ModelId, HFConfig>> = {
    'gpt2-small': GPT2_SMALL_CONFIG,
    gpt2: GPT2_CONFIG,
    'bert-base': BERT_BASE_CONFIG,
    'qwen3-0.6b': QWEN3_06B_CONFIG,
    'gemma3-270m': GEMMA3_270M_CONFIG,
  };
  return configs[model] ?? null;
}

export const LORA = { r: 8, lora_alpha: 16, lora_dropout: 0, use_rslora: false, modules_to_save: null };
export const LORAPLUS = { learning_rate: 1e-4, loraplus_lr_ratio: 16, loraplus_lr_embedding: 1e-6, weight_decay: 0 };
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };
export const WARMUP = 2;
/** A row whose first warm-up step takes longer than this (the plain-JS cpu backend: over a minute) gets one warm-up
 *  step and two timed ones, so that the whole bench stays near ten minutes. --steps overrides it. */
export const SLOW_STEP_MS = 30_000;

/**
 * The config and host weights of a model: stories260k's checkpoint, or random weights of the right shapes. The model
 * build may free each host tensor once it has uploaded it (releaseAfterUpload), as buildModel lets it, so that a
 * row's peak RSS includes loading as the engine does it.
 */
export function modelWeights(
  model: ModelId,
  normal: () => number,
): { config: HFConfig; weights: Map<string, HostTensor>; dir: string } {
  const dir = `<random ${model}>`;
  if (model === 'gpt2-small')
    return {
      config: GPT2_SMALL_CONFIG,
      weights: randomWeights(requiredLlamaWeights(parseLlamaConfig(GPT2_SMALL_CONFIG, dir)), normal),
      dir,
    };
  if (model === 'gpt2')
    return {
      config: GPT2_CONFIG,
      weights: randomWeights(requiredGpt2Weights(parseGpt2Config(GPT2_CONFIG, dir)), normal),
      dir,
    };
  if (model === 'qwen3-0.6b') {
    const shapes = requiredQwen3Weights(parseQwen3Config(QWEN3_06B_CONFIG, dir));
    return { config: QWEN3_06B_CONFIG, weights: randomWeights(shapes, normal), dir };
  }
  if (model === 'gemma3-270m') {
    // Gemma's RMSNorms scale by (1 + w), and transformers initialises their w to 0.
    const shapes = requiredGemma3Weights(parseGemma3Config(GEMMA3_270M_CONFIG, dir));
    return { config: GEMMA3_270M_CONFIG, weights: randomWeights(shapes, normal, 0), dir };
  }
  if (model === 'bert-base') {
    // bert-base-uncased has a pooler (BERT's head starts with it) but no classifier: the model creates that fresh.
    const shapes = requiredBertWeights(parseBertConfig(BERT_BASE_CONFIG, dir));
    shapes.set('bert.pooler.dense.weight', [768, 768]).set('bert.pooler.dense.bias', [768]);
    return { config: BERT_BASE_CONFIG, weights: randomWeights(shapes, normal), dir };
  }
  const config = JSON.parse(fs.readFileSync(path.join(STORIES_DIR, 'config.json'), 'utf8')) as HFConfig;
  return { config, weights: releaseAfterUpload(loadModelWeights(STORIES_DIR)), dir: STORIES_DIR };
}

/** HF's _init_weights for every tensor a checkpoint must have: matrices N(0, 0.02), biases 0, norm weights `norm`. */
function randomWeights(shapes: Map<string, number[]>, normal: () => number, norm = 1): Map<string, HostTensor> {
  const w = new Map<string, HostTensor>();
  for (const [name, shape] of shapes) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 2) for (let i = 0; i < data.length; i++) data[i] = normal() * 0.02;
    else if (!name.endsWith('.bias')) data.fill(norm);
    w.set(name, { dtype: 'float32', shape, data });
  }
  return releaseAfterUpload(w);
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
