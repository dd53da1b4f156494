// Relatives of the Llama layout that share its code: untied heads, attention biases (qwen2), bare LlamaModel keys.
// Each is checked against stories260k's reference-checked forward pass by building an equivalent checkpoint.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights, type HostTensor } from '../../src/adapters/safetensors';
import { openModelFolder } from '../../src/engine/train/inputs';
import { LlamaModel } from '../../src/models/llama/model';
import { NO_ADAPTERS, type HFConfig } from '../../src/models/types';
import { maxAbsDiff, STORIES, useBackend, values } from '../helpers/shared';

const opts = { task: 'causal-lm' as const, numLabels: 0, normal: Math.random, dir: STORIES };

async function logitsOf(config: HFConfig, weights: Map<string, HostTensor>): Promise<number[]> {
  const model = new LlamaModel(config, weights, opts);
  const ids = tf.tensor2d([[1, 403, 407, 261, 378, 432, 383]], undefined, 'int32');
  const out = await values(
    model.logits({ inputIds: ids, attentionMask: tf.onesLike(ids), typeIds: null, labels: null }, NO_ADAPTERS),
  );
  model.dispose();
  return out;
}

describe('llama family variants', () => {
  let config: HFConfig;
  let base: number[];
  before(async () => {
    await useBackend();
    config = openModelFolder(STORIES).config;
    base = await logitsOf(config, loadModelWeights(STORIES));
  });

  it('an untied lm_head.weight is used when tie_word_embeddings is false', async () => {
    const w = loadModelWeights(STORIES);
    w.set('lm_head.weight', w.get('model.embed_tokens.weight')!);
    assert.ok(maxAbsDiff(await logitsOf({ ...config, tie_word_embeddings: false }, w), base) < 1e-6);
    const scaled = {
      ...w.get('model.embed_tokens.weight')!,
      data: (w.get('model.embed_tokens.weight')!.data as Float32Array).map((v) => 2 * v),
    };
    w.set('lm_head.weight', scaled);
    assert.ok(
      maxAbsDiff(await logitsOf({ ...config, tie_word_embeddings: false }, w), base) > 1e-2,
      'the untied head changes the logits',
    );
    const missing = loadModelWeights(STORIES);
    assert.throws(
      () => new LlamaModel({ ...config, tie_word_embeddings: false }, missing, opts),
      /no lm_head\.weight and tie_word_embeddings is false/,
    );
  });

  it('qwen2-style q/k/v biases are applied when the checkpoint has them', async () => {
    const withBias = (value: number) => {
      const w = loadModelWeights(STORIES);
      for (let i = 0; i < 5; i++) {
        for (const [n, size] of [
          ['q_proj', 64],
          ['k_proj', 32],
          ['v_proj', 32],
        ] as const) {
          w.set(`model.layers.${i}.self_attn.${n}.bias`, {
            dtype: 'float32',
            shape: [size],
            data: new Float32Array(size).fill(value),
          });
        }
      }
      return w;
    };
    const qwen = { ...config, model_type: 'qwen2' };
    assert.ok(maxAbsDiff(await logitsOf(qwen, withBias(0)), base) < 1e-6, 'zero biases change nothing');
    assert.ok(maxAbsDiff(await logitsOf(qwen, withBias(0.1)), base) > 1e-3, 'non-zero biases are used');
  });

  it('loads checkpoints saved from the bare LlamaModel (keys without the model. prefix)', async () => {
    const bare = new Map([...loadModelWeights(STORIES)].map(([k, v]) => [k.replace(/^model\./, ''), v]));
    assert.ok(bare.has('embed_tokens.weight'));
    assert.ok(maxAbsDiff(await logitsOf(config, bare), base) === 0);
  });

  it('refuses rope_scaling it does not implement, saying so', () => {
    assert.throws(
      () =>
        new LlamaModel({ ...config, rope_scaling: { rope_type: 'yarn', factor: 4 } }, loadModelWeights(STORIES), opts),
      /rope_scaling 'yarn' is not supported/,
    );
  });
});
