// The chat webviews (viewType loraplus.chat): each panel talks to a model, with or without an adapter, through an
// engine process of its own (a long-lived `chat` request: the extension host never loads TensorFlow.js). The page
// sends what the user types; the engine's streamed tokens come back translated into the page's messages
// (src/protocol/chat.ts). The panel keeps the transcript, so a page that reloads (hidden, then shown) gets it whole
// in `init`. Closing the panel stops its engine. A serializer reopens a panel after a window reload with a fresh
// conversation (the engine's state does not survive the window).
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  hostMessage,
  isChatPageToHost,
  isChatPanelState,
  type ChatInfo,
  type ChatPanelState,
  type ChatSide,
  type ChatStatus,
  type ChatToHost,
  type ChatTurn,
  type HostMessages,
} from '../../protocol/chat';
import { formatError } from '../../protocol/errors';
import { startEngine, type EngineCall } from '../engine-process';
import { webviewHtml, webviewOptions } from './html';

export const CHAT_VIEW_TYPE = 'loraplus.chat';
/** How long a stopped engine may take to end its answer and exit before it is killed. */
const STOP_GRACE_MS = 5000;

export interface ChatPanelsOptions {
  start?: typeof startEngine; // tests put a fake engine here
  trusted?: () => boolean; // workspace trust; chatting runs code
  cwd?: () => string; // where the engine runs; default: the first workspace folder
}

export class ChatPanels implements vscode.Disposable {
  private readonly panels = new Set<ChatPanel>();
  private readonly serializer: vscode.Disposable;
  /** Where the engine's output goes (the LoRA+ output channel, once a command has run). */
  log: (line: string) => void = () => {};

  constructor(
    readonly extensionUri: vscode.Uri,
    private readonly o: ChatPanelsOptions = {},
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(CHAT_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state: unknown) => {
        if (!isChatPanelState(state)) return panel.dispose();
        this.attach(panel, state);
      },
    });
  }

  /** A chat on `state`: the open panel of the same model and adapter, else a new one. */
  open(state: ChatPanelState): void {
    const same = [...this.panels].find((p) => p.state.model === state.model && p.state.adapter === state.adapter);
    if (same) return same.panel.reveal();
    const panel = vscode.window.createWebviewPanel(
      CHAT_VIEW_TYPE,
      chatTitle(state),
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.attach(panel, state);
  }

  private attach(panel: vscode.WebviewPanel, state: ChatPanelState): void {
    const p = new ChatPanel(panel, this.extensionUri, state, {
      extensionPath: this.extensionUri.fsPath,
      start: this.o.start ?? startEngine,
      trusted: this.o.trusted ?? (() => vscode.workspace.isTrusted),
      cwd: this.o.cwd ?? (() => vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir()),
      log: (line) => this.log(line),
    });
    this.panels.add(p);
    panel.onDidDispose(() => this.panels.delete(p));
  }

  dispose(): void {
    for (const p of this.panels) p.dispose();
    this.panels.clear();
    this.serializer.dispose();
  }
}

export function chatTitle(s: ChatPanelState): string {
  const adapter = s.adapter ? adapterName(s.adapter) : null;
  return `LoRA+ Chat: ${adapter ?? path.basename(s.model)}`;
}

/** `run` for …/run/final, `run@step-N` for a checkpoint, else the folder's name. */
function adapterName(dir: string): string {
  const base = path.basename(dir);
  const parent = path.basename(path.dirname(dir));
  if (base === 'final') return parent;
  if (parent === 'checkpoints') return `${path.basename(path.dirname(path.dirname(dir)))}@${base}`;
  return base;
}

interface Deps {
  extensionPath: string;
  start: typeof startEngine;
  trusted: () => boolean;
  cwd: () => string;
  log: (line: string) => void;
}

class ChatPanel {
  private readonly disposables: vscode.Disposable[] = [];
  private call: EngineCall<'chat'> | null = null;
  private ready = false;
  private disposed = false;
  private status: ChatStatus = 'loading';
  private message: string | null = null;
  private info: ChatInfo | null = null;
  private compare: boolean;
  private system: string | null = null;
  private turns: ChatTurn[] = [];
  private nextTurn = 1;

  constructor(
    readonly panel: vscode.WebviewPanel,
    extensionUri: vscode.Uri,
    readonly state: ChatPanelState,
    private readonly deps: Deps,
  ) {
    this.compare = state.adapter !== null; // the point of a run's chat: how it differs from the base model
    panel.title = chatTitle(state);
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      title: panel.title,
      scripts: ['chat.js'],
      styles: ['chat.css'],
      state,
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      // Hidden panels lose their page (retainContextWhenHidden is off); a shown one reloads and says `ready` again.
      panel.onDidChangeViewState(() => (this.ready &&= panel.visible)),
      panel.onDidDispose(() => this.dispose()),
    );
    this.start();
  }

  private get primary(): ChatSide {
    return this.state.adapter ? 'adapter' : 'base';
  }

  private receive(m: unknown): void {
    if (!isChatPageToHost(m)) return;
    switch (m.type) {
      case 'ready':
        this.ready = true;
        return this.post('init', {
          state: this.state,
          status: this.status,
          message: this.message,
          info: this.info,
          compare: this.compare,
          system: this.system,
          turns: this.turns,
        });
      case 'say':
        return this.say(m.text);
      case 'cancel': {
        const open = this.turns.at(-1);
        if (open && this.status === 'busy') this.call?.send({ type: 'cancel', turn: open.turn });
        return;
      }
      case 'reset':
        this.call?.send({ type: 'reset' });
        this.turns = [];
        return this.post('cleared', { system: this.system });
      case 'setSystem':
        this.system = m.text?.trim() || null;
        this.call?.send({ type: 'system', text: this.system });
        return;
      case 'setCompare':
        this.compare = m.compare && this.state.adapter !== null;
        return;
      case 'restart':
        if (this.status === 'error' || this.status === 'ended') this.start();
        return;
      default:
        m satisfies never;
    }
  }

  private say(text: string): void {
    if (this.status !== 'ready' || !this.call) return; // the page disables sending meanwhile
    const turn = this.nextTurn++;
    const sides: ChatSide[] = this.compare ? ['adapter', 'base'] : [this.primary];
    this.turns.push({ turn, user: text, answers: {}, error: null });
    this.setStatus('busy', null);
    this.post('turnStart', { turn, user: text, sides });
    this.call.send({ type: 'say', turn, text, compare: this.compare });
  }

  /** What the engine says: translated for the page, and kept for a page that reloads. */
  private fromEngine(m: ChatToHost): void {
    if (m.type === 'chat-ready') {
      this.info = m.info;
      return this.setStatus('ready', m.info.templateNote);
    }
    const turn = this.turns.find((t) => t.turn === m.turn);
    if (!turn) return; // a turn from before a reset
    switch (m.type) {
      case 'turn-start':
        turn.answers[m.side] = { text: '', done: false, reason: null, tokens: 0, dropped: m.dropped };
        return this.post('answerStart', { turn: m.turn, side: m.side, dropped: m.dropped });
      case 'token': {
        const a = turn.answers[m.side];
        if (a) a.text += m.text;
        return this.post('token', { turn: m.turn, side: m.side, text: m.text });
      }
      case 'turn-end': {
        const a = turn.answers[m.side];
        if (a) Object.assign(a, { done: true, reason: m.reason, tokens: m.tokens });
        this.post('turnEnd', { turn: m.turn, side: m.side, text: m.text, reason: m.reason, tokens: m.tokens });
        if (Object.values(turn.answers).every((x) => x.done)) this.setStatus('ready', null);
        return;
      }
      case 'turn-error':
        turn.error = m.error;
        this.post('turnError', { turn: m.turn, error: m.error });
        return this.setStatus('ready', null);
      default:
        m satisfies never;
    }
  }

  private start(): void {
    if (!this.deps.trusted()) {
      return this.setStatus(
        'error',
        'Chatting runs the model on your machine, so it is disabled in an untrusted workspace. ' +
          'Trust this workspace, then reopen the chat.',
      );
    }
    this.info = null;
    this.setStatus('loading', null);
    const log = (l: string) => this.deps.log(`[chat] ${l}`);
    const call = this.deps.start(
      this.deps.extensionPath,
      'chat',
      { model: this.state.model, adapter: this.state.adapter, template: this.state.template, system: this.system },
      { cwd: this.deps.cwd(), onChat: (m) => this.fromEngine(m), onLog: log, onOutput: log },
    );
    this.call = call;
    void call.outcome.then((o) => {
      if (this.call !== call || this.disposed) return;
      this.call = null;
      if (o.ok) return this.setStatus('ended', 'The model was unloaded.');
      this.deps.log(`[chat] ${formatError(o.error)}`);
      const open = this.turns.at(-1);
      if (open && this.status === 'busy') {
        open.error = o.error; // the answer being written when the engine died
        this.post('turnError', { turn: open.turn, error: o.error });
      }
      this.setStatus('error', formatError(o.error));
    });
  }

  private setStatus(status: ChatStatus, message: string | null): void {
    [this.status, this.message] = [status, message];
    this.post('status', { status, message, info: this.info });
  }

  private post<K extends keyof HostMessages>(type: K, payload: HostMessages[K]): void {
    if (this.ready && !this.disposed) void this.panel.webview.postMessage(hostMessage(type, payload));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    const call = this.call;
    this.call = null;
    if (call) {
      call.stop(); // ends the answer being written, then the process
      const kill = setTimeout(() => call.cancel(), STOP_GRACE_MS);
      kill.unref?.();
      void call.outcome.then(() => clearTimeout(kill));
    }
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}
