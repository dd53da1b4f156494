// Gemma 3 (tiny-random-gemma3; its logits against transformers are in chat-families.test.ts): how config.json is
// read in both RoPE styles and with transformers' defaults, the multimodal gemma3 checkpoints' language model (both
// key layouts), stored biases, refusals, the classification head, and what the editor's checks and the New Config
// template make of it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights, writeSafetensors, type HostTensor } from '../../src/adapters/safetensors';
import { configTemplate } from '../../src/config/template';
import { checkConfigText } from '../../src/engine/checks/config';
import { inspectModel } from '../../src/engine/checks/inspect';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { resolveTargets } from '../../src/engine/train/trainables';
import { parseGemma3Config } from '../../src/models/gemma3/config';
import { Gemma3Model } from '../../src/models/gemma3/model';
import { FAMILIES } from '../../src/models/registry';
import { invFreq } from '../../src/models/rope';
import { NO_ADAPTERS, type HFConfig, type Task } from '../../src/models/types';
import { describeModel, planConfig } from '../../src/vscode/editor/new-config-plan';
import { maxAbsDiff, SHARED, SST2, tempDir, useBackend, values } from '../helpers/shared';

const GEMMA3 = path.join(SHARED, 'models', 'tiny-random-gemma3');
const FILE = 'config.json';
const IDS = [
  [2, 69, 311, 337, 518, 272, 342, 17, 400],
  [2, 12, 99, 401, 77, 3, 5, 0, 0],
];
const MASK = IDS.map((row, n) => row.map((_, i) => (n && i >= 7 ? 0 : 1)));

const fixtureConfig = (): HFConfig => openModelFolder(GEMMA3).config;

/** The fixture's config as the Hub's classic configs write it: rope_theta + rope_local_base_freq, a layer pattern. */
function classic(): HFConfig {
  const c: HFConfig = { ...fixtureConfig(), rope_theta: 1e6, rope_local_base_freq: 1e4, sliding_window_pattern: 2 };
  delete c.rope_parameters;
  delete c.layer_types;
  return c;
}

async function logitsOf(
  config: HFConfig,
  weights: Map<string, HostTensor>,
  task: Task = 'causal-lm',
  numLabels = 0,
): Promise<number[]> {
  const model = new Gemma3Model(config, weights, { task, numLabels, normal: () => 0.5, dir: GEMMA3 });
  const batch = {
    inputIds: tf.tensor2d(IDS, undefined, 'int32'),
    attentionMask: tf.tensor2d(MASK, undefined, 'int32'),
    typeIds: null,
    labels: null,
  };
  const out = await values(tf.tidy(() => model.logits(batch, NO_ADAPTERS)));
  tf.dispose([batch.inputIds, batch.attentionMask]);
  model.dispose();
  return out;
}

/** A multimodal `gemma3` folder around the fixture's language model: text_config, keys under `prefix`, a vision key. */
function multimodal(prefix: 'language_model.model.' | 'model.language_model.'): string {
  const dir = path.join(tempDir(), 'gemma3-mm');
  fs.cpSync(GEMMA3, dir, { recursive: true });
  const text = fixtureConfig();
  const config = {
    architectures: ['Gemma3ForConditionalGeneration'],
    model_type: 'gemma3',
    text_config: { ...text, architectures: undefined, tie_word_embeddings: undefined },
    vision_config: { model_type: 'siglip_vision_model', hidden_size: 16 },
    tie_word_embeddings: true,
    pad_token_id: 0,
  };
  fs.chmodSync(dir, 0o755);
  for (const f of fs.readdirSync(dir)) fs.chmodSync(path.join(dir, f), 0o644);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2));
  const weights = new Map<string, HostTensor>();
  for (const [k, v] of loadModelWeights(GEMMA3)) weights.set(k.replace(/^model\./, prefix), v);
  const vision = prefix === 'model.language_model.' ? 'model.vision_tower' : 'vision_tower';
  weights.set(`${vision}.vision_model.encoder.layers.0.self_attn.q_proj.weight`, {
    dtype: 'float32',
    shape: [16, 16],
    data: new Float32Array(256).fill(0.01),
  });
  writeSafetensors(path.join(dir, 'model.safetensors'), weights);
  return dir;
}

describe('gemma3 config.json', () => {
  it('reads the fixture: layer types, window, the query scale, two RoPE bases, tied head, no soft-capping', () => {
    const c = parseGemma3Config(fixtureConfig(), FILE);
    assert.deepEqual(c.layerTypes, ['sliding_attention', 'full_attention', 'sliding_attention']);
    assert.equal(c.slidingWindow, 5);
    assert.equal(c.queryScale, 8 ** -0.5);
    assert.deepEqual([c.rope.full_attention.theta, c.rope.sliding_attention.theta], [1e6, 1e4]);
    assert.deepEqual([c.attnSoftcap, c.finalSoftcap, c.tieWordEmbeddings, c.prefix], [null, null, true, 'model']);
  });

  it('the classic style (rope_theta, rope_local_base_freq, sliding_window_pattern) reads the same', async () => {
    const a = parseGemma3Config(fixtureConfig(), FILE);
    const b = parseGemma3Config(classic(), FILE);
    assert.deepEqual(b.layerTypes, a.layerTypes);
    assert.deepEqual(b.rope, a.rope);
    const w = loadModelWeights(GEMMA3);
    assert.equal(maxAbsDiff(await logitsOf(classic(), w), await logitsOf(fixtureConfig(), w)), 0);
  });

  it('classic rope_scaling scales the global base only; missing bases default to 1e6 / 1e4, as transformers', () => {
    const scaled = parseGemma3Config({ ...classic(), rope_scaling: { rope_type: 'linear', factor: 8 } }, FILE);
    assert.deepEqual([scaled.rope.full_attention.type, scaled.rope.full_attention.factor], ['linear', 8]);
    assert.deepEqual([scaled.rope.sliding_attention.type, scaled.rope.sliding_attention.theta], ['default', 1e4]);
    const full = invFreq(scaled.rope.full_attention, 8, 16);
    const unscaled = invFreq(parseGemma3Config(classic(), FILE).rope.full_attention, 8, 16);
    assert.deepEqual(
      [...full],
      [...unscaled].map((f) => Math.fround(f / 8)),
    );
    const bare = { ...classic() };
    delete bare.rope_theta;
    delete bare.rope_local_base_freq;
    const d = parseGemma3Config(bare, FILE);
    assert.deepEqual([d.rope.full_attention.theta, d.rope.sliding_attention.theta], [1e6, 1e4]);
  });

  it("fills Gemma3TextConfig's defaults: every 6th layer full, query_pre_attn_scalar 256, head_dim 256", () => {
    const c = parseGemma3Config({ model_type: 'gemma3_text', num_hidden_layers: 12 }, FILE);
    assert.deepEqual(
      c.layerTypes.map((t) => t[0]),
      ['s', 's', 's', 's', 's', 'f', 's', 's', 's', 's', 's', 'f'],
    );
    assert.deepEqual([c.queryScale, c.headDim, c.slidingWindow, c.vocabSize], [1 / 16, 256, 4096, 262_208]);
  });

  it('refuses what it cannot run, naming the setting', () => {
    const bad = (patch: HFConfig) => () => parseGemma3Config({ ...fixtureConfig(), ...patch }, FILE);
    assert.throws(bad({ layer_types: ['sliding_attention'] }), /layer_types must list one type for each of the 3/);
    assert.throws(bad({ layer_types: ['sliding_attention', 'chunked', 'full_attention'] }), /'chunked'/);
    assert.throws(bad({ use_bidirectional_attention: true }), /use_bidirectional_attention/);
    assert.throws(bad({ hidden_activation: 'silu' }), /hidden_activation 'silu'/);
    assert.throws(bad({ final_logit_softcapping: -1 }), /final_logit_softcapping' must be a positive number/);
    assert.throws(bad({ sliding_window: 0 }), /sliding_window' must be a positive integer/);
    assert.throws(
      bad({ rope_parameters: { full_attention: { rope_type: 'yarn', rope_theta: 1e6 } } }),
      /'yarn' is not supported/,
    );
  });
});

describe('gemma3 checkpoints', () => {
  before(() => useBackend());

  it('a multimodal gemma3 (keys language_model.model.* or model.language_model.*) runs as gemma3_text', async () => {
    const want = await logitsOf(fixtureConfig(), loadModelWeights(GEMMA3));
    for (const prefix of ['language_model.model.', 'model.language_model.'] as const) {
      const dir = multimodal(prefix);
      const folder = openModelFolder(dir);
      assert.equal(folder.family.name, 'gemma3');
      const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
      assert.ok(model.linears.has('model.language_model.layers.2.mlp.down_proj'), 'named as transformers 5 does');
      assert.deepEqual(resolveTargets(model, folder.family, null, []).slice(0, 2), [
        'model.language_model.layers.0.self_attn.q_proj',
        'model.language_model.layers.0.self_attn.v_proj',
      ]);
      assert.equal(resolveTargets(model, folder.family, 'all-linear', []).length, 21, 'text Linears only');
      model.dispose();
      assert.equal(maxAbsDiff(await logitsOf(folder.config, loadModelWeights(dir)), want), 0, prefix);
    }
  });

  it('stored projection biases are ignored without attention_bias (as transformers) and used with it', async () => {
    const withBias = (value: number) => {
      const w = loadModelWeights(GEMMA3);
      for (let i = 0; i < 3; i++)
        for (const [n, size] of [
          ['q_proj', 32],
          ['k_proj', 8],
          ['v_proj', 8],
          ['o_proj', 32],
        ] as const)
          w.set(`model.layers.${i}.self_attn.${n}.bias`, {
            dtype: 'float32',
            shape: [size],
            data: new Float32Array(size).fill(value),
          });
      return w;
    };
    const base = await logitsOf(fixtureConfig(), loadModelWeights(GEMMA3));
    assert.equal(maxAbsDiff(await logitsOf(fixtureConfig(), withBias(0.3)), base), 0);
    const biased = { ...fixtureConfig(), attention_bias: true };
    assert.ok(maxAbsDiff(await logitsOf(biased, withBias(0)), base) < 1e-6);
    assert.ok(maxAbsDiff(await logitsOf(biased, withBias(0.3)), base) > 1e-3);
    assert.throws(() => new Gemma3Model(biased, loadModelWeights(GEMMA3), opts()), /self_attn\.q_proj\.bias/);
  });

  it('final_logit_softcapping caps the LM head: tanh(z/c)·c of the uncapped logits', async () => {
    const w = loadModelWeights(GEMMA3);
    const plain = await logitsOf(fixtureConfig(), w);
    const capped = await logitsOf({ ...fixtureConfig(), final_logit_softcapping: 0.5 }, w);
    assert.ok(
      maxAbsDiff(
        capped,
        plain.map((z) => Math.tanh(z / 0.5) * 0.5),
      ) <= 1e-6,
    );
    assert.ok(maxAbsDiff(capped, plain) > 0.1, 'the cap bites');
  });

  it('attn_logit_softcapping changes nothing, multimodal gemma3 caps no logits (transformers 5.18)', async () => {
    // Gemma3Attention never passes its attn_logit_softcapping on; Gemma3ForConditionalGeneration.forward never caps.
    const w = loadModelWeights(GEMMA3);
    const plain = await logitsOf(fixtureConfig(), w);
    assert.equal(maxAbsDiff(await logitsOf({ ...fixtureConfig(), attn_logit_softcapping: 0.5 }, w), plain), 0);
    const dir = multimodal('language_model.model.');
    const config = openModelFolder(dir).config;
    (config.text_config as HFConfig).final_logit_softcapping = 0.5;
    assert.equal(parseGemma3Config(config, FILE).finalSoftcap, null);
    assert.equal(maxAbsDiff(await logitsOf(config, loadModelWeights(dir)), plain), 0);
  });

  it('refuses a checkpoint that lacks a weight or an untied head, naming it', () => {
    const before = tf.memory().numTensors;
    const w = loadModelWeights(GEMMA3);
    w.delete('model.layers.1.post_feedforward_layernorm.weight');
    assert.throws(() => new Gemma3Model(fixtureConfig(), w, opts()), /post_feedforward_layernorm\.weight/);
    assert.throws(
      () => new Gemma3Model({ ...fixtureConfig(), tie_word_embeddings: false }, loadModelWeights(GEMMA3), opts()),
      /no lm_head\.weight and tie_word_embeddings is false/,
    );
    assert.equal(tf.memory().numTensors, before, 'a refused checkpoint leaves no tensors');
  });

  it('names its Linears as transformers, counts parameters once (tied), resolves default and all-linear', () => {
    const model = buildModel(openModelFolder(GEMMA3), 'causal-lm', 0, new Rng(0));
    assert.equal(model.paramCount, 1024 * 32 + 3 * (4 * 32 + 2 * 8 + 2 * 32 * 32 + 2 * 8 * 32 + 3 * 64 * 32) + 32);
    assert.deepEqual(model.linears.get('lm_head')!.wT.shape, [32, 1024], 'the tied head holds E once, as Wᵀ');
    const family = FAMILIES.gemma3_text;
    assert.deepEqual(family, { ...FAMILIES.gemma3 });
    assert.deepEqual(resolveTargets(model, family, null, []), [
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
      'model.layers.1.self_attn.v_proj',
      'model.layers.2.self_attn.q_proj',
      'model.layers.2.self_attn.v_proj',
    ]);
    const all = resolveTargets(model, family, 'all-linear', []);
    assert.equal(all.length, 21);
    assert.ok(!all.includes('lm_head'));
    model.dispose();
  });

  it('sequence classification: a fresh score head on the last non-padding token', async () => {
    const model = buildModel(openModelFolder(GEMMA3), 'sequence-classification', 3, new Rng(1));
    assert.deepEqual([model.head, model.headCreated, model.numLabels], ['score', true, 3]);
    const run = async (ids: number[][], mask: number[][]) => {
      const batch = {
        inputIds: tf.tensor2d(ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(mask, undefined, 'int32'),
        typeIds: null,
        labels: null,
      };
      return values(tf.tidy(() => model.logits(batch, NO_ADAPTERS)));
    };
    const padded = await run(IDS, MASK);
    const alone = await run([IDS[1].slice(0, 7)], [MASK[1].slice(0, 7)]);
    assert.equal(padded.length, 6);
    assert.ok(maxAbsDiff(padded.slice(3), alone) < 1e-5, 'padding after the last token changes nothing');
    model.dispose();
  });
});

describe('gemma3 in the editor', () => {
  it("inspect.ts: transformers' module names and rotary positions (gemma3_text and gemma3)", () => {
    const text = inspectModel(GEMMA3);
    assert.ok(text.ok);
    assert.deepEqual(text.value.positions, { max: 128, learned: false });
    assert.deepEqual(text.value.linears.get('model.layers.1.self_attn.k_proj'), [8, 32]);
    assert.deepEqual(text.value.embeddings, ['model.embed_tokens']);
    assert.equal(text.value.linears.size, 21, 'tied: no lm_head weight stored');
    const mm = inspectModel(multimodal('language_model.model.'));
    assert.ok(mm.ok);
    assert.deepEqual(mm.value.linears.get('model.language_model.layers.1.self_attn.k_proj'), [8, 32]);
    assert.deepEqual(mm.value.positions, { max: 128, learned: false });
  });

  for (const task of ['causal-lm', 'sequence-classification'] as const) {
    it(`the New Config template for tiny-random-gemma3 (${task}) validates with no errors or warnings`, () => {
      const dir = tempDir();
      const m = describeModel(GEMMA3);
      assert.ok(m.ok);
      const data = {
        train: path.join(SST2, 'train.tsv'),
        eval: path.join(SST2, 'dev.tsv'),
        evalFraction: 0,
        textField: 'sentence',
        labelField: 'label',
      };
      const text = configTemplate(planConfig(dir, m.value, task, data));
      const { config, problems } = checkConfigText(text, dir);
      const bad = problems.filter((p) => p.severity === 'error' || p.severity === 'warning');
      assert.deepEqual(
        bad.map((p) => `${p.line}: ${p.message}`),
        [],
        text,
      );
      assert.deepEqual(config!.lora.target_modules, ['q_proj', 'v_proj']);
      assert.ok(config!.data.max_length <= 128);
    });
  }
});

function opts() {
  return { task: 'causal-lm' as const, numLabels: 0, normal: Math.random, dir: GEMMA3 };
}
