// Evaluation over a data set: mean loss, and accuracy (classification) or perplexity (causal LM).
// Causal LM loss is averaged over predicted tokens, as perplexity = exp(mean token loss) requires.
import * as tf from '@tensorflow/tfjs';
import type { Adapters, Model } from '../../models/types';
import { NO_ADAPTERS } from '../../models/types';
import { collate, datasetSize, disposeBatch, toTensors, type Dataset } from './inputs';

export interface EvalResult {
  loss: number;
  accuracy?: number;
  perplexity?: number;
  examples: number;
}

export async function evaluate(
  model: Model,
  ds: Dataset,
  padId: number,
  batchSize: number,
  adapters: Adapters = NO_ADAPTERS,
): Promise<EvalResult> {
  const eval_: Adapters = { lora: adapters.lora, trainable: adapters.trainable, dropoutSeed: null }; // no dropout
  const n = datasetSize(ds);
  let lossSum = 0;
  let weight = 0;
  let correct = 0;
  for (let start = 0; start < n; start += batchSize) {
    const idx = Array.from({ length: Math.min(batchSize, n - start) }, (_, i) => start + i);
    const b = collate(ds, idx, padId);
    const bt = toTensors(b);
    const out = tf.tidy(() => {
      const loss = model.loss(bt, eval_);
      if (ds.kind === 'causal-lm') return [loss];
      const pred = tf.argMax(model.logits(bt, eval_), -1);
      return [loss, tf.sum(tf.cast(tf.equal(pred, bt.labels!), 'int32'))];
    });
    disposeBatch(bt);
    const vals = await Promise.all(out.map(async (t) => (await t.data())[0]));
    tf.dispose(out);
    // Weight each batch by what its mean was taken over: predicted tokens, or examples.
    const w = ds.kind === 'causal-lm' ? b.tokens - b.batch : b.batch;
    lossSum += vals[0] * w;
    weight += w;
    if (ds.kind !== 'causal-lm') correct += vals[1];
  }
  const loss = lossSum / Math.max(1, weight);
  return ds.kind === 'causal-lm'
    ? { loss, perplexity: Math.exp(loss), examples: n }
    : { loss, accuracy: correct / Math.max(1, n), examples: n };
}
