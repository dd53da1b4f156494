// The engine process's long-lived `chat` request as the extension host drives it (engine-process.ts): the model
// loads (chat-ready), each `say` streams tokens and ends its sides, the history carries over, a compared turn answers
// on both sides, `cancel` ends an answer early, and `stop` ends the request with {id, result}; a model that cannot
// load is {id, error}.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { saveAdapter } from '../../src/adapters/peft';
import type { ChatRequest, ChatToHost } from '../../src/protocol/chat';
import type { EngineToHost, HostToEngine } from '../../src/protocol/host';
import { isEngineToHost } from '../../src/protocol/host';
import { STORIES, tempDir } from '../helpers/shared';
import { llamaAdapter } from '../engine/merge/fixtures';

const CHILD = path.resolve(__dirname, '..', '..', 'src', 'cli', 'child.ts');
const ID = 3;

type Reply = (m: EngineToHost, send: (m: HostToEngine) => void, disconnect: () => void) => void;

function runChat(params: ChatRequest, onMessage: Reply): Promise<{ messages: EngineToHost[]; code: number | null }> {
  const child = fork(CHILD, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, LORAPLUS_WASM_THREADS: '1' },
  });
  const messages: EngineToHost[] = [];
  child.on('message', (m: unknown) => {
    assert.ok(isEngineToHost(m), JSON.stringify(m));
    messages.push(m);
    onMessage(
      m,
      (x) => child.connected && child.send(x),
      () => child.connected && child.disconnect(),
    );
  });
  child.send({ type: 'request', id: ID, method: 'chat', params } satisfies HostToEngine);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ messages, code })));
}

const chatMessages = (ms: EngineToHost[]) =>
  ms.filter((m): m is ChatToHost => m.type !== 'event' && m.type !== 'log' && m.type !== 'response');

describe('engine child process: chat', () => {
  let adapter = '';
  before(() => {
    adapter = path.join(tempDir(), 'adapter');
    saveAdapter(adapter, llamaAdapter(STORIES, 13));
  });

  it('loads, streams two turns with the history kept, and ends on stop', async () => {
    const { messages, code } = await runChat(
      { model: STORIES, template: 'plain', options: { maxNewTokens: 6 }, device: 'wasm' },
      (m, send) => {
        if (m.type === 'chat-ready') send({ type: 'say', id: ID, turn: 1, text: 'Once upon a time', compare: false });
        if (m.type === 'turn-end' && m.turn === 1) {
          send({ type: 'system', id: ID, text: 'Tell a story.' });
          send({ type: 'say', id: ID, turn: 2, text: 'What next?', compare: false });
        }
        if (m.type === 'turn-end' && m.turn === 2) send({ type: 'stop' });
      },
    );
    assert.equal(code, 0);
    const chat = chatMessages(messages);
    assert.equal(chat[0].type, 'chat-ready');
    const ready = chat[0] as Extract<ChatToHost, { type: 'chat-ready' }>;
    assert.equal(ready.info.template, "built-in 'plain'");
    assert.equal(ready.info.adapter, null);
    for (const turn of [1, 2]) {
      const of = chat.filter((m) => 'turn' in m && m.turn === turn);
      assert.deepEqual(
        [...new Set(of.map((m) => m.type))],
        ['turn-start', 'token', 'turn-end'],
        `turn ${turn}: ${JSON.stringify(of)}`,
      );
      const tokens = of.filter((m) => m.type === 'token');
      assert.ok(tokens.length > 1, 'streamed');
      assert.ok(tokens.every((m) => m.type === 'token' && m.side === 'base' && m.id === ID));
      const end = of.at(-1) as Extract<ChatToHost, { type: 'turn-end' }>;
      assert.equal(
        tokens
          .map((m) => (m.type === 'token' ? m.text : ''))
          .join('')
          .trim(),
        end.text,
      );
      assert.equal(end.reason, 'length');
      assert.equal(end.tokens, 6);
    }
    const starts = chat.filter((m) => m.type === 'turn-start');
    assert.ok(starts[1].promptTokens > starts[0].promptTokens + 6, 'the second prompt holds the first exchange');
    assert.deepEqual(messages.at(-1), { type: 'response', id: ID, result: { turns: 2 } });
  });

  it('compares with the base model, cancels an answer, and stays until the host goes away', async () => {
    let child: { stop: boolean } = { stop: false };
    const { messages, code } = await runChat(
      { model: STORIES, adapter, template: 'plain', options: { maxNewTokens: 40 }, device: 'wasm' },
      (m, send, disconnect) => {
        if (m.type === 'chat-ready') {
          send({ type: 'say', id: ID, turn: 1, text: 'Once upon a time', compare: true });
          send({ type: 'say', id: ID, turn: 2, text: 'And then?', compare: false });
        }
        if (m.type === 'token' && m.turn === 2 && !child.stop) {
          child = { stop: true };
          send({ type: 'cancel', id: ID, turn: 2 });
        }
        if (m.type === 'turn-end' && m.turn === 2) disconnect();
      },
    );
    assert.equal(code, 0, 'the host went away: the chat ended');
    assert.ok(!messages.some((m) => m.type === 'response'), 'nobody to answer');
    const ends = chatMessages(messages).filter(
      (m): m is Extract<ChatToHost, { type: 'turn-end' }> => m.type === 'turn-end',
    );
    assert.deepEqual(
      ends.map((e) => [e.turn, e.side]),
      [
        [1, 'adapter'],
        [1, 'base'],
        [2, 'adapter'],
      ],
    );
    assert.notEqual(ends[0].text, ends[1].text);
    const sides = new Set(chatMessages(messages).flatMap((m) => (m.type === 'token' && m.turn === 1 ? [m.side] : [])));
    assert.deepEqual([...sides].sort(), ['adapter', 'base']);
    assert.equal(ends[2].reason, 'stopped');
    assert.ok(ends[2].tokens < 40);
  });

  it('answers {id, error} when the model cannot be loaded', async () => {
    const { messages, code } = await runChat({ model: path.join(tempDir(), 'nothing-here') }, () => {});
    assert.equal(code, 1);
    const last = messages.at(-1)!;
    assert.ok(last.type === 'response' && 'error' in last, JSON.stringify(last));
    assert.equal(last.type === 'response' && 'error' in last && last.error.code, 'model/not-found');
  });
});
