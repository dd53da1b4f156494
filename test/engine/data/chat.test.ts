// The same SST-2 task in four chat formats (../shared/data/sst2-chat) becomes the same conversations: alpaca and
// ShareGPT as LLaMA-Factory converts them (user = instruction + "\n" + input; human → user, gpt → assistant),
// prompt/completion as TRL's prompt + completion. And bad rows are errors at their line.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { detectFormat, toChatExample, type ChatExample, type Message } from '../../../src/engine/data/chat';
import { readRows } from '../../../src/engine/data/rows';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED } from '../../helpers/shared';

const DIR = path.join(SHARED, 'data', 'sst2-chat');

function conversations(file: string, n = 30): Message[][] {
  const rows = readRows(path.join(DIR, file)).slice(0, n);
  const format = detectFormat(rows[0])!;
  return rows.map((r) => {
    const ex: ChatExample = toChatExample(r, format, file);
    if (ex.kind === 'messages') return ex.messages;
    if (ex.kind === 'prompt_completion') return [...ex.prompt, ...ex.completion];
    throw new Error(`unexpected ${ex.kind}`);
  });
}

const withoutSystem = (c: Message[][]) => c.map((m) => m.filter((x) => x.role !== 'system'));

describe('chat formats', () => {
  it('detects each format from its first row', () => {
    const first = (f: string) => detectFormat(readRows(path.join(DIR, f))[0]);
    assert.deepEqual(
      ['messages.train.jsonl', 'prompt_completion.train.jsonl', 'alpaca.train.json', 'sharegpt.train.jsonl'].map(first),
      ['messages', 'prompt_completion', 'alpaca', 'sharegpt'],
    );
    assert.equal(detectFormat({ text: 'hello' }), 'text');
    assert.equal(detectFormat({ sentence: 'x', label: 1 }), null);
  });

  it('messages, prompt/completion, alpaca and sharegpt give the same conversations', () => {
    const reference = withoutSystem(conversations('messages.train.jsonl'));
    for (const f of ['prompt_completion.train.jsonl', 'alpaca.train.json', 'sharegpt.train.jsonl'])
      assert.deepEqual(withoutSystem(conversations(f)), reference, f);
    assert.ok(reference.every((c) => c.at(-1)!.role === 'assistant'));
  });

  it('alpaca history and system come first; a bad row is an error at its line', () => {
    const ex = toChatExample(
      { instruction: 'Q3', input: '', output: 'A3', system: 'S', history: [['Q1', 'A1']] },
      'alpaca',
      'a.json',
    );
    assert.deepEqual(ex.kind === 'messages' && ex.messages.map((m) => `${m.role}:${m.content}`), [
      'system:S',
      'user:Q1',
      'assistant:A1',
      'user:Q3',
      'assistant:A3',
    ]);
    const rows = readRows(path.join(DIR, 'messages.train.jsonl')).slice(0, 2);
    const bad = rows[1]; // as read: it knows its line
    bad.messages = [{ role: 'user', content: 3 }];
    assert.throws(
      () => toChatExample(bad, 'messages', 'm.jsonl'),
      (e: unknown) => e instanceof LoraPlusError && e.code === 'data/bad-chat-row' && e.info.line === 2,
    );
  });
});
