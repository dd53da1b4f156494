// Text generation from a causal LM, greedy or sampled (temperature, top-k). No KV cache: each new token reruns the
// sequence, which is fine for the small models and short prompts this is used for (samples in the demo and CLI).
import * as tf from '@tensorflow/tfjs';
import type { Adapters, Model } from '../../models/types';
import { NO_ADAPTERS } from '../../models/types';
import { Rng } from '../data/rng';

export interface GenerateOptions {
  maxNewTokens: number;
  temperature?: number; // 0 or absent: greedy
  topK?: number;
  seed?: number;
  eosId?: number | null;
  adapters?: Adapters;
}

export async function generate(model: Model, promptIds: number[], o: GenerateOptions): Promise<number[]> {
  const ids = [...promptIds];
  const rng = new Rng(o.seed ?? 0);
  const a = o.adapters ?? NO_ADAPTERS;
  for (let i = 0; i < o.maxNewTokens && ids.length < model.maxPositions; i++) {
    const last = tf.tidy(() => {
      const x = tf.tensor2d([ids], [1, ids.length], 'int32');
      const logits = model.logits({ inputIds: x, attentionMask: tf.onesLike(x), typeIds: null, labels: null }, a);
      return tf.reshape(tf.slice(logits, [0, ids.length - 1, 0], [1, 1, -1]), [-1]);
    });
    const row = Array.from(await last.data());
    last.dispose();
    const next = o.temperature ? sample(row, o.temperature, o.topK ?? 0, rng) : argmax(row);
    ids.push(next);
    if (o.eosId !== undefined && o.eosId !== null && next === o.eosId) break;
  }
  return ids;
}

function argmax(xs: number[]): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

function sample(logits: number[], temperature: number, topK: number, rng: Rng): number {
  let idx = logits.map((_, i) => i);
  if (topK > 0) idx = idx.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const max = Math.max(...idx.map((i) => logits[i]));
  const p = idx.map((i) => Math.exp((logits[i] - max) / temperature));
  const total = p.reduce((s, v) => s + v, 0);
  let u = rng.next() * total;
  for (let j = 0; j < idx.length; j++) {
    u -= p[j];
    if (u <= 0) return idx[j];
  }
  return idx[idx.length - 1];
}
