// ChatSession on real checkpoints: the answer is what greedy generation gives for the rendered prompt (the padded
// run lengths change nothing), the history grows and resets, the oldest exchanges go when the conversation outgrows
// the model's positions, a compared turn answers with and without the adapter (the base side exactly as the model
// alone), a cancel keeps the answer so far, and no tensor is left behind across turns.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { saveAdapter } from '../../../src/adapters/peft';
import { Rng } from '../../../src/engine/data/rng';
import { ChatSession, runLength } from '../../../src/engine/train/chat-session';
import { generate } from '../../../src/engine/train/generate';
import { buildModel, openModelFolder } from '../../../src/engine/train/inputs';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { llamaAdapter } from '../merge/fixtures';

const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');

describe('chat session', () => {
  let adapterDir = '';
  before(async () => {
    await useBackend();
    adapterDir = path.join(tempDir(), 'adapter');
    saveAdapter(adapterDir, llamaAdapter(STORIES, 5));
  });

  it('runs at lengths from a short ladder of multiples of 8, never past the positions', () => {
    assert.deepEqual(
      [1, 8, 9, 64, 65, 100].map((n) => runLength(n, 512)),
      [8, 8, 16, 64, 80, 120],
    );
    assert.equal(runLength(126, 128), 128);
    assert.equal(runLength(128, 128), 128);
    const lengths = new Set(Array.from({ length: 4096 }, (_, i) => runLength(i + 1, 4096)));
    assert.ok(lengths.size < 40, `${lengths.size} lengths`);
  });

  it('answers greedily as generate() does on the rendered prompt, and keeps the history', async () => {
    const s = await ChatSession.open({ model: QWEN3, options: { maxNewTokens: 10 } });
    const folder = openModelFolder(QWEN3);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    try {
      assert.equal(s.info.template, path.join(QWEN3, 'tokenizer_config.json'));
      assert.deepEqual(s.info.stops, ['<|im_end|>', '<|im_start|>']);
      const prompt = s.renderPrompt('Hello there');
      const ids = folder.tokenizer.encode(prompt, { addSpecialTokens: false }).ids;
      const out = (await generate(model, ids, { maxNewTokens: 10 })).slice(ids.length);
      const stop = out.findIndex((id) => id === 1 || id === 2);
      const want = folder.tokenizer.decode(stop < 0 ? out : out.slice(0, stop), { skipSpecialTokens: true }).trim();
      let streamed = '';
      const { base } = await s.say('Hello there', { onToken: (_side, t) => (streamed += t) });
      assert.equal(base?.text, want);
      assert.equal(streamed.trim(), want);
      assert.deepEqual(s.history(), [
        { role: 'user', content: 'Hello there' },
        { role: 'assistant', content: want },
      ]);
      assert.equal(
        s.renderPrompt('More'),
        `<|im_start|>user\nHello there<|im_end|>\n<|im_start|>assistant\n${want}<|im_end|>\n` +
          '<|im_start|>user\nMore<|im_end|>\n<|im_start|>assistant\n',
      );
      s.setSystem('Be brief.');
      await s.say('More');
      assert.equal(s.history().length, 5);
      s.reset();
      assert.deepEqual(s.history(), [{ role: 'system', content: 'Be brief.' }]);
    } finally {
      s.dispose();
      model.dispose();
    }
  });

  it('drops the oldest exchanges when the conversation outgrows the positions, and refuses a message too long', async () => {
    const s = await ChatSession.open({ model: QWEN3, options: { maxNewTokens: 24 } });
    try {
      const seen: { promptTokens: number; dropped: number }[] = [];
      for (let i = 0; i < 6; i++)
        await s.say(`Message number ${i} with a few more words in it`, { onStart: (_s, p) => seen.push(p) });
      assert.ok(
        seen.every((p) => p.promptTokens <= 128 - 24),
        JSON.stringify(seen),
      );
      const dropped = seen.reduce((n, p) => n + p.dropped, 0);
      assert.ok(dropped > 0, 'some exchanges were dropped');
      assert.equal(s.history().length, 2 * (6 - dropped));
      const before = s.history();
      await assert.rejects(
        s.say('word '.repeat(150)),
        (e) => e instanceof LoraPlusError && e.info.code === 'chat/too-long',
      );
      assert.deepEqual(s.history(), before, 'nothing dropped for a message that cannot fit');
    } finally {
      s.dispose();
    }
  });

  it('compares: the base side is the model alone, each side keeps its own history; a cancel keeps the answer so far', async () => {
    const opts = { template: 'plain', options: { maxNewTokens: 12 } };
    const both = await ChatSession.open({ model: STORIES, adapter: adapterDir, ...opts });
    const alone = await ChatSession.open({ model: STORIES, ...opts });
    try {
      assert.equal(both.info.adapter, adapterDir);
      const order: string[] = [];
      const a = await both.say('Once upon a time', {
        compare: true,
        order: 'interleaved',
        onToken: (side) => order.push(side),
      });
      const b = await alone.say('Once upon a time');
      assert.equal(a.base?.text, b.base?.text);
      assert.notEqual(a.adapter?.text, a.base?.text, 'the adapter changes the answer');
      assert.ok(order.indexOf('base') < order.lastIndexOf('adapter'), 'interleaved: both stream at once');
      assert.equal(both.history('adapter')[1].content, a.adapter?.text);
      assert.equal(both.history('base')[1].content, a.base?.text);
      await assert.rejects(alone.say('x', { compare: true }), /no adapter/);

      const controller = new AbortController();
      let tokens = 0;
      const c = await both.say('Tell me more', {
        signal: controller.signal,
        onToken: () => ++tokens === 2 && controller.abort(),
      });
      assert.equal(c.adapter?.reason, 'stopped');
      assert.ok(c.adapter!.tokens < 12);
      assert.equal(both.history('adapter').at(-1)?.content, c.adapter?.text);
      assert.equal(both.history('base').at(-1)?.content, c.adapter?.text, 'an uncompared turn: the answer shown');
    } finally {
      both.dispose();
      alone.dispose();
    }
  });

  it('leaves no tensor behind: the same conversation again holds as many tensors, none after dispose', async () => {
    const start = tf.memory().numTensors;
    const s = await ChatSession.open({
      model: STORIES,
      adapter: adapterDir,
      template: 'plain',
      options: { maxNewTokens: 8 },
    });
    const talk = async () => {
      for (const q of ['Once upon a time', 'And then?']) await s.say(q, { compare: true });
    };
    await talk(); // warm-up: the model caches RoPE tables per run length
    const after1 = tf.memory().numTensors;
    s.reset();
    await talk();
    assert.equal(tf.memory().numTensors, after1);
    s.dispose();
    assert.equal(tf.memory().numTensors, start);
  });
});
