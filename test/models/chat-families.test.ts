// Today's small LLMs against transformers 5.18 (../shared/reference/chat_logits.safetensors): a right-padded batch
// of two chat-rendered sequences per model; our logits match within 1e-4 wherever the attention mask is 1, and the
// tokenizer turns the rendered chat text into the same ids.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { readSafetensors } from '../../src/adapters/safetensors';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { NO_ADAPTERS } from '../../src/models/types';
import { readJson, REFERENCE, SHARED, useBackend } from '../helpers/shared';

const FIXTURES = readSafetensors(path.join(REFERENCE, 'chat_logits.safetensors')).tensors;
const RENDERED = readJson<Record<string, { rendered: string[] }>>(path.join(REFERENCE, 'chat_logits.json'));

/** The chat models of ../shared/models by their key in the fixture. */
export const CHAT_MODELS: Record<string, string> = {
  llama3: path.join(SHARED, 'models', 'tiny-random-llama3'),
  qwen3: path.join(SHARED, 'models', 'tiny-random-qwen3'),
  gemma3: path.join(SHARED, 'models', 'tiny-random-gemma3'),
  phi3: path.join(SHARED, 'models', 'tiny-random-phi3'),
};

async function maxDiffWhereMasked(kind: string): Promise<{ diff: number; ids: number[][] }> {
  const ids = FIXTURES.get(`${kind}.input_ids`)!;
  const mask = FIXTURES.get(`${kind}.attention_mask`)!;
  const want = FIXTURES.get(`${kind}.logits`)!.data as Float32Array;
  const [b, t] = ids.shape;
  const folder = openModelFolder(CHAT_MODELS[kind]);
  const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
  const batch = {
    inputIds: tf.tensor2d(ids.data as Int32Array, [b, t], 'int32'),
    attentionMask: tf.tensor2d(mask.data as Int32Array, [b, t], 'int32'),
    typeIds: null,
    labels: null,
  };
  const got = (await tf.tidy(() => model.logits(batch, NO_ADAPTERS)).data()) as Float32Array;
  tf.dispose([batch.inputIds, batch.attentionMask]);
  model.dispose();
  const v = want.length / (b * t);
  let diff = 0;
  for (let i = 0; i < b * t; i++) {
    if (mask.data[i] !== 1) continue;
    for (let j = 0; j < v; j++) diff = Math.max(diff, Math.abs(got[i * v + j] - want[i * v + j]));
  }
  const rows = Array.from({ length: b }, (_, r) =>
    Array.from(ids.data.subarray(r * t, (r + 1) * t)).filter((_, k) => mask.data[r * t + k] === 1),
  );
  return { diff, ids: rows };
}

describe('chat models against transformers', () => {
  before(() => useBackend());

  for (const kind of Object.keys(CHAT_MODELS)) {
    it(`${kind}: logits within 1e-4 where the mask is 1, and the tokenizer gives the reference ids`, async () => {
      const { diff, ids } = await maxDiffWhereMasked(kind);
      assert.ok(diff <= 1e-4, `max |Δlogits| ${diff}`);
      const tok = openModelFolder(CHAT_MODELS[kind]).tokenizer;
      const encoded = RENDERED[kind].rendered.map((text) => tok.encode(text, { addSpecialTokens: false }).ids);
      assert.deepEqual(encoded, ids);
    });
  }
});
