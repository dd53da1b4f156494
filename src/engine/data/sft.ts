// Supervised fine-tuning examples as TRL 1.13's SFTTrainer makes them: token ids and, per token, whether it carries
// loss. Conversations are rendered with the chat template and tokenized without adding special tokens (the
// template writes them); the loss is on the assistant's text (assistant_only_loss), found by the template's
// {% generation %} blocks or, for the many templates without them, by rendering prefixes of the conversation (TRL
// refuses those; we do not). Prompt/completion rows carry loss on the completion (completion_only_loss). Plain text
// gets eos appended and loss everywhere. Rows are cut to max_length keeping the start; a row left with no loss
// token is dropped and counted.
import type { TextTokenizer } from '../../models/tokenizer';
import { LoraPlusError } from '../../protocol/errors';
import type { ChatExample, Message } from './chat';
import type { ChatTemplate } from './chat-render';

export interface SftExample {
  ids: number[];
  loss: Uint8Array; // 1 where the token is a target (TRL's labels != -100)
}

export interface SftOptions {
  assistantOnlyLoss: boolean; // conversations: loss on the assistant's turns only
  completionOnlyLoss: boolean; // prompt/completion: loss on the completion only
  maxLength: number;
  eosToken: string | null; // appended to plain text and completions (TRL's add_eos), when it is not already there
  specialTokens: readonly string[]; // end-of-turn markers that close an assistant span found without generation tags
}

export interface SftCounts {
  truncated: number; // rows longer than max_length, cut
  dropped: number; // rows whose loss tokens were all cut away
}

/** One row → ids and loss mask, before truncation. `template` is needed for conversational rows. */
export function tokenizeSft(
  ex: ChatExample,
  tok: TextTokenizer,
  template: ChatTemplate | null,
  o: SftOptions,
): SftExample {
  switch (ex.kind) {
    case 'text': {
      const { ids } = tok.encode(withEos(ex.text, o.eosToken), { addSpecialTokens: true });
      return { ids, loss: ones(ids.length) };
    }
    case 'prompt_completion_text': {
      const prompt = tok.encode(ex.prompt, { addSpecialTokens: true }).ids;
      const { ids } = tok.encode(ex.prompt + withEos(ex.completion, o.eosToken), { addSpecialTokens: true });
      return { ids, loss: o.completionOnlyLoss ? after(prompt.length, ids.length) : ones(ids.length) };
    }
    case 'prompt_completion': {
      const t = requireTemplate(template);
      const prompt = encodeRendered(tok, t.render(ex.prompt, true).text);
      const all = [...ex.prompt, ...ex.completion];
      const { ids, loss: assistant } = conversation(all, tok, t, o);
      const loss = o.completionOnlyLoss ? after(prompt.length, ids.length) : ones(ids.length);
      if (o.assistantOnlyLoss) for (let i = 0; i < loss.length; i++) loss[i] &= assistant[i];
      return { ids, loss };
    }
    case 'messages': {
      const t = requireTemplate(template);
      const r = conversation(ex.messages, tok, t, o);
      return o.assistantOnlyLoss ? r : { ids: r.ids, loss: ones(r.ids.length) };
    }
  }
}

/** Keeps the first max_length tokens; null when no loss token is left (TRL drops such rows). */
export function truncateSft(ex: SftExample, maxLength: number, counts: SftCounts): SftExample | null {
  let out = ex;
  if (ex.ids.length > maxLength) {
    counts.truncated++;
    out = { ids: ex.ids.slice(0, maxLength), loss: ex.loss.slice(0, maxLength) };
  }
  if (!out.loss.some((x) => x === 1)) {
    counts.dropped++;
    return null;
  }
  return out;
}

// ---- conversations --------------------------------------------------------------------------------------------

/** The rendered conversation's ids, and a mask of the assistant's tokens. */
function conversation(messages: Message[], tok: TextTokenizer, t: ChatTemplate, o: SftOptions): SftExample {
  const r = t.render(messages, false);
  const spans = t.hasGenerationTags ? r.generation : assistantSpans(messages, r.text, t, o.specialTokens);
  return spanMask(tok, r.text, spans);
}

/**
 * Where each assistant turn's text is in the rendered conversation, for a template without generation tags: after
 * the rendering of the conversation up to that turn with the generation prompt (the turn's header), the turn's
 * content, and the special token that closes it right after (its end-of-turn or eos), as generation blocks mark it.
 */
export function assistantSpans(
  messages: Message[],
  text: string,
  t: ChatTemplate,
  special: readonly string[],
): [number, number][] {
  const spans: [number, number][] = [];
  let from = 0;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    const header = t.render(messages.slice(0, i), true).text;
    if (text.startsWith(header)) from = Math.max(from, header.length);
    // The content as written, else as a template that trims it writes it.
    let content = m.content;
    let start = content ? text.indexOf(content, from) : from;
    if (start < 0 && (content = m.content.trim())) start = text.indexOf(content, from);
    if (start < 0) return; // the template dropped the text (e.g. a reasoning part): nothing to mark
    let end = start + content.length;
    const closing = special.filter((s) => s && text.startsWith(s, end)).sort((a, b) => b.length - a.length)[0];
    if (closing) end += closing.length;
    spans.push([start, end]);
    from = end;
  });
  return spans;
}

/**
 * Token ids of `text` and a mask of the tokens that overlap `spans`, as transformers' assistant mask counts them
 * (char_to_token of each span's first and last character). The text is tokenized in pieces cut at the span
 * edges; when the pieces tokenize as the whole does (the usual case: the edges fall between pre-tokens), the
 * mask is exact. Otherwise the edges are placed by decoding prefixes of the whole text's ids.
 */
export function spanMask(tok: TextTokenizer, text: string, spans: [number, number][]): SftExample {
  const ids = encodeRendered(tok, text);
  const edges = [...new Set([0, ...spans.flat(), text.length])].sort((a, b) => a - b);
  const pieceIds: number[] = [];
  const pieceStart: number[] = []; // token index where each piece starts
  for (let i = 0; i + 1 < edges.length; i++) {
    pieceStart.push(pieceIds.length);
    pieceIds.push(...encodeRendered(tok, text.slice(edges[i], edges[i + 1])));
  }
  const tokenAt = (char: number): number =>
    sameIds(pieceIds, ids) ? (pieceStart[edges.indexOf(char)] ?? ids.length) : tokenByDecoding(tok, ids, char);
  const loss = new Uint8Array(ids.length);
  for (const [start, end] of spans) {
    if (end <= start) continue;
    const [a, b] = [tokenAt(start), sameIds(pieceIds, ids) ? tokenAt(end) : tokenByDecoding(tok, ids, end - 1) + 1];
    for (let k = a; k < Math.min(b, ids.length); k++) loss[k] = 1;
  }
  return { ids, loss };
}

/** The index of the token holding character `char`: the first k with decode(ids[0..k]) longer than char. */
function tokenByDecoding(tok: TextTokenizer, ids: number[], char: number): number {
  let [lo, hi] = [0, ids.length];
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (tok.decode(ids.slice(0, mid + 1)).length > char) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

function encodeRendered(tok: TextTokenizer, text: string): number[] {
  return text ? tok.encode(text, { addSpecialTokens: false }).ids : [];
}

function sameIds(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function requireTemplate(t: ChatTemplate | null): ChatTemplate {
  if (t) return t;
  throw new LoraPlusError({
    code: 'data/no-chat-template',
    message: 'the data is conversational but the model has no chat template',
    yamlPath: 'data.chat_template',
    hint: 'Set data.chat_template to a .jinja file or a built-in template: chatml, llama3, gemma, phi3, plain.',
  });
}

function withEos(text: string, eos: string | null): string {
  return eos && !text.endsWith(eos) ? text + eos : text;
}

function ones(n: number): Uint8Array {
  return new Uint8Array(n).fill(1);
}

function after(n: number, total: number): Uint8Array {
  const m = new Uint8Array(total);
  m.fill(1, Math.min(n, total));
  return m;
}
