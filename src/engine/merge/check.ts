// The merge's equivalence check: one fixed probe batch through base + adapter and through the merged model, compared
// logit by logit. A merged model that silently differs from its adapter is the most common complaint about LoRA
// tools (PEFT #2502, #2764); this makes the difference a number printed with every merge.
import * as tf from '@tensorflow/tfjs';
import { NO_ADAPTERS, type Adapters, type BatchTensors, type Model, type Task } from '../../models/types';
import { padId, type ModelFolder } from '../train/inputs';

export const DEFAULT_TOLERANCE = 1e-4;
const PROBE_TEXTS = [
  'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun.',
  'The quick brown fox jumps over the lazy dog, and then it runs away into the forest.',
  'It was a great movie with a wonderful story.',
];
const PROBE_LENGTH = 16; // a multiple of 8: the wasm attention kernel wants lengths that are multiples of 4

/** The probe: token ids [B, T] of fixed texts (cycled to T tokens), and for encoders a padded last row. */
export interface Probe {
  batch: number;
  seq: number;
  inputIds: Int32Array;
  attentionMask: Int32Array;
}

export function probeBatch(folder: ModelFolder, task: Task, vocabSize: number): Probe {
  const rows = PROBE_TEXTS.map((text) => {
    let ids = folder.tokenizer.encode(text, { addSpecialTokens: true }).ids.map((id) => id % vocabSize);
    if (!ids.length) ids = [1, 2, 3];
    return Array.from({ length: PROBE_LENGTH }, (_, i) => ids[i % ids.length]);
  });
  const b = rows.length;
  const inputIds = Int32Array.from(rows.flat());
  const attentionMask = new Int32Array(b * PROBE_LENGTH).fill(1);
  if (task === 'sequence-classification') {
    // The last row is half padding, so the check also covers masking and the head's choice of token.
    const pad = padId(folder) % vocabSize;
    for (let t = PROBE_LENGTH / 2; t < PROBE_LENGTH; t++) {
      inputIds[(b - 1) * PROBE_LENGTH + t] = pad;
      attentionMask[(b - 1) * PROBE_LENGTH + t] = 0;
    }
  }
  return { batch: b, seq: PROBE_LENGTH, inputIds, attentionMask };
}

/** Logits of the probe ([B, T, V] for a causal LM, [B, labels] for a classifier), flat on the host. */
export async function probeLogits(model: Model, probe: Probe, adapters: Adapters = NO_ADAPTERS): Promise<Float32Array> {
  const bt: BatchTensors = {
    inputIds: tf.tensor2d(probe.inputIds, [probe.batch, probe.seq], 'int32'),
    attentionMask: tf.tensor2d(probe.attentionMask, [probe.batch, probe.seq], 'int32'),
    typeIds: tf.zeros([probe.batch, probe.seq], 'int32') as tf.Tensor2D,
    labels: null,
  };
  try {
    const logits = tf.tidy(() =>
      model.logits(bt, { lora: adapters.lora, trainable: adapters.trainable, dropoutSeed: null }),
    );
    const data = (await logits.data()) as Float32Array;
    logits.dispose();
    return data;
  } finally {
    tf.dispose([bt.inputIds, bt.attentionMask, bt.typeIds!]);
  }
}

export interface LogitsDiff {
  max_abs_diff: number; // max |merged − reference| over every logit
  max_rel_diff: number; // max_abs_diff / max |reference|
  nonfinite: number; // NaN/Inf logits in the merged model's output
  logits: number; // how many were compared
}

export function compareLogits(merged: Float32Array, reference: Float32Array): LogitsDiff {
  if (merged.length !== reference.length)
    throw new Error(`internal: ${merged.length} merged logits vs ${reference.length}`);
  let maxAbs = 0,
    scale = 0,
    nonfinite = 0;
  for (let i = 0; i < merged.length; i++) {
    if (!Number.isFinite(merged[i])) {
      nonfinite++;
      continue;
    }
    maxAbs = Math.max(maxAbs, Math.abs(merged[i] - reference[i]));
    scale = Math.max(scale, Math.abs(reference[i]));
  }
  return { max_abs_diff: maxAbs, max_rel_diff: scale > 0 ? maxAbs / scale : maxAbs, nonfinite, logits: merged.length };
}

/** Counts NaN/Inf values. */
export function countNonFinite(values: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) n++;
  return n;
}
