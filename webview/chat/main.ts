// The chat page: a header (model, adapter, template, backend, status), the conversation (transcript.ts), and a box
// to write in (Enter sends, Shift+Enter breaks the line; the Send button becomes Stop while an answer is written).
// With an adapter, "Compare with the base model" makes each answer come twice, side by side. It says `ready` first;
// the host answers with `init` (everything so far), then streams. vscode.setState keeps what the serializer needs
// to reopen the chat after a window reload. The two sides take the theme's first two chart colours, again on a
// theme switch.
import './style.css';
import {
  isChatPanelState,
  isHostToChatPage,
  webviewMessage,
  type ChatInfo,
  type ChatPanelState,
  type ChatStatus,
  type HostToChatPage,
  type WebviewMessages,
} from '../../src/protocol/chat';
import { h, setText } from '../shared/dom';
import { onThemeChange, readTheme } from '../shared/theme';
import { initialState, vscodeApi } from '../shared/vscode-api';
import { Transcript } from './transcript';

const STATUS_TEXT: Record<ChatStatus, string> = {
  loading: 'Loading the model…',
  ready: 'Ready',
  busy: 'Writing…',
  error: 'Error',
  ended: 'Ended',
};

class ChatPage {
  private readonly title = h('h1', { id: 'chat-title', text: 'LoRA+ Chat' });
  private readonly info = h('p', { id: 'chat-info', class: 'info' });
  private readonly status = h('p', { id: 'chat-status', class: 'status', attrs: { 'data-status': 'loading' } });
  private readonly compare = h('input', { id: 'compare-toggle', attrs: { type: 'checkbox' } });
  private readonly compareLabel = h('label', { class: 'toggle', title: 'Each answer twice: with and without it' }, [
    this.compare,
    ' Compare with the base model',
  ]);
  private readonly reset = h('button', { id: 'reset', class: 'secondary', text: 'New Conversation' });
  private readonly restart = h('button', { id: 'restart', class: 'secondary', text: 'Restart', attrs: { hidden: '' } });
  private readonly system = h('textarea', {
    id: 'system',
    attrs: { rows: '2', placeholder: 'A system message for every answer (none by default)' },
  });
  private readonly systemSet = h('button', { id: 'system-set', class: 'secondary', text: 'Set' });
  private readonly prompt = h('textarea', {
    id: 'prompt',
    attrs: { rows: '3', placeholder: 'Message (Enter sends, Shift+Enter starts a new line)' },
  });
  private readonly send = h('button', { id: 'send', text: 'Send' });
  private readonly transcript = new Transcript(null);
  private state: ChatPanelState | null = null;
  private current: ChatStatus = 'loading';

  constructor(root: HTMLElement) {
    const systemBox = h('details', { id: 'system-box' }, [
      h('summary', { text: 'System message' }),
      h('div', { class: 'row' }, [this.system, this.systemSet]),
    ]);
    root.append(
      h('header', {}, [
        this.title,
        this.info,
        h('div', { class: 'row tools' }, [this.status, this.compareLabel, this.reset, this.restart]),
        systemBox,
      ]),
      this.transcript.root,
      h('footer', {}, [h('div', { class: 'row' }, [this.prompt, this.send])]),
    );
    this.send.addEventListener('click', () => this.submit());
    this.prompt.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' || e.shiftKey || e.isComposing) return;
      e.preventDefault();
      this.submit();
    });
    this.compare.addEventListener('change', () => post('setCompare', { compare: this.compare.checked }));
    this.reset.addEventListener('click', () => post('reset', {}));
    this.restart.addEventListener('click', () => post('restart', {}));
    this.systemSet.addEventListener('click', () => post('setSystem', { text: this.system.value.trim() || null }));
    this.colour();
    onThemeChange(() => this.colour());
  }

  receive(m: HostToChatPage): void {
    switch (m.type) {
      case 'init':
        this.state = m.state;
        vscodeApi<ChatPanelState>().setState(m.state);
        this.compareLabel.hidden = m.state.adapter === null;
        this.compare.checked = m.compare;
        this.system.value = m.system ?? '';
        this.transcript.setAdapterName(m.state.adapter ? shortName(m.state.adapter) : null);
        this.transcript.load(m.turns);
        return this.setStatus(m.status, m.message, m.info);
      case 'status':
        return this.setStatus(m.status, m.message, m.info);
      case 'turnStart':
        return this.transcript.start(m.turn, m.user, m.sides);
      case 'answerStart':
        return this.transcript.answerStart(m.turn, m.side, m.dropped);
      case 'token':
        return this.transcript.token(m.turn, m.side, m.text);
      case 'turnEnd':
        return this.transcript.end(m.turn, m.side, m.text, m.reason, m.tokens);
      case 'turnError':
        return this.transcript.error(m.turn, m.error);
      case 'cleared':
        return this.transcript.clear();
      default:
        m satisfies never;
    }
  }

  private submit(): void {
    if (this.current === 'busy') return post('cancel', {});
    const text = this.prompt.value.trim();
    if (!text || this.current !== 'ready') return;
    this.prompt.value = '';
    post('say', { text });
  }

  private setStatus(status: ChatStatus, message: string | null, info: ChatInfo | null): void {
    this.current = status;
    this.status.dataset.status = status;
    setText(this.status, message ? `${STATUS_TEXT[status]}: ${message}` : STATUS_TEXT[status]);
    setText(this.send, status === 'busy' ? 'Stop' : 'Send');
    this.send.disabled = status !== 'ready' && status !== 'busy';
    this.reset.disabled = status !== 'ready';
    this.systemSet.disabled = status !== 'ready';
    this.restart.hidden = status !== 'error' && status !== 'ended';
    if (this.state)
      setText(
        this.title,
        `LoRA+ Chat: ${this.state.adapter ? shortName(this.state.adapter) : shortName(this.state.model)}`,
      );
    if (info) {
      const o = info.options;
      const sampling = o.temperature ? `temperature ${o.temperature}, top-k ${o.topK}, top-p ${o.topP}` : 'greedy';
      setText(
        this.info,
        [
          `${info.model} (${info.modelType})`,
          info.adapter ? `adapter ${info.adapter}` : 'no adapter',
          `template ${info.template}`,
          `${info.backend} · ${sampling} · up to ${o.maxNewTokens} new tokens · ${info.maxPositions} positions`,
        ].join(' · '),
      );
    }
  }

  /** The sides' colours from the theme (CSSOM, which the page's CSP allows, unlike style attributes). */
  private colour(): void {
    const t = readTheme();
    document.body.style.setProperty('--side-adapter', t.series[0]);
    document.body.style.setProperty('--side-base', t.series[1]);
  }
}

function post<K extends keyof WebviewMessages>(type: K, payload: WebviewMessages[K]): void {
  vscodeApi().postMessage(webviewMessage(type, payload));
}

/** …/run/final → run; …/run/checkpoints/step-N → run@step-N; else the folder's name. */
function shortName(dir: string): string {
  const parts = dir.split(/[\\/]/).filter(Boolean);
  const [run, mid, last] = parts.slice(-3);
  if (last === 'final') return mid;
  if (mid === 'checkpoints') return `${run}@${last}`;
  return last ?? dir;
}

const state = initialState<ChatPanelState>();
if (isChatPanelState(state)) vscodeApi<ChatPanelState>().setState(state);
const app = h('main', { id: 'chat' });
document.body.append(app);
const page = new ChatPage(app);
window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isHostToChatPage(e.data)) page.receive(e.data);
});
post('ready', {});
