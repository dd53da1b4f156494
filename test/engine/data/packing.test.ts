// Packing (data.packing) puts several sft examples in one max_length row. Each example must see only itself (a
// block-diagonal mask) with its positions restarting at 0, so every answer token's loss is the one it has in an
// unpacked, right-padded batch: checked for every decoder family, and the packer itself (best-fit decreasing).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { detectFormat, toChatExample } from '../../../src/engine/data/chat';
import { chatTemplate, compile } from '../../../src/engine/data/chat-render';
import { readRows } from '../../../src/engine/data/rows';
import { tokenizeSft, truncateSft, type SftExample } from '../../../src/engine/data/sft';
import { collatePacked, collateSft, packExamples } from '../../../src/engine/data/sft-data';
import { Rng } from '../../../src/engine/data/rng';
import { buildModel, openModelFolder, padId, toTensors, disposeBatch } from '../../../src/engine/train/inputs';
import { chatTemplateSource, loadChatTemplate, templateTokens } from '../../../src/models/chat-template';
import { NO_ADAPTERS, type Model } from '../../../src/models/types';
import type { Batch } from '../../../src/engine/data/datasets';
import { SHARED, STORIES, useBackend } from '../../helpers/shared';

const MESSAGES = path.join(SHARED, 'data', 'sst2-chat', 'messages.train.jsonl');
const model = (kind: string) => path.join(SHARED, 'models', `tiny-random-${kind}`);

const SHORT = ['good', 'dull', 'a gem', 'bad acting', 'fine', 'loved it', 'no'].map((review) =>
  JSON.stringify({
    messages: [
      { role: 'user', content: review },
      { role: 'assistant', content: 'ok' },
    ],
  }),
);

// A few tokens a turn, so that examples of GPT-2's 64 positions pack two to a row.
const TERSE = "{% for m in messages %}{{ m['content'] + ' ' }}{% endfor %}";

function examples(dir: string, builtIn: string | null, n: number, short = false): SftExample[] {
  const tok = openModelFolder(dir).tokenizer;
  const { tokens, special } = templateTokens(dir);
  const t = short
    ? compile(TERSE, 'terse', tokens)
    : chatTemplate(builtIn, { template: loadChatTemplate(dir), source: chatTemplateSource(dir) }, tokens)!;
  const rows = short ? SHORT.map((l) => JSON.parse(l) as Record<string, unknown>) : readRows(MESSAGES).slice(0, n);
  const f = detectFormat(rows[0])!;
  const o = {
    assistantOnlyLoss: true,
    completionOnlyLoss: true,
    maxLength: 256,
    eosToken: tokens.eos_token ?? null,
    specialTokens: special,
  };
  const counts = { truncated: 0, dropped: 0 };
  return rows.map((r) => truncateSft(tokenizeSft(toChatExample(r, f, MESSAGES), tok, t, o), 256, counts)!);
}

/** Each example's answer-token losses, from the logits of a batch, given where each example starts. */
async function tokenLosses(m: Model, b: Batch, starts: [number, number][], exs: SftExample[]): Promise<number[][]> {
  const bt = toTensors(b);
  const logits = tf.tidy(() => tf.logSoftmax(m.logits(bt, NO_ADAPTERS)));
  const lp = (await logits.data()) as Float32Array;
  logits.dispose();
  disposeBatch(bt);
  const v = lp.length / (b.batch * b.seq);
  return exs.map((e, i) => {
    const [row, at] = starts[i];
    const out: number[] = [];
    for (let t = 1; t < e.ids.length; t++) if (e.loss[t]) out.push(-lp[(row * b.seq + at + t - 1) * v + e.ids[t]]);
    return out;
  });
}

describe('packing', () => {
  before(() => useBackend());

  for (const [name, dir, builtIn, short] of [
    ['llama (stories260k)', STORIES, 'plain', false],
    ['qwen3', model('qwen3'), null, false],
    ['gemma3 (sliding window 5)', model('gemma3'), null, false],
    ['phi3', model('phi3'), null, false],
    ['gpt2 (learned positions, 64 of them)', model('gpt2'), 'plain', true],
  ] as const) {
    it(`${name}: packed rows give each answer token the loss it has unpacked`, async () => {
      const exs = examples(dir, builtIn, 7, short);
      const folder = openModelFolder(dir);
      const m = buildModel(folder, 'causal-lm', 0, new Rng(0));
      const pad = padId(folder);
      try {
        const unpacked = await tokenLosses(
          m,
          collateSft(exs, pad, 8),
          exs.map((_, i) => [i, 0]),
          exs,
        );
        // Blocks that hold two of the longest examples, within the model's positions.
        const longest = Math.max(...exs.map((e) => e.ids.length));
        const blocks = packExamples(exs, Math.min(2 * longest, m.maxPositions));
        assert.ok(blocks.length < exs.length && blocks.some((b) => b.members.length > 1), 'something was packed');
        const starts: [number, number][] = [];
        blocks.forEach((b, row) => {
          let at = 0;
          for (const i of b.members) [starts[i], at] = [[row, at], at + exs[i].ids.length];
        });
        const packed = await tokenLosses(m, collatePacked(blocks, exs, pad, 8), starts, exs);
        let diff = 0;
        packed.forEach((l, i) => l.forEach((x, j) => (diff = Math.max(diff, Math.abs(x - unpacked[i][j])))));
        assert.ok(diff <= 1e-4, `max |Δ token loss| ${diff}`);
        assert.ok(packed.flat().length > 0);
      } finally {
        m.dispose();
      }
    });
  }

  it('best-fit decreasing: the longest first, each into the fullest block it fits; none over max_length', () => {
    const ex = (n: number): SftExample => ({ ids: new Array(n).fill(1), loss: new Uint8Array(n).fill(1) });
    const blocks = packExamples([5, 9, 3, 7, 2, 6].map(ex), 10);
    assert.deepEqual(
      blocks.map((b) => b.members),
      [[1], [3, 2], [5, 4], [0]],
    );
    assert.ok(blocks.every((b) => b.length <= 10));
  });
});
