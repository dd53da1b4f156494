// The chat's pure parts: the conversation rendered with the template (oldest exchanges dropped to fit), what ends an
// answer for each built-in template and a model's own, an answer's text streamed token by token (multi-byte
// characters and word spaces whole, stop texts cut), and the sampling of the next token.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { chatTemplate } from '../../../src/engine/data/chat-render';
import {
  AnswerText,
  chatStops,
  checkSampling,
  Conversation,
  eosIdsOf,
  pickToken,
  samplingDefaults,
} from '../../../src/engine/data/conversation';
import { Rng } from '../../../src/engine/data/rng';
import { loadChatTemplate, templateTokens } from '../../../src/models/chat-template';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED, STORIES, tempDir } from '../../helpers/shared';

const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');
const qwen = loadTokenizer(QWEN3, { eos_token_id: 2 });
const stories = loadTokenizer(STORIES, { bos_token_id: 1, eos_token_id: 2 });
const qwenTemplate = chatTemplate(
  null,
  { template: loadChatTemplate(QWEN3), source: QWEN3 },
  { eos_token: '<|im_end|>' },
)!;
const plain = chatTemplate('plain', { template: null, source: STORIES }, { eos_token: '</s>', bos_token: '<s>' })!;
const encode = (text: string) => qwen.encode(text, { addSpecialTokens: false }).ids;

describe('Conversation', () => {
  it('renders system, exchanges and the next message with the generation prompt', () => {
    const c = new Conversation('Be brief.');
    c.add('Hi', 'Hello!');
    const p = c.prompt('How are you?', qwenTemplate, encode, 1000);
    assert.equal(
      p.text,
      '<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' +
        'Hello!<|im_end|>\n<|im_start|>user\nHow are you?<|im_end|>\n<|im_start|>assistant\n',
    );
    assert.deepEqual(p.ids, encode(p.text));
    assert.equal(p.dropped, 0);
    assert.equal(c.turns.length, 1, 'the next message joins the history only with its answer');
    c.reset();
    assert.equal(c.prompt('x', plain, encode, 1000).text, 'Be brief.\n\n### Instruction:\nx\n\n### Response:\n');
  });

  it('drops the oldest exchanges, for good, until the prompt fits', () => {
    const c = new Conversation();
    for (let i = 0; i < 6; i++) c.add(`question ${i} `.repeat(4), `answer ${i} `.repeat(4));
    const full = encode(qwenTemplate.render(c.messages('last'), true).text).length;
    const p = c.prompt('last', qwenTemplate, encode, Math.floor(full / 2));
    assert.ok(p.dropped >= 3 && p.dropped < 6, `dropped ${p.dropped}`);
    assert.ok(p.ids.length <= full / 2);
    assert.equal(c.turns.length, 6 - p.dropped);
    assert.match(c.turns[0].user, new RegExp(`question ${p.dropped}`), 'the newest exchanges stay');
    assert.equal(c.prompt('last', qwenTemplate, encode, full).dropped, 0, 'nothing more to drop');
  });

  it('refuses a message that does not fit alone, keeping the history', () => {
    const c = new Conversation();
    c.add('a', 'b');
    assert.throws(
      () => c.prompt('word '.repeat(200), qwenTemplate, encode, 50),
      (e) => e instanceof LoraPlusError && e.info.code === 'chat/too-long' && /takes \d+ tokens/.test(e.message),
    );
    assert.equal(c.turns.length, 1, 'the history stays');
  });
});

describe('chatStops', () => {
  const { special } = templateTokens(QWEN3);

  it("a model's ChatML template: eos <|im_end|> and the next turn's <|im_start|>", () => {
    const s = chatStops(qwenTemplate, qwen, special, eosIdsOf(QWEN3, qwen.eosId));
    assert.deepEqual([...s.ids].sort(), [1, 2]);
    assert.deepEqual(s.texts, []);
    assert.deepEqual(s.names, ['<|im_end|>', '<|im_start|>']);
  });

  it("the built-in 'plain' template: eos, and the text that starts the next instruction", () => {
    const s = chatStops(plain, stories, ['<unk>', '<s>', '</s>'], eosIdsOf(STORIES, stories.eosId));
    assert.deepEqual([...s.ids], [2]);
    assert.deepEqual(s.texts, ['### Instruction:']);
  });

  it('eos ids from config.json and generation_config.json (a list), each once', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ eos_token_id: [7, 8] }));
    fs.writeFileSync(path.join(dir, 'generation_config.json'), JSON.stringify({ eos_token_id: 9 }));
    assert.deepEqual(eosIdsOf(dir, 7), [7, 8, 9]);
  });
});

describe('AnswerText', () => {
  for (const [name, tok] of [
    ['byte-level BPE (Qwen3)', qwen],
    ['SentencePiece with byte fallback (stories260k)', stories],
  ] as const) {
    it(`streams multi-byte characters and word spaces whole: ${name}`, () => {
      const text = 'Hello wörld, naïve café — 日本語 😀 end';
      const ids = tok.encode(text, { addSpecialTokens: false }).ids;
      const decode = (x: number[]) => tok.decode(x, { skipSpecialTokens: true });
      const a = new AnswerText(decode);
      const deltas = ids.map((id) => a.push(id));
      deltas.push(a.finish());
      assert.equal(deltas.join(''), decode(ids));
      for (const d of deltas) assert.ok(!d.includes('\uFFFD'), `a broken character in ${JSON.stringify(d)}`);
      assert.ok(deltas.filter(Boolean).length > 3, 'it streams');
    });
  }

  it('holds back what may begin a stop text, and cuts the text where one appears', () => {
    const pieces = ['The end.', '\n\n', '###', ' Instr', 'uction:', ' more'];
    const a = new AnswerText((ids) => ids.map((i) => pieces[i]).join(''), ['### Instruction:']);
    assert.equal(a.push(0), 'The end.');
    assert.equal(a.push(1), '\n\n');
    assert.equal(a.push(2), '', 'held: maybe a stop text');
    assert.equal(a.push(3), '');
    assert.equal(a.push(4), '');
    assert.equal(a.stopped, true);
    assert.equal(a.text, 'The end.\n\n');
    const b = new AnswerText((ids) => ids.map((i) => ['#', '# heading'][i]).join(''), ['### Instruction:']);
    assert.equal(b.push(0), '');
    assert.equal(b.push(1), '## heading', 'released once it cannot be a stop text');
  });
});

describe('sampling', () => {
  const opts = { maxNewTokens: 8, temperature: 0, topK: 0, topP: 1, seed: 0 };

  it('greedy takes the most likely token; top-k 1 and a tiny top-p do too', () => {
    const logits = [0.1, 3, -1, 2.9, 0];
    assert.equal(pickToken(logits, opts, new Rng(0)), 1);
    const rng = new Rng(1);
    for (let i = 0; i < 50; i++) {
      assert.equal(pickToken(logits, { ...opts, temperature: 1.5, topK: 1 }, rng), 1);
      assert.equal(pickToken(logits, { ...opts, temperature: 1.5, topP: 0.01 }, rng), 1);
    }
  });

  it('samples by probability at the temperature, only among the top-k', () => {
    const rng = new Rng(3);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++)
      counts[pickToken([0, Math.log(3), 5, -50], { ...opts, temperature: 1, topK: 2 }, rng)]++;
    assert.equal(counts[3], 0);
    assert.equal(counts[0], 0, 'top-2 is tokens 2 and 1');
    assert.ok(counts[1] > 0 && counts[2] > 10 * counts[1]);
    const even = [0, 0];
    for (let i = 0; i < 4000; i++) even[pickToken([0, Math.log(3)], { ...opts, temperature: 1 }, rng)]++;
    assert.ok(Math.abs(even[1] / 4000 - 0.75) < 0.03, `p(1) = ${even[1] / 4000}, want 0.75`);
  });

  it("defaults: generation_config.json's sampling, else greedy; bad options are errors that name the flag", () => {
    assert.deepEqual(samplingDefaults(STORIES), { maxNewTokens: 256, temperature: 0, topK: 0, topP: 1, seed: 0 });
    const dir = tempDir();
    fs.writeFileSync(
      path.join(dir, 'generation_config.json'),
      JSON.stringify({ do_sample: true, temperature: 0.6, top_p: 0.95, max_new_tokens: 100 }),
    );
    assert.deepEqual(samplingDefaults(dir), { maxNewTokens: 100, temperature: 0.6, topK: 50, topP: 0.95, seed: 0 });
    assert.throws(
      () => checkSampling({ ...opts, topP: 0 }, (k) => `--${k}`),
      (e) => e instanceof LoraPlusError && e.info.message === '--topP must be in (0, 1], not 0',
    );
  });
});
