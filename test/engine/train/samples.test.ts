// Seeing what sft training does: the answers' token accuracy (TRL's mean_token_accuracy) against a direct
// computation, batched greedy answers against one-at-a-time decoding, and eval.generate in a short real run of
// tiny-random-qwen3 on sst2-chat: samples events with the prompts as the chat template renders them, the data's
// answers as references, an exact-match score, and no tensor left behind.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { configFromObject } from '../../../src/config/load';
import { samplesLine } from '../../../src/engine/runs/render';
import { readMetrics } from '../../../src/engine/runs/writer';
import { evaluate } from '../../../src/engine/train/evaluate';
import { generate, generateGreedy } from '../../../src/engine/train/generate';
import { buildModel, loadEvalData, openModelFolder, padId } from '../../../src/engine/train/inputs';
import { exactMatch } from '../../../src/engine/train/samples';
import { train } from '../../../src/engine/train/train';
import { Rng } from '../../../src/engine/data/rng';
import { Trainables } from '../../../src/engine/train/trainables';
import type { EvalEvent, SamplesEvent } from '../../../src/protocol/events';
import { SHARED, tempDir, useBackend } from '../../helpers/shared';

const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');
const CHAT = path.join(SHARED, 'data', 'sst2-chat');

function sftConfig(dir: string, over: { eval?: object; training?: object } = {}) {
  return configFromObject(
    {
      model: QWEN3,
      task: 'sft',
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: 'samples',
      data: {
        train: path.join(CHAT, 'messages.train.jsonl'),
        eval: path.join(CHAT, 'messages.dev.jsonl'),
        max_train_samples: 8,
        max_eval_samples: 6,
        max_length: 96,
      },
      lora: { r: 4, lora_alpha: 8, target_modules: 'all-linear' },
      training: { learning_rate: 1e-3, batch_size: 4, max_steps: 2, eval_every: 1, ...over.training },
      eval: over.eval,
    },
    dir,
  );
}

describe('sft eval figures', () => {
  before(() => useBackend());

  it('token accuracy is the share of answer tokens that are the argmax one position earlier', async () => {
    const config = sftConfig(tempDir());
    const folder = openModelFolder(QWEN3);
    const { eval: ds } = loadEvalData(config, folder.tokenizer);
    assert.equal(ds.kind, 'sft');
    if (ds.kind !== 'sft') return;
    const model = buildModel(folder, 'causal-lm', 0, new Rng(1));
    const weights = new Trainables(model, config.lora, folder.family, () => new Rng(7).next(), null);
    try {
      const r = await evaluate(model, ds, padId(folder), 4, weights);
      // Directly: one example at a time, unpadded, each answer token checked on its own.
      let [hits, total, lossSum] = [0, 0, 0];
      for (const ex of ds.examples) {
        const [pred, logp] = tf.tidy(() => {
          const x = tf.tensor2d([ex.ids], [1, ex.ids.length], 'int32');
          const batch = { inputIds: x, attentionMask: tf.onesLike(x), typeIds: null, labels: null };
          const logits = tf.squeeze(model.logits(batch, weights), [0]) as tf.Tensor2D; // [T, V]
          return [tf.argMax(logits, -1), tf.logSoftmax(logits)];
        });
        const [p, lp] = [await pred.array(), (await logp.array()) as number[][]];
        tf.dispose([pred, logp]);
        for (let t = 1; t < ex.ids.length; t++) {
          if (!ex.loss[t]) continue;
          total++;
          if ((p as number[])[t - 1] === ex.ids[t]) hits++;
          lossSum -= lp[t - 1][ex.ids[t]];
        }
      }
      assert.ok(total > 0);
      assert.ok(Math.abs(r.token_accuracy! - hits / total) < 1e-9, `${r.token_accuracy} vs ${hits}/${total}`);
      assert.ok(Math.abs(r.loss - lossSum / total) < 1e-4, `loss ${r.loss} vs ${lossSum / total}`);
      assert.ok(Math.abs(r.perplexity! - Math.exp(r.loss)) < 1e-9);
    } finally {
      weights.dispose();
      model.dispose();
    }
  });

  it('batched greedy answers are those of one prompt at a time', async () => {
    const folder = openModelFolder(QWEN3);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(1));
    try {
      const prompts = ['a charming movie', 'the plot is thin and the acting is worse than that', 'fun'].map(
        (s) => folder.tokenizer.encode(s).ids,
      );
      const o = { maxNewTokens: 6, stopIds: [], padId: 0 };
      await generateGreedy(model, prompts, o); // warm-up: the model caches RoPE tables per length
      const before = tf.memory().numTensors;
      const batched = await generateGreedy(model, prompts, o);
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      for (const [i, p] of prompts.entries()) {
        const one = await generate(model, p, { maxNewTokens: 6 });
        assert.deepEqual(batched[i], one.slice(p.length), `prompt ${i}`);
      }
      // A stop id ends a row early and is left out of its answer.
      const stop = batched[0][2];
      const stopped = await generateGreedy(model, prompts.slice(0, 1), { maxNewTokens: 6, stopIds: [stop], padId: 0 });
      assert.deepEqual(stopped[0], batched[0].slice(0, batched[0].indexOf(stop)));
    } finally {
      model.dispose();
    }
  });

  it('exact match only for short-label references, trimmed and in any case', () => {
    const s = (reference: string, output: string) => ({ reference, output });
    assert.equal(exactMatch([s('positive', ' Positive\n'), s('negative', 'positive')]), 0.5);
    assert.equal(exactMatch([s('positive', 'positive'), s('a much longer answer than a label', 'x')]), undefined);
    assert.equal(exactMatch([]), undefined);
  });

  it('renders a samples event as one line', () => {
    const e: SamplesEvent = {
      type: 'samples',
      step: 40,
      samples: [
        { prompt: 'p', reference: 'positive', output: 'positive' },
        { prompt: 'q', reference: 'negative', output: 'positive' },
      ],
      exact_match: 0.5,
    };
    assert.equal(samplesLine(e), "samples @ step 40: exact match 50%, e.g. 'positive' → 'positive'");
    const long = {
      ...e,
      exact_match: undefined,
      samples: [{ prompt: 'p', reference: 'a\nb', output: 'x'.repeat(60) }],
    };
    assert.equal(samplesLine(long), `samples @ step 40: 1 answer, e.g. 'a b' → '${'x'.repeat(39)}…'`);
  });
});

describe('eval.generate in a real sft run', () => {
  before(() => useBackend());

  it('emits samples at each eval: template prompts, the data answers, exact match, tensors flat', async () => {
    const dir = tempDir();
    const config = sftConfig(dir, { eval: { generate: 2, max_new_tokens: 4 }, training: { max_steps: 3 } });
    const counts: number[] = [];
    const r = await train(config, (e) => {
      if (e.type === 'step' || e.type === 'samples') counts.push(tf.memory().numTensors);
    });
    const events = readMetrics(r.runDir);
    const samples = events.filter((e): e is SamplesEvent => e.type === 'samples');
    const evals = events.filter((e): e is EvalEvent => e.type === 'eval');
    assert.deepEqual(
      samples.map((e) => e.step),
      [0, 1, 2, 3],
      'one samples event per eval',
    );
    assert.deepEqual(
      evals.map((e) => e.step),
      [0, 1, 2, 3],
    );
    const rows = fs
      .readFileSync(path.join(CHAT, 'messages.dev.jsonl'), 'utf8')
      .split('\n')
      .slice(0, 2)
      .map((l) => JSON.parse(l) as { messages: { role: string; content: string }[] });
    // The ChatML template of tiny-random-qwen3, written out: each turn, then the generation prompt.
    const chatml = (ms: { role: string; content: string }[]) =>
      ms.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('') + '<|im_start|>assistant\n';
    for (const e of samples) {
      assert.equal(e.samples.length, 2);
      e.samples.forEach((s, i) => {
        assert.equal(s.prompt, chatml(rows[i].messages.slice(0, -1)));
        assert.equal(s.reference, rows[i].messages.at(-1)!.content);
        assert.equal(typeof s.output, 'string');
        assert.ok(!s.output.includes('<|im_end|>'), 'special tokens are left out');
      });
      assert.equal(typeof e.exact_match, 'number', 'one-word references get an exact match');
    }
    for (const [i, e] of evals.entries()) {
      assert.equal(e.exact_match, samples[i].exact_match);
      assert.ok(e.token_accuracy! >= 0 && e.token_accuracy! <= 1);
      assert.ok(e.perplexity! > 1);
    }
    assert.equal(r.evals.at(-1)!.result.exact_match, samples.at(-1)!.exact_match);
    // Tensors: the same count at every step and after every eval's answers (the model and adapter only).
    assert.ok(new Set(counts.slice(1)).size === 1, `tensors at steps and samples: ${counts}`);
  });

  it('says so once when the data has no answers to generate', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'text.jsonl');
    fs.writeFileSync(
      file,
      ['a movie', 'a film', 'a plot', 'a story'].map((t) => JSON.stringify({ text: t })).join('\n'),
    );
    const config = configFromObject(
      {
        model: QWEN3,
        task: 'sft',
        device: 'wasm',
        output_dir: path.join(dir, 'runs'),
        data: { train: file, eval: file, max_length: 16 },
        training: { batch_size: 2, max_steps: 1, eval_every: 1 },
        eval: { generate: 2 },
      },
      dir,
    );
    const events = readMetrics((await train(config, () => {})).runDir);
    assert.equal(events.filter((e) => e.type === 'samples').length, 0);
    const warnings = events.filter(
      (e) => e.type === 'log' && e.level === 'warning' && /eval\.generate/.test(e.message),
    );
    assert.equal(warnings.length, 1);
    // Another task: the same, once.
    const lm = configFromObject(
      { ...config, task: 'causal-lm', run_name: 'lm', data: { ...config.data, max_length: 4 } },
      dir,
    );
    const lmEvents = readMetrics((await train(lm, () => {})).runDir);
    assert.equal(lmEvents.filter((e) => e.type === 'samples').length, 0);
    const said = lmEvents.filter((e) => e.type === 'log' && /eval\.generate is ignored.*causal-lm/.test(e.message));
    assert.equal(said.length, 1);
  });
});
