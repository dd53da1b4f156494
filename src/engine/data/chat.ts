// Instruction-tuning rows in the formats people keep them in, turned into one shape: a conversation (`messages`), a
// prompt with its completion (strings, or lists of messages), or plain text. The format is detected from the first
// row (or set with data.format); every row must then be of that format, or it is an error at its line.
//   messages           {"messages": [{"role": "system" | "user" | "assistant", "content": "..."}, ...]}   (TRL)
//   prompt_completion  {"prompt": "..." | [messages], "completion": "..." | [messages]}                (TRL)
//   alpaca             {"instruction", "input", "output", "system"?, "history"?: [[q, a], ...]}      (LLaMA-Factory)
//   sharegpt           {"conversations": [{"from": "human" | "gpt" | "system", "value": "..."}, ...]}
//   text               {"text": "..."} or any text column (data.text_field)
import { LoraPlusError } from '../../protocol/errors';
import { isObject } from '../../protocol/json';
import { lineOf, type Row } from './rows';

export const CHAT_FORMATS = ['messages', 'prompt_completion', 'alpaca', 'sharegpt', 'text'] as const;
export type ChatFormat = (typeof CHAT_FORMATS)[number];

export interface Message {
  role: string; // system | user | assistant (or another role a template knows, e.g. tool)
  content: string;
}

export type ChatExample =
  | { kind: 'messages'; messages: Message[] }
  | { kind: 'prompt_completion'; prompt: Message[]; completion: Message[] }
  | { kind: 'prompt_completion_text'; prompt: string; completion: string }
  | { kind: 'text'; text: string };

/** The format of a data file, from its first row. */
export function detectFormat(row: Row | undefined): ChatFormat | null {
  if (!row) return null;
  if ('messages' in row) return 'messages';
  if ('prompt' in row && 'completion' in row) return 'prompt_completion';
  if ('conversations' in row) return 'sharegpt';
  if ('instruction' in row && 'output' in row) return 'alpaca';
  if ('text' in row) return 'text';
  return null;
}

/** ShareGPT's speakers, as LLaMA-Factory and TRL's maybe_convert_to_chatml read them. */
const SHAREGPT_ROLES: Record<string, string> = {
  human: 'user',
  user: 'user',
  gpt: 'assistant',
  assistant: 'assistant',
  system: 'system',
  tool: 'tool',
  function_call: 'assistant',
  observation: 'tool',
};

/** One row as a chat example; `textField` names the text column of the text format. */
export function toChatExample(row: Row, format: ChatFormat, file: string, textField = 'text'): ChatExample {
  const bad = (what: string, hint: string) =>
    new LoraPlusError({
      code: 'data/bad-chat-row',
      message: `this ${format} row ${what}`,
      file,
      line: lineOf(row),
      yamlPath: 'data.format',
      hint,
    });
  switch (format) {
    case 'messages': {
      const messages = messageList(row.messages, 'role', 'content', (w) => bad(`has ${w}`, MESSAGES_HINT));
      return { kind: 'messages', messages };
    }
    case 'prompt_completion': {
      const { prompt, completion } = row;
      if (typeof prompt === 'string' && typeof completion === 'string')
        return { kind: 'prompt_completion_text', prompt, completion };
      const list = (v: unknown, name: string) =>
        messageList(v, 'role', 'content', (w) => bad(`has a ${name} with ${w}`, PC_HINT));
      return { kind: 'prompt_completion', prompt: list(prompt, 'prompt'), completion: list(completion, 'completion') };
    }
    case 'sharegpt': {
      const raw = messageList(row.conversations, 'from', 'value', (w) => bad(`has ${w}`, SHAREGPT_HINT));
      const messages = raw.map((m) => {
        const role = SHAREGPT_ROLES[m.role];
        if (!role) throw bad(`has a speaker '${m.role}'`, SHAREGPT_HINT);
        return { role, content: m.content };
      });
      return { kind: 'messages', messages };
    }
    case 'alpaca':
      return { kind: 'messages', messages: alpacaMessages(row, (w) => bad(w, ALPACA_HINT)) };
    case 'text': {
      const text = row[textField];
      if (typeof text !== 'string')
        throw bad(`has no text in '${textField}'`, 'Set data.text_field to the text column.');
      return { kind: 'text', text };
    }
  }
}

const MESSAGES_HINT = 'Each row needs "messages": a list of {"role": ..., "content": "..."} (OpenAI/TRL format).';
const PC_HINT = 'Each row needs "prompt" and "completion": both strings, or both lists of {"role", "content"}.';
const SHAREGPT_HINT = 'Each row needs "conversations": a list of {"from": "human" | "gpt" | "system", "value": "..."}.';
const ALPACA_HINT =
  'Each row needs "instruction" and "output" (strings); "input", "system" and "history" are optional.';

function messageList(v: unknown, roleKey: string, contentKey: string, bad: (what: string) => Error): Message[] {
  if (!Array.isArray(v) || !v.length) throw bad('no list of messages');
  return v.map((m, i) => {
    if (!isObject(m) || typeof m[roleKey] !== 'string') throw bad(`a message ${i + 1} without a string '${roleKey}'`);
    const content = m[contentKey];
    if (typeof content !== 'string') throw bad(`a message ${i + 1} whose '${contentKey}' is not a string`);
    return { role: m[roleKey], content };
  });
}

/**
 * Alpaca as LLaMA-Factory converts it: the user turn is the instruction and the input joined by a newline (the
 * input alone is skipped when empty), `history` pairs come first as earlier turns, `system` first of all.
 */
function alpacaMessages(row: Row, bad: (what: string) => Error): Message[] {
  const str = (k: string, required: boolean): string => {
    const v = row[k];
    if (v === undefined || v === null) {
      if (required) throw bad(`has no '${k}'`);
      return '';
    }
    if (typeof v !== 'string') throw bad(`has a '${k}' that is not a string`);
    return v;
  };
  const [instruction, input, output] = [str('instruction', true), str('input', false), str('output', true)];
  const messages: Message[] = [];
  const sys = str('system', false);
  if (sys) messages.push({ role: 'system', content: sys });
  const history = row.history ?? [];
  if (!Array.isArray(history)) throw bad(`has a 'history' that is not a list of [query, answer] pairs`);
  for (const turn of history) {
    if (!Array.isArray(turn) || turn.length !== 2 || !turn.every((t) => typeof t === 'string'))
      throw bad(`has a 'history' entry that is not a [query, answer] pair of strings`);
    messages.push({ role: 'user', content: turn[0] }, { role: 'assistant', content: turn[1] });
  }
  messages.push({ role: 'user', content: input ? `${instruction}\n${input}` : instruction });
  messages.push({ role: 'assistant', content: output });
  return messages;
}
