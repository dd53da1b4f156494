// A chat's conversation and the text of an answer as it streams, without TensorFlow.js: the history rendered with
// the chat template into the prompt ids the model sees (oldest exchanges dropped when it outgrows the model's
// positions), what ends an answer (eos, the template's end of turn, the next turn's header), the answer's text decoded
// token by token so that multi-byte characters and word spaces come out whole, and the sampling (temperature,
// top-k, top-p) of the next token. src/engine/train/chat-session.ts runs the model around these.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TextTokenizer } from '../../models/tokenizer';
import type { SamplingOptions } from '../../protocol/chat';
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import type { Message } from './chat';
import type { ChatTemplate } from './chat-render';
import type { Rng } from './rng';

export interface Exchange {
  user: string;
  assistant: string;
}

export interface Prompt {
  text: string; // what the template rendered, generation prompt included
  ids: number[];
  dropped: number; // exchanges dropped (for good) so that it fits
}

/** The history of one side of a chat: a system message and the exchanges so far. */
export class Conversation {
  private exchanges: Exchange[] = [];

  constructor(public system: string | null = null) {}

  get turns(): readonly Exchange[] {
    return this.exchanges;
  }

  /** The messages a template renders: the system message, the exchanges, then `next` as the user's turn. */
  messages(next?: string, exchanges: readonly Exchange[] = this.exchanges): Message[] {
    const out: Message[] = this.system ? [{ role: 'system', content: this.system }] : [];
    for (const e of exchanges) out.push({ role: 'user', content: e.user }, { role: 'assistant', content: e.assistant });
    if (next !== undefined) out.push({ role: 'user', content: next });
    return out;
  }

  add(user: string, assistant: string): void {
    this.exchanges.push({ user, assistant });
  }

  reset(): void {
    this.exchanges = [];
  }

  /**
   * The prompt that asks for the answer to `user`, at most `budget` tokens: while it is longer, the oldest exchange
   * is dropped from the history. A message that does not fit on its own (with the system message) is an error, and
   * then nothing is dropped.
   */
  prompt(user: string, template: ChatTemplate, encode: (text: string) => number[], budget: number): Prompt {
    const render = (exchanges: readonly Exchange[]) => {
      const text = template.render(this.messages(user, exchanges), true).text;
      return { text, ids: encode(text) };
    };
    let p = render(this.exchanges);
    if (p.ids.length <= budget) return { ...p, dropped: 0 };
    const alone = render([]).ids.length;
    if (alone > budget) {
      throw new LoraPlusError({
        code: 'chat/too-long',
        message:
          `this message takes ${alone} tokens with the chat template` +
          `${this.system ? ' and the system message' : ''}, more than the ${budget} the model's positions ` +
          'leave for a prompt',
        hint: 'Send a shorter message (or system message), or ask for fewer --max-new-tokens.',
      });
    }
    let dropped = 0;
    while (p.ids.length > budget) {
      this.exchanges.shift();
      dropped++;
      p = render(this.exchanges);
    }
    return { ...p, dropped };
  }
}

// ---- what ends an answer ------------------------------------------------------------------------------------------

export interface Stops {
  ids: Set<number>; // eos ids and the template's end-of-turn token(s)
  texts: string[]; // plain-text markers that begin the next turn (e.g. '### Instruction:'), cut from the answer
  names: string[]; // for messages: the tokens and texts above
}

/**
 * What ends an answer: the eos ids, and what the template writes after an assistant's text: its closing special
 * token (<|im_end|>, <|eot_id|>, <end_of_turn>, eos) and the start of the next user turn (a special token, or for
 * templates without chat tokens the header text), found by rendering a short probe conversation.
 */
export function chatStops(
  template: ChatTemplate,
  tok: TextTokenizer,
  special: readonly string[],
  eosIds: readonly number[],
): Stops {
  const ids = new Set(eosIds);
  const names = eosIds.map((id) => tok.decode([id]));
  const texts: string[] = [];
  const known = [...new Set(special.filter(Boolean))].sort((a, b) => b.length - a.length);
  const single = (s: string): number | null => {
    const e = tok.encode(s, { addSpecialTokens: false }).ids;
    return e.length === 1 ? e[0] : null;
  };
  let between: string | null = null; // from the end of an answer to the next user message
  try {
    const [q, a, q2] = ['Ping', 'Pong', 'Pang'];
    const text = template.render(
      [
        { role: 'user', content: q },
        { role: 'assistant', content: a },
        { role: 'user', content: q2 },
      ],
      true,
    ).text;
    const at = text.indexOf(a, text.indexOf(q) + q.length);
    const next = at < 0 ? -1 : text.indexOf(q2, at + a.length);
    if (next >= 0) between = text.slice(at + a.length, next);
  } catch {
    // a template that refuses this probe (e.g. one that requires a system message): only eos ends answers
  }
  if (between !== null) {
    const closing = known.find((s) => between!.startsWith(s));
    const header = (closing ? between.slice(closing.length) : between).trim();
    const opening = known.find((s) => header.startsWith(s));
    for (const s of [closing, opening]) {
      const id = s ? single(s) : null;
      if (s && id !== null && !ids.has(id)) {
        ids.add(id);
        names.push(s);
      }
    }
    if (!opening && header.length >= 3 && !known.some((s) => header.includes(s))) {
      texts.push(header);
      names.push(header);
    }
  }
  return { ids, texts, names: [...new Set(names)] };
}

/** The eos ids a model folder names: config.json's and generation_config.json's eos_token_id (a number or a list). */
export function eosIdsOf(dir: string, tokenizerEos: number | null): number[] {
  const out = tokenizerEos === null ? [] : [tokenizerEos];
  for (const file of ['config.json', 'generation_config.json']) {
    const v = readJson(path.join(dir, file)).eos_token_id;
    for (const id of Array.isArray(v) ? v : [v]) if (Number.isInteger(id) && !out.includes(id)) out.push(id);
  }
  return out;
}

// ---- the answer's text --------------------------------------------------------------------------------------------

/**
 * An answer's text as its tokens come: each token's text is the growth of the decoded whole (decoding tokens one by
 * one loses SentencePiece's word spaces and splits multi-byte characters across byte-level tokens). Text is held
 * back while it ends in an incomplete character (U+FFFD) or in what may be the start of a stop text.
 */
export class AnswerText {
  private readonly ids: number[] = [];
  private shown = 0; // characters of `text` handed out
  text = '';
  stopped = false; // a stop text appeared: the text ends before it

  constructor(
    private readonly decode: (ids: number[]) => string,
    private readonly stops: readonly string[] = [],
  ) {}

  get tokens(): number {
    return this.ids.length;
  }

  /** Adds a token; returns the text that may be shown now. */
  push(id: number): string {
    this.ids.push(id);
    let text = this.decode(this.ids);
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0) [text, this.stopped] = [text.slice(0, i), true];
    }
    this.text = text;
    if (this.stopped) return this.take(text.length);
    let end = text.length;
    while (end > 0 && text[end - 1] === '\uFFFD') end--;
    end -= heldBack(text.slice(0, end), this.stops);
    return this.take(end);
  }

  /** The rest of the text, once no token follows. */
  finish(): string {
    return this.take(this.text.length);
  }

  private take(end: number): string {
    if (end <= this.shown) return '';
    const delta = this.text.slice(this.shown, end);
    this.shown = end;
    return delta;
  }
}

/** The length of the longest end of `text` that begins one of `stops`. */
function heldBack(text: string, stops: readonly string[]): number {
  let n = 0;
  for (const s of stops)
    for (let k = Math.min(s.length - 1, text.length); k > n; k--) if (text.endsWith(s.slice(0, k))) n = k;
  return n;
}

// ---- sampling -----------------------------------------------------------------------------------------------------

/** transformers' defaults: generation_config.json's do_sample, temperature, top_k and top_p; else greedy. */
export function samplingDefaults(dir: string): SamplingOptions {
  const g = readJson(path.join(dir, 'generation_config.json'));
  const num = (v: unknown, fallback: number) => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const maxNewTokens = Math.max(1, Math.floor(num(g.max_new_tokens, 256)));
  if (g.do_sample !== true) return { maxNewTokens, temperature: 0, topK: 0, topP: 1, seed: 0 };
  return { maxNewTokens, temperature: num(g.temperature, 1), topK: num(g.top_k, 50), topP: num(g.top_p, 1), seed: 0 };
}

/** The options, checked; `flag` names an option as the user wrote it (`--top-p`). */
export function checkSampling(o: SamplingOptions, flag: (key: keyof SamplingOptions) => string): SamplingOptions {
  const bad = (key: keyof SamplingOptions, want: string) =>
    new LoraPlusError({
      code: 'chat/bad-option',
      message: `${flag(key)} must be ${want}, not ${o[key]}`,
      hint: 'temperature 0 is greedy; top-k 0 and top-p 1 keep every token.',
    });
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1) throw bad('maxNewTokens', 'a whole number ≥ 1');
  if (!Number.isFinite(o.temperature) || o.temperature < 0) throw bad('temperature', 'a number ≥ 0');
  if (!Number.isInteger(o.topK) || o.topK < 0) throw bad('topK', 'a whole number ≥ 0');
  if (!(o.topP > 0 && o.topP <= 1)) throw bad('topP', 'in (0, 1]');
  if (!Number.isInteger(o.seed)) throw bad('seed', 'a whole number');
  return o;
}

/** The next token: the most likely (temperature 0), else a draw from the top-k, top-p tokens at that temperature. */
export function pickToken(logits: ArrayLike<number>, o: SamplingOptions, rng: Rng): number {
  if (o.temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
    return best;
  }
  const order = Array.from({ length: logits.length }, (_, i) => i).filter((i) => !Number.isNaN(logits[i]));
  order.sort((a, b) => logits[b] - logits[a]);
  const k = o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
  const max = logits[order[0]];
  const p = new Float64Array(k);
  let total = 0;
  for (let i = 0; i < k; i++) total += p[i] = Math.exp((logits[order[i]] - max) / o.temperature);
  let keep = k;
  if (o.topP < 1) {
    // The fewest most likely tokens whose probability reaches top_p (at least one), as transformers keeps them.
    let sum = 0;
    for (keep = 0; keep < k && sum < o.topP * total; keep++) sum += p[keep];
    total = sum;
  }
  let u = rng.next() * total;
  for (let i = 0; i < keep; i++) if ((u -= p[i]) <= 0) return order[i];
  return order[keep - 1];
}

function readJson(file: string): Record<string, unknown> {
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    return isObject(v) ? v : {};
  } catch {
    return {};
  }
}
