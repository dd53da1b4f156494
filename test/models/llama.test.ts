// The Llama implementation against an independent PyTorch implementation of Hugging Face's modeling code.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights } from '../../src/adapters/safetensors';
import { generate } from '../../src/engine/train/generate';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { LlamaModel } from '../../src/models/llama/model';
import { NO_ADAPTERS } from '../../src/models/types';
import { maxAbsDiff, readJson, REFERENCE, STORIES, useBackend, values } from '../helpers/shared';

describe('llama (stories260k)', () => {
  before(() => useBackend());

  it('matches the reference logits within 1e-4', async () => {
    const ref = readJson<{ stories260k: { input_ids: number[][]; logits: number[][][] } }>(
      path.join(REFERENCE, 'logits.json'),
    ).stories260k;
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    const ids = tf.tensor2d(ref.input_ids, undefined, 'int32');
    const logits = model.logits(
      { inputIds: ids, attentionMask: tf.onesLike(ids), typeIds: null, labels: null },
      NO_ADAPTERS,
    );
    assert.deepEqual(logits.shape, [2, 16, 512]);
    const diff = maxAbsDiff(await values(logits), ref.logits.flat(2));
    assert.ok(diff <= 1e-4, `max |Δlogit| = ${diff}`);
    tf.dispose([ids, logits]);
    model.dispose();
  });

  it('reproduces the greedy reference token for token (200 ids)', async () => {
    const ref = readJson<{ prompt_ids: number[]; greedy_ids: number[] }>(path.join(STORIES, 'greedy_reference.json'));
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    const ids = await generate(model, ref.prompt_ids, { maxNewTokens: ref.greedy_ids.length - ref.prompt_ids.length });
    assert.deepEqual(ids, ref.greedy_ids);
    assert.match(
      folder.tokenizer.decode(ids, { skipSpecialTokens: true }),
      /^Once upon a time, there was a little girl named Lily/,
    );
    model.dispose();
  });

  it('counts parameters once for the tied head (260k)', () => {
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    assert.equal(model.paramCount, 260032);
    assert.equal(
      model.linears.get('lm_head')!.wT.shape.join(),
      '64,512',
      'the tied head (and the embedding) is stored once, as Wᵀ',
    );
    model.dispose();
  });

  it('creates a fresh score head for sequence classification, scoring the last non-padding token', async () => {
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'sequence-classification', 2, new Rng(1));
    assert.equal(model.head, 'score');
    assert.ok(model.headCreated);
    // A row padded on the right scores exactly like the same row unpadded.
    const a = tf.tensor2d([[1, 312, 410, 439]], undefined, 'int32');
    const b = tf.tensor2d([[1, 312, 410, 439, 0, 0]], undefined, 'int32');
    const la = model.logits({ inputIds: a, attentionMask: tf.onesLike(a), typeIds: null, labels: null }, NO_ADAPTERS);
    const lb = model.logits(
      {
        inputIds: b,
        attentionMask: tf.tensor2d([[1, 1, 1, 1, 0, 0]], undefined, 'int32'),
        typeIds: null,
        labels: null,
      },
      NO_ADAPTERS,
    );
    assert.deepEqual(la.shape, [1, 2]);
    assert.ok(maxAbsDiff(await values(la), await values(lb)) < 1e-5);
    model.dispose();
  });

  it('refuses a checkpoint whose weights do not fit config.json, naming the weight', () => {
    const folder = openModelFolder(STORIES);
    const weights = loadModelWeights(STORIES);
    weights.delete('model.layers.3.mlp.up_proj.weight');
    assert.throws(
      () =>
        new LlamaModel(folder.config, weights, { task: 'causal-lm', numLabels: 0, normal: Math.random, dir: STORIES }),
      /model\.layers\.3\.mlp\.up_proj\.weight/,
    );
    const bad = loadModelWeights(STORIES);
    bad.set('model.norm.weight', { dtype: 'float32', shape: [32], data: new Float32Array(32) });
    assert.throws(
      () => new LlamaModel(folder.config, bad, { task: 'causal-lm', numLabels: 0, normal: Math.random, dir: STORIES }),
      /model\.norm\.weight has shape \[32\]/,
    );
  });
});
