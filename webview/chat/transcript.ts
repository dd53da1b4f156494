// The conversation on the chat page: each turn is the user's message and one answer, or two side by side (the
// adapter's and the base model's) when the turn was compared. Answers grow token by token (text only: model output
// is data, never markup); a caret marks one still being written, a line under it says why it ended early.
import type { ChatAnswer, ChatEnd, ChatSide, ChatTurn } from '../../src/protocol/chat';
import { formatError, type ErrorInfo } from '../../src/protocol/errors';
import { h, setText } from '../shared/dom';

export const SIDE_LABEL: Record<ChatSide, string> = { adapter: 'adapter', base: 'base model' };

interface AnswerView {
  root: HTMLElement;
  text: HTMLElement;
  meta: HTMLElement;
}

interface TurnView {
  root: HTMLElement;
  answers: HTMLElement;
  sides: Partial<Record<ChatSide, AnswerView>>;
  error: HTMLElement;
}

export class Transcript {
  readonly root = h('div', { id: 'transcript', attrs: { role: 'log', 'aria-live': 'polite' } });
  private readonly turns = new Map<number, TurnView>();
  private readonly empty = h('p', { class: 'empty', text: 'Say something to start the conversation.' });

  constructor(private adapterName: string | null) {
    this.root.append(this.empty);
  }

  setAdapterName(name: string | null): void {
    this.adapterName = name;
  }

  clear(): void {
    this.turns.clear();
    this.root.replaceChildren(this.empty);
  }

  /** Every turn again (an `init` after the page reloaded). */
  load(turns: ChatTurn[]): void {
    this.clear();
    for (const t of turns) {
      this.start(t.turn, t.user, Object.keys(t.answers) as ChatSide[]);
      for (const [side, a] of Object.entries(t.answers) as [ChatSide, ChatAnswer][]) {
        this.answerStart(t.turn, side, a.dropped);
        this.token(t.turn, side, a.text);
        if (a.done && a.reason) this.end(t.turn, side, a.text, a.reason, a.tokens);
      }
      if (t.error) this.error(t.turn, t.error);
    }
  }

  start(turn: number, user: string, sides: ChatSide[]): void {
    this.empty.remove();
    const answers = h('div', { class: sides.length > 1 ? 'answers pair' : 'answers' });
    const error = h('p', { class: 'turn-error', attrs: { hidden: '' } });
    const root = h('section', { class: 'turn', attrs: { 'data-turn': String(turn) } }, [
      h('div', { class: 'user', text: user }),
      answers,
      error,
    ]);
    const view: TurnView = { root, answers, sides: {}, error };
    for (const side of sides) view.sides[side] = this.answerView(side, sides.length > 1);
    answers.append(...sides.map((s) => view.sides[s]!.root));
    this.turns.set(turn, view);
    this.root.append(root);
    this.scroll();
  }

  answerStart(turn: number, side: ChatSide, dropped: number): void {
    const a = this.turns.get(turn)?.sides[side];
    if (!a) return;
    a.root.classList.add('writing');
    if (dropped)
      setText(
        a.meta,
        `The oldest ${dropped === 1 ? 'exchange was' : `${dropped} exchanges were`} dropped: ` +
          "the conversation outgrew the model's positions.",
      );
  }

  token(turn: number, side: ChatSide, text: string): void {
    const a = this.turns.get(turn)?.sides[side];
    if (!a || !text) return;
    a.text.append(text); // a text node: the DOM never parses model output
    this.scroll();
  }

  end(turn: number, side: ChatSide, text: string, reason: ChatEnd, tokens: number): void {
    const a = this.turns.get(turn)?.sides[side];
    if (!a) return;
    a.root.classList.remove('writing');
    a.root.dataset.reason = reason;
    if (!a.text.textContent?.trim()) setText(a.text, text);
    const why = ENDINGS[reason];
    const note = why ? `${why} (${tokens} tokens)` : '';
    if (note) setText(a.meta, [a.meta.textContent, note].filter(Boolean).join(' '));
  }

  error(turn: number, e: ErrorInfo): void {
    const t = this.turns.get(turn);
    if (!t) return;
    for (const a of Object.values(t.sides)) a.root.classList.remove('writing');
    t.error.hidden = false;
    setText(t.error, formatError(e));
  }

  private answerView(side: ChatSide, labelled: boolean): AnswerView {
    const text = h('div', { class: 'text' });
    const meta = h('div', { class: 'meta' });
    const label = side === 'adapter' && this.adapterName ? `adapter · ${this.adapterName}` : SIDE_LABEL[side];
    const root = h('div', { class: `answer ${side}`, attrs: { 'data-side': side } }, [
      labelled ? h('div', { class: 'label', text: label }) : null,
      text,
      meta,
    ]);
    return { root, text, meta };
  }

  private scroll(): void {
    const el = document.scrollingElement ?? document.documentElement;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 120) el.scrollTop = el.scrollHeight;
  }
}

const ENDINGS: Record<ChatEnd, string | null> = {
  eos: null,
  length: 'Cut at the token limit.',
  positions: "Cut: the model's positions are full (New Conversation starts over).",
  stopped: 'Stopped.',
};
