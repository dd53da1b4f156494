// Text generation from a causal LM, greedy or sampled (temperature, top-k), and greedy answers to a batch of prompts
// (eval samples). No KV cache: each new token reruns the sequence, which is fine for the small models and short
// prompts this is used for (samples in the demo, the CLI and sft evals).
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

export interface GreedyOptions {
  maxNewTokens: number;
  stopIds: readonly number[]; // eos, the chat template's end of turn: the answer ends before the first of them
  padId: number;
  adapters?: Adapters;
}

/** What one batch may hold: its logits ([rows, T, vocab] float32, 128 MB) and tokens (attention scores grow with
 *  rows·T²: 300 rows of 216 tokens overran the wasm heap; a training batch is about this many tokens). */
const MAX_LOGITS = 2 ** 25;
const MAX_TOKENS = 4096;

/**
 * Greedy answers to several prompts at once: the new tokens of each (the stop token left out). The prompts go as
 * one right-padded batch per step (padding after a row never reaches it: attention is causal), as many rows as
 * keep the batch under MAX_LOGITS and MAX_TOKENS; a row leaves the batch when it stops. Each step's tensors live
 * in one tidy.
 */
export async function generateGreedy(model: Model, prompts: number[][], o: GreedyOptions): Promise<number[][]> {
  const out = prompts.map((): number[] => []);
  const longest = Math.max(1, ...prompts.map((p) => p.length)) + o.maxNewTokens;
  const rowsAtOnce = Math.max(
    1,
    Math.min(Math.floor(MAX_LOGITS / (longest * model.vocabSize)), Math.floor(MAX_TOKENS / longest)),
  );
  const stop = new Set(o.stopIds);
  const a = o.adapters ?? NO_ADAPTERS;
  for (let from = 0; from < prompts.length; from += rowsAtOnce) {
    let active = prompts
      .slice(from, from + rowsAtOnce)
      .map((p, i) => ({ i: from + i, ids: [...p] }))
      .filter((r) => r.ids.length && r.ids.length < model.maxPositions); // no room for an answer: none
    for (let k = 0; k < o.maxNewTokens && active.length; k++) {
      const next = await nextTokens(
        model,
        active.map((r) => r.ids),
        o.padId,
        a,
      );
      active.forEach((r, j) => {
        if (stop.has(next[j])) return;
        r.ids.push(next[j]);
        out[r.i].push(next[j]);
      });
      active = active.filter((r, j) => !stop.has(next[j]) && r.ids.length < model.maxPositions);
    }
  }
  return out;
}

/** The argmax of the next-token logits of each row, right-padded into one batch. */
async function nextTokens(model: Model, rows: number[][], padId: number, a: Adapters): Promise<number[]> {
  const lengths = rows.map((r) => r.length);
  // A multiple of 8 keeps the wasm matmul kernel on its fast path; learned positions end at maxPositions.
  const t = Math.min(Math.ceil(Math.max(...lengths) / 8) * 8, model.maxPositions);
  const ids = new Int32Array(rows.length * t).fill(padId);
  const mask = new Int32Array(rows.length * t);
  rows.forEach((r, i) => {
    ids.set(r, i * t);
    mask.fill(1, i * t, i * t + r.length);
  });
  const picked = tf.tidy(() => {
    const x = tf.tensor2d(ids, [rows.length, t], 'int32');
    const attentionMask = tf.tensor2d(mask, [rows.length, t], 'int32');
    const logits = model.logits({ inputIds: x, attentionMask, typeIds: null, labels: null }, a); // [B, T, V]
    const flat = tf.reshape(logits, [rows.length * t, -1]);
    const last = tf.tensor1d(
      lengths.map((n, i) => i * t + n - 1),
      'int32',
    );
    return tf.argMax(tf.gather(flat, last), -1); // [B]
  });
  const v = Array.from(await picked.data());
  picked.dispose();
  return v;
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
