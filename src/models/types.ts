// What every model family implements. Module paths are Hugging Face's (and so PEFT's): the model of
// LlamaForCausalLM has `model.layers.0.self_attn.q_proj`, `lm_head`; its classifier head is `score`.
import type * as tf from '@tensorflow/tfjs';
import type { FrozenLinear, LoraModule, TrainableLinear } from '../adapters/lora';

export type Task = 'causal-lm' | 'sequence-classification';

/** The head a config's task trains: instruction tuning (sft) trains the language-model head, on chosen tokens. */
export function modelTask(task: Task | 'sft'): Task {
  return task === 'sft' ? 'causal-lm' : task;
}

/** A batch on the device. Row-major [batch, seq]; int32. */
export interface BatchTensors {
  inputIds: tf.Tensor2D;
  attentionMask: tf.Tensor2D; // 1 = token, 0 = padding
  typeIds: tf.Tensor2D | null; // token types (BERT-style sentence pairs)
  labels: tf.Tensor1D | null; // [batch], sequence classification only
  lossMask?: tf.Tensor2D | null; // sft: 1 where a token is a target; else every non-padding token is (causal LM)
  lossCount?: number | null; // what the loss sum is divided by (all targets of an accumulated batch); else its own
  segmentIds?: tf.Tensor2D | null; // packed rows: tokens attend only within their segment (0: padding)
  positionIds?: tf.Tensor2D | null; // packed rows: each segment's positions start at 0
}

/** The trainable parts a forward pass uses: LoRA pairs and fully trained modules (PEFT modules_to_save). */
export interface Adapters {
  lora: ReadonlyMap<string, LoraModule>;
  trainable: ReadonlyMap<string, TrainableLinear>;
  dropoutSeed: number | null; // null: eval (no dropout)
}

export const NO_ADAPTERS: Adapters = { lora: new Map(), trainable: new Map(), dropoutSeed: null };

export interface Model {
  readonly family: string; // folder under src/models
  readonly modelType: string; // config.json model_type
  readonly task: Task;
  readonly vocabSize: number;
  readonly maxPositions: number;
  readonly numLabels: number; // 0 for causal-lm
  /** Every nn.Linear by module path: what LoRA can target and modules_to_save can train. */
  readonly linears: ReadonlyMap<string, FrozenLinear>;
  /** The task head's module path (trained as modules_to_save), or null for a causal LM. */
  readonly head: string | null;
  /** True when the head was not in the checkpoint and was created fresh. */
  readonly headCreated: boolean;
  /** Parameters in the base model (each tied tensor counted once). */
  readonly paramCount: number;
  /** causal-lm: logits [batch, seq, vocab]; sequence-classification: logits [batch, numLabels]. */
  logits(batch: BatchTensors, adapters: Adapters): tf.Tensor;
  /** Mean cross-entropy: next-token over non-padding positions, or over the batch's labels. */
  loss(batch: BatchTensors, adapters: Adapters): tf.Scalar;
  dispose(): void;
}

/** What a family's constructor needs besides config.json and the weights. */
export interface BuildOptions {
  task: Task;
  numLabels: number; // sequence-classification only
  normal: () => number; // N(0, 1) draws for a freshly created head
  dir: string; // for error messages
}

/** config.json as read from disk. */
export type HFConfig = Record<string, unknown> & { model_type?: string; architectures?: string[] };
