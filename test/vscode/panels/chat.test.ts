// The chat panel host (src/vscode/panels/chat.ts) under the webview stub, with a fake engine standing in for the
// engine process: the page it opens (CSP shell, chat.js, its state), the ready handshake, what the user's messages
// become (say with a turn number, compare on with an adapter), the engine's stream translated for the page and kept
// for a reloaded page, reset and the compare toggle, a crash with Restart, closing (the engine is stopped), and an
// untrusted workspace (no engine at all).
import assert from 'node:assert/strict';
import { afterEach, before, describe, it } from 'node:test';
import {
  isHostToChatPage,
  webviewMessage,
  type ChatCommand,
  type ChatInfo,
  type ChatToHost,
  type HostToChatPage,
} from '../../../src/protocol/chat';
import type { EngineHandlers, Outcome } from '../../../src/vscode/engine-process';
import type { ChatPanels as ChatPanelsType } from '../../../src/vscode/panels/chat';
import { installWebviewStub, stub, Uri, type FakePanel } from '../webview-stub';

installWebviewStub();
let ChatPanels: typeof ChatPanelsType;

/** What the engine sends, less the request id the fake adds. */
type Emitted = ChatToHost extends infer M ? (M extends ChatToHost ? Omit<M, 'id'> : never) : never;

class FakeCall {
  readonly sent: ChatCommand[] = [];
  stopped = false;
  cancelled = false;
  readonly child = {};
  private resolve!: (o: Outcome<'chat'>) => void;
  readonly outcome = new Promise<Outcome<'chat'>>((r) => (this.resolve = r));
  constructor(
    readonly params: unknown,
    readonly h: EngineHandlers,
  ) {}
  send(m: ChatCommand): void {
    this.sent.push(m);
  }
  stop(): void {
    this.stopped = true;
    this.resolve({ ok: true, result: { turns: 0 } });
  }
  cancel(): void {
    this.cancelled = true;
  }
  end(o: Outcome<'chat'>): void {
    this.resolve(o);
  }
  /** The engine says something. */
  emit(m: Emitted): void {
    this.h.onChat?.({ ...m, id: 1 } as ChatToHost);
  }
}

const INFO: ChatInfo = {
  model: '/models/m',
  modelType: 'llama',
  adapter: '/runs/r/final',
  template: "built-in 'plain'",
  templateNote: null,
  maxPositions: 512,
  backend: 'wasm',
  options: { maxNewTokens: 64, temperature: 0, topK: 0, topP: 1, seed: 0 },
  stops: ['</s>'],
};

const flush = () => new Promise((r) => setImmediate(r));

describe('chat panel host', () => {
  let calls: FakeCall[] = [];
  let trusted = true;
  let panels: ChatPanelsType;
  const page = (p: FakePanel) => p.posted as unknown as HostToChatPage[];
  const last = <T extends HostToChatPage['type']>(p: FakePanel, type: T) =>
    page(p)
      .filter((m) => m.type === type)
      .at(-1) as Extract<HostToChatPage, { type: T }>;

  before(async () => {
    ({ ChatPanels } = await import('../../../src/vscode/panels/chat'));
  });
  afterEach(() => panels?.dispose());

  function open(adapter: string | null = '/runs/r/final') {
    calls = [];
    panels = new ChatPanels(Uri.file('/ext') as never, {
      start: ((_ext: string, _method: 'chat', params: unknown, h: EngineHandlers) => {
        const c = new FakeCall(params, h);
        calls.push(c);
        return c;
      }) as never,
      trusted: () => trusted,
      cwd: () => '/work',
    });
    panels.open({ model: '/models/m', adapter, template: null });
    return stub.panels.at(-1)!;
  }

  it('opens the page, starts its engine, and answers `ready` with everything so far', () => {
    const p = open();
    assert.equal(p.viewType, 'loraplus.chat');
    assert.equal(p.title, 'LoRA+ Chat: r');
    assert.match(p.webview.html, /Content-Security-Policy/);
    assert.match(p.webview.html, /chat\.js/);
    assert.match(p.webview.html, /data-state="\{&quot;model&quot;:&quot;\/models\/m&quot;/);
    assert.equal(calls.length, 1);
    assert.deepEqual(calls[0].params, { model: '/models/m', adapter: '/runs/r/final', template: null, system: null });
    assert.equal(p.posted.length, 0, 'nothing before the page is ready');
    p.fromPage(webviewMessage('ready', {}));
    const init = last(p, 'init');
    assert.ok(isHostToChatPage(init));
    assert.equal(init.status, 'loading');
    assert.equal(init.compare, true, 'a chat with an adapter compares by default');
    calls[0].emit({ type: 'chat-ready', info: INFO });
    assert.deepEqual([last(p, 'status').status, last(p, 'status').info], ['ready', INFO]);
  });

  it('turns messages into engine turns, streams the answers to the page, and replays them after a reload', () => {
    const p = open();
    p.fromPage(webviewMessage('ready', {}));
    const engine = calls[0];
    p.fromPage(webviewMessage('say', { text: 'too early' }));
    assert.deepEqual(engine.sent, [], 'nothing is sent before the model is loaded');
    engine.emit({ type: 'chat-ready', info: INFO });
    p.fromPage(webviewMessage('say', { text: 'Hello' }));
    assert.deepEqual(engine.sent, [{ type: 'say', turn: 1, text: 'Hello', compare: true }]);
    assert.deepEqual([last(p, 'turnStart').sides, last(p, 'status').status], [['adapter', 'base'], 'busy']);
    for (const side of ['adapter', 'base'] as const) {
      engine.emit({ type: 'turn-start', turn: 1, side, promptTokens: 9, dropped: 0 });
      engine.emit({ type: 'token', turn: 1, side, text: `${side} says` });
      engine.emit({ type: 'token', turn: 1, side, text: ' hi' });
    }
    p.fromPage(webviewMessage('cancel', {}));
    assert.deepEqual(engine.sent.at(-1), { type: 'cancel', turn: 1 });
    engine.emit({ type: 'turn-end', turn: 1, side: 'adapter', text: 'adapter says hi', reason: 'eos', tokens: 3 });
    assert.equal(last(p, 'status').status, 'busy', 'the base model is still writing');
    engine.emit({ type: 'turn-end', turn: 1, side: 'base', text: 'base says hi', reason: 'stopped', tokens: 3 });
    assert.equal(last(p, 'status').status, 'ready');
    const tokens = page(p).filter((m) => m.type === 'token');
    assert.equal(tokens.length, 4);
    assert.ok(
      page(p).every((m) => isHostToChatPage(m)),
      'every message passes the page guard',
    );

    p.fromPage(webviewMessage('ready', {})); // the page reloaded (hidden, then shown)
    const init = last(p, 'init');
    assert.equal(init.status, 'ready');
    assert.deepEqual(init.turns, [
      {
        turn: 1,
        user: 'Hello',
        answers: {
          adapter: { text: 'adapter says hi', done: true, reason: 'eos', tokens: 3, dropped: 0 },
          base: { text: 'base says hi', done: true, reason: 'stopped', tokens: 3, dropped: 0 },
        },
        error: null,
      },
    ]);
  });

  it('the compare toggle, the system message, reset and a failed turn', () => {
    const p = open();
    p.fromPage(webviewMessage('ready', {}));
    const engine = calls[0];
    engine.emit({ type: 'chat-ready', info: INFO });
    p.fromPage(webviewMessage('setCompare', { compare: false }));
    p.fromPage(webviewMessage('setSystem', { text: '  Be brief. ' }));
    p.fromPage(webviewMessage('say', { text: 'Hi' }));
    assert.deepEqual(engine.sent, [
      { type: 'system', text: 'Be brief.' },
      { type: 'say', turn: 1, text: 'Hi', compare: false },
    ]);
    assert.deepEqual(last(p, 'turnStart').sides, ['adapter']);
    engine.emit({ type: 'turn-error', turn: 1, error: { code: 'chat/too-long', message: 'too long' } });
    assert.equal(last(p, 'turnError').error.code, 'chat/too-long');
    assert.equal(last(p, 'status').status, 'ready');
    p.fromPage(webviewMessage('reset', {}));
    assert.deepEqual(engine.sent.at(-1), { type: 'reset' });
    assert.deepEqual(last(p, 'cleared'), { v: 1, type: 'cleared', system: 'Be brief.' });
    p.fromPage(webviewMessage('ready', {}));
    assert.deepEqual(last(p, 'init').turns, []);
  });

  it('a model without an adapter answers alone; an engine that dies is an error the page can restart', async () => {
    const p = open(null);
    p.fromPage(webviewMessage('ready', {}));
    assert.equal(last(p, 'init').compare, false);
    calls[0].emit({ type: 'chat-ready', info: { ...INFO, adapter: null } });
    p.fromPage(webviewMessage('setCompare', { compare: true }));
    p.fromPage(webviewMessage('say', { text: 'Hi' }));
    assert.deepEqual(calls[0].sent, [{ type: 'say', turn: 1, text: 'Hi', compare: false }]);
    calls[0].end({
      ok: false,
      cancelled: false,
      error: { code: 'engine/crashed', message: 'the engine process ended' },
    });
    await flush();
    assert.deepEqual([last(p, 'status').status, last(p, 'status').message], ['error', 'the engine process ended.']);
    assert.equal(last(p, 'turnError').turn, 1, 'the answer being written failed with it');
    p.fromPage(webviewMessage('restart', {}));
    assert.equal(calls.length, 2, 'a fresh engine');
    assert.equal(last(p, 'status').status, 'loading');
  });

  it('closing the panel stops its engine', () => {
    const p = open();
    p.dispose();
    assert.equal(calls[0].stopped, true);
  });

  it('an untrusted workspace starts no engine and says why', () => {
    trusted = false;
    try {
      const p = open();
      p.fromPage(webviewMessage('ready', {}));
      assert.equal(calls.length, 0);
      assert.equal(last(p, 'init').status, 'error');
      assert.match(last(p, 'init').message ?? '', /untrusted workspace/);
    } finally {
      trusted = true;
    }
  });
});
