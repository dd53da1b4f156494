// Evaluation over a data set: mean loss, and accuracy (classification) or perplexity (causal LM, sft). sft also
// gets the token accuracy of the answers, as TRL logs `mean_token_accuracy`. Causal LM loss is averaged over
// predicted tokens, as perplexity = exp(mean token loss) requires.
import * as tf from '@tensorflow/tfjs';
import { crossEntropy } from '../../models/layers';
import type { Adapters, BatchTensors, Model } from '../../models/types';
import { NO_ADAPTERS } from '../../models/types';
import type { EvalProgressEvent } from '../../protocol/events';
import { collate, datasetSize, disposeBatch, targetCount, toTensors, type Dataset } from './inputs';

export interface EvalResult {
  loss: number;
  accuracy?: number;
  perplexity?: number;
  token_accuracy?: number; // sft: share of answer tokens the model ranks first, given the tokens before them
  exact_match?: number; // sft with eval.generate on short answers (samples.ts)
  examples: number;
}

/** Called with the examples evaluated so far: 0 before the first batch, then after each batch. */
export type EvalProgress = (done: number, total: number) => void;

export async function evaluate(
  model: Model,
  ds: Dataset,
  padId: number,
  batchSize: number,
  adapters: Adapters = NO_ADAPTERS,
  onProgress?: EvalProgress,
): Promise<EvalResult> {
  const eval_: Adapters = { lora: adapters.lora, trainable: adapters.trainable, dropoutSeed: null }; // no dropout
  const n = datasetSize(ds);
  let lossSum = 0;
  let weight = 0;
  let correct = 0;
  onProgress?.(0, n);
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const b = collate(ds, idx, padId);
    const bt = toTensors(b);
    const out = tf.tidy(() => {
      if (ds.kind === 'sft') return sftFigures(model, bt, eval_);
      const loss = model.loss(bt, eval_);
      if (ds.kind !== 'sequence-classification') return [loss];
      const pred = tf.argMax(model.logits(bt, eval_), -1);
      return [loss, tf.sum(tf.cast(tf.equal(pred, bt.labels!), 'int32'))];
    });
    disposeBatch(bt);
    const vals = await Promise.all(out.map(async (t) => (await t.data())[0]));
    tf.dispose(out);
    // Weight each batch by what its mean was taken over: predicted tokens (sft: the answers), or examples.
    const w = targetCount(b);
    lossSum += vals[0] * w;
    weight += w;
    if (ds.kind !== 'causal-lm') correct += vals[1];
    onProgress?.(Math.min(n, start + batchSize), n);
  }
  const loss = lossSum / Math.max(1, weight);
  if (ds.kind === 'sequence-classification') return { loss, accuracy: correct / Math.max(1, n), examples: n };
  const perplexity = Math.exp(loss);
  if (ds.kind === 'causal-lm') return { loss, perplexity, examples: n };
  return { loss, perplexity, token_accuracy: correct / Math.max(1, weight), examples: n };
}

/**
 * An EvalProgress that passes on the start and then at most one report per `everyMs` (the last batch's report is
 * left to the eval's own result, which follows at once).
 */
export function throttledProgress(report: EvalProgress, everyMs = 1000, now = Date.now): EvalProgress {
  let last = -Infinity;
  return (done, total) => {
    const t = now();
    if (done !== 0 && (done >= total || t - last < everyMs)) return;
    last = t;
    report(done, total);
  };
}

/** eval_progress events for an eval at `step`, at most about one a second, with the run's clock. */
export function progressEvents(emit: (e: EvalProgressEvent) => void, step: number, clock: () => number): EvalProgress {
  return throttledProgress((done, total) => emit({ type: 'eval_progress', step, done, total, elapsed_s: clock() }));
}

/**
 * sft's mean loss over the answer tokens and how many of them are the argmax of the logits one position earlier
 * (TRL's mean_token_accuracy), from one forward pass: the loss is model.loss's, computed on the same logits.
 */
function sftFigures(model: Model, bt: BatchTensors, a: Adapters): [tf.Scalar, tf.Scalar] {
  const logits = model.logits(bt, a) as tf.Tensor3D; // [B, T, V]
  const [b, t, v] = logits.shape;
  const before = tf.slice(logits, [0, 0, 0], [b, t - 1, v]); // positions 0…T−2 predict tokens 1…T−1
  const next = tf.slice(bt.inputIds, [0, 1], [b, t - 1]); // [B, T−1]
  const mask = tf.slice(bt.lossMask ?? bt.attentionMask, [0, 1], [b, t - 1]); // [B, T−1]: the answer tokens
  const loss = crossEntropy(
    tf.reshape(before, [b * (t - 1), v]) as tf.Tensor2D,
    tf.reshape(next, [-1]) as tf.Tensor1D,
    tf.reshape(tf.cast(mask, 'float32'), [-1]) as tf.Tensor1D,
  );
  const hits = tf.sum(tf.mul(tf.cast(tf.equal(tf.argMax(before, -1), next), 'int32'), tf.cast(mask, 'int32')));
  return [loss, hits as tf.Scalar];
}
