// Task sft's chat template, for the config checks (sft.ts) and the editor's hover: which template a run uses
// (data.chat_template, else the model's own), the first row rendered with it as training renders every row, and
// what to say when that fails: the template's line for a file that does not parse, the names it reads that the
// rows lack. No TF.js: the model's tokenizer files are read, never its weights.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { addKeyFix } from '../../config/problem';
import type { CheckInput, Fix, FixValue, ProblemInit } from '../../config/problem';
import type { TrainConfig } from '../../config/schema';
import { chatTemplateSource, loadChatTemplate, templateTokens } from '../../models/chat-template';
import { LoraPlusError } from '../../protocol/errors';
import { toChatExample, type ChatExample, type ChatFormat, type Message } from '../data/chat';
import { BUILT_IN_TEMPLATES, chatTemplate, type ChatTemplate } from '../data/chat-render';
import { assistantSpans } from '../data/sft';
import type { SampleRow } from './inspect';

type Report = (p: ProblemInit) => void;
type Written = CheckInput['written'];

/** What the formats are called in messages. */
export const FORMAT_WORDS: Record<ChatFormat, string> = {
  messages: 'messages (conversations)',
  prompt_completion: 'prompt/completion',
  alpaca: 'alpaca (instruction/output)',
  sharegpt: 'sharegpt (conversations)',
  text: 'plain text',
};

/** The formats whose loss is the assistant's turns by default (sft-data.ts: assistant_only_loss null). */
export const CONVERSATIONS: readonly ChatFormat[] = ['messages', 'sharegpt', 'alpaca'];

// ---- The chat template ----

const tokenCache = new Map<string, { stamp: string; value: ReturnType<typeof templateTokens> }>();

/**
 * The model's special tokens (models/chat-template.ts templateTokens), read again only when tokenizer.json or
 * tokenizer_config.json changes: a real tokenizer.json is megabytes, and the editor checks on every pause in typing.
 */
export function modelTokens(dir: string): ReturnType<typeof templateTokens> {
  const stamp = ['tokenizer.json', 'tokenizer_config.json']
    .map((f) => {
      try {
        const st = fs.statSync(path.join(dir, f));
        return `${st.size}:${st.mtimeMs}`;
      } catch {
        return '-';
      }
    })
    .join('|');
  const hit = tokenCache.get(dir);
  if (hit?.stamp === stamp) return hit.value;
  const value = templateTokens(dir);
  tokenCache.set(dir, { stamp, value });
  return value;
}

/** The built-in a model without a template gets: chatml when its tokenizer has ChatML's markers, else plain. */
export function fallbackTemplate(modelDir: string): 'chatml' | 'plain' {
  const { special } = modelTokens(modelDir);
  return special.includes('<|im_start|>') && special.includes('<|im_end|>') ? 'chatml' : 'plain';
}

/** The special tokens each built-in template writes: the tokenizer should know them as single tokens. */
const BUILT_IN_MARKERS: Record<string, string[]> = {
  chatml: ['<|im_start|>', '<|im_end|>'],
  llama3: ['<|start_header_id|>', '<|end_header_id|>', '<|eot_id|>'],
  gemma: ['<start_of_turn>', '<end_of_turn>'],
  phi3: ['<|user|>', '<|assistant|>', '<|end|>'],
  plain: [],
};

/** A template with its Jinja text, or the error that loading it gave (null: there is none to load). */
export type LoadedTemplate =
  { ok: true; template: ChatTemplate; text: string } | { ok: false; error: LoraPlusError | null };

/** The template a run would use (data.chat_template, else the model's own) and its Jinja text, or why there is none. */
export function loadTemplate(modelDir: string, spec: string | null, configDir: string): LoadedTemplate {
  try {
    const own = spec ? null : loadChatTemplate(modelDir);
    if (!spec && own === null) return { ok: false, error: null };
    const { tokens } = modelTokens(modelDir);
    const model = { template: own, source: chatTemplateSource(modelDir) };
    const template = chatTemplate(spec, model, tokens, configDir)!;
    const text = !spec
      ? own!
      : spec in BUILT_IN_TEMPLATES
        ? BUILT_IN_TEMPLATES[spec]
        : fs.readFileSync(path.resolve(configDir, spec), 'utf8');
    return { ok: true, template, text };
  } catch (err) {
    if (err instanceof LoraPlusError) return { ok: false, error: err };
    throw err;
  }
}

/** A sampled row as training reads it, or null when it is not of the format (rowFormat reports those). */
export function rowExample(row: SampleRow, format: ChatFormat, file: string): ChatExample | null {
  try {
    return toChatExample(row.row, format, file);
  } catch (err) {
    if (err instanceof LoraPlusError) return null;
    throw err;
  }
}

const messagesOf = (ex: ChatExample): Message[] =>
  ex.kind === 'messages' ? ex.messages : ex.kind === 'prompt_completion' ? [...ex.prompt, ...ex.completion] : [];

/**
 * A row rendered as training renders it (sft.ts tokenizeSft): the conversation, the prompt with the generation
 * prompt, and the prefixes that find the answers when the template has no {% generation %} tags. Throws the
 * template's LoraPlusError. `answers`: the assistant's character ranges (null unless assistantOnly); `completion`:
 * where a prompt/completion row's completion starts (null for conversations).
 */
export function renderRow(
  t: ChatTemplate,
  ex: ChatExample,
  assistantOnly: boolean,
  special: readonly string[],
): { text: string; answers: [number, number][] | null; completion: number | null } {
  const messages = messagesOf(ex);
  const r = t.render(messages, false);
  const prompt = ex.kind === 'prompt_completion' ? t.render(ex.prompt, true).text : null;
  const completion = prompt !== null && r.text.startsWith(prompt) ? prompt.length : null;
  if (!assistantOnly) return { text: r.text, answers: null, completion };
  const answers = t.hasGenerationTags ? r.generation : assistantSpans(messages, r.text, t, special);
  return { text: r.text, answers, completion };
}

export function checkTemplate(
  config: TrainConfig,
  configDir: string,
  format: ChatFormat,
  sample: SampleRow[],
  written: Written,
  report: Report,
): void {
  const d = config.data;
  const isWritten = written(['data', 'chat_template']);
  const at: ProblemInit['at'] = isWritten && d.chat_template !== null ? 'value' : 'parent';
  const loaded = loadTemplate(config.model, d.chat_template, configDir);
  if (!loaded.ok && !loaded.error) {
    const fallback = fallbackTemplate(config.model);
    report({
      severity: 'error',
      code: 'config/no-chat-template',
      message:
        `the rows are ${FORMAT_WORDS[format]}, but ${path.basename(config.model)} has no chat template to ` +
        'render them (no chat_template.jinja, none in tokenizer_config.json)',
      path: ['data', 'chat_template'],
      at: isWritten ? 'value' : 'parent',
      hint:
        `Set data.chat_template: ${fallback}/${fallback === 'plain' ? 'chatml' : 'plain'}/llama3/gemma/phi3, or a ` +
        '.jinja file. plain suits a base model (### Instruction / ### Response, the answer ending with eos); ' +
        "chatml a tokenizer with ChatML's <|im_start|>/<|im_end|> tokens.",
      fix: setOrAdd(written, ['data', 'chat_template'], fallback, `Set chat_template to ${fallback}`),
    });
    return;
  }
  if (!loaded.ok) {
    const e = loaded.error!.info;
    const tokenizer = e.code !== 'data/chat-template'; // the model's tokenizer_config.json is damaged
    const line = e.line ?? (e.file?.endsWith('.jinja') ? parseErrorLine(e.file, e.message) : undefined);
    report({
      severity: 'error',
      code: tokenizer ? e.code : 'config/chat-template',
      message: `${e.file ? `${e.file}${line ? `:${line}` : ''}: ` : ''}${e.message}`,
      path: tokenizer ? ['model'] : ['data', 'chat_template'],
      at: tokenizer ? 'value' : at,
      ...(e.hint ? { hint: e.hint } : {}),
    });
    return;
  }
  const { template, text } = loaded;
  const spec = d.chat_template;
  const { special } = modelTokens(config.model);
  const missing = spec && spec in BUILT_IN_MARKERS ? BUILT_IN_MARKERS[spec].filter((t) => !special.includes(t)) : [];
  if (missing.length) {
    report({
      severity: 'info',
      code: 'config/chat-template-tokens',
      message:
        `the built-in template '${spec}' writes ${missing.join(' ')}, which ${path.basename(config.model)}'s ` +
        'tokenizer does not have as tokens: they are split into pieces the model learns as text',
      path: ['data', 'chat_template'],
      at: 'value',
      hint: `${fallbackTemplate(config.model)} suits this tokenizer.`,
    });
  }
  const row = sample.find((r) => rowExample(r, format, d.train));
  if (!row) return;
  const ex = rowExample(row, format, d.train)!;
  const where = `${d.train}${row.line ? `:${row.line}` : ''}`;
  const assistantOnly = d.assistant_only_loss ?? CONVERSATIONS.includes(format);
  let spans: [number, number][] | null;
  try {
    spans = renderRow(template, ex, assistantOnly, special).answers;
  } catch (err) {
    if (!(err instanceof LoraPlusError)) throw err;
    const lacking = lackingNames(text, messagesOf(ex));
    const others = `use another template (${Object.keys(BUILT_IN_TEMPLATES).join(', ')})`;
    report({
      severity: 'error',
      code: 'data/chat-template-row',
      message:
        `${where}: the chat template (${sourceName(template)}) fails on this row: ` +
        err.info.message.replace(/^the chat template failed to render: /, ''),
      path: ['data', 'chat_template'],
      at,
      hint: lacking.length
        ? `The template reads ${lacking.join(', ')}, which the rows do not have: ` +
          `add ${lacking.length > 1 ? 'them' : 'it'} to the rows, or ${others}.`
        : `Fix the template, or ${others}.`,
    });
    return;
  }
  // A template that leaves an answer out (or rewrites it) gives it no loss: found without {% generation %} tags
  // by rendering prefixes (sft.ts), the answers must appear verbatim.
  const answers = messagesOf(ex).filter((m) => m.role === 'assistant' && m.content.trim());
  if (!spans || spans.length || !answers.length) return;
  report({
    severity: 'warning',
    code: 'data/chat-template-drops-answers',
    message:
      `${where}: the chat template (${sourceName(template)}) does not write this row's assistant text as it is: ` +
      'with assistant_only_loss none of it carries loss',
    path: ['data', 'chat_template'],
    at,
    hint: 'Use a template that writes the answers verbatim, or mark them with {% generation %} tags.',
  });
}

/**
 * The line of a template file where parsing fails, when chat-render.ts could not tell (its errors that read like
 * "the text ran out"): the first line whose prefix of the file fails with the very error the whole file gives.
 */
function parseErrorLine(file: string, message: string): number | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split('\n');
  for (let n = 1; n <= lines.length; n++) {
    try {
      new Template(lines.slice(0, n).join('\n'));
    } catch (err) {
      if (message.endsWith((err as Error).message)) return n;
    }
  }
  return undefined;
}

/** `built-in 'chatml'`, or the template file's name. */
export function sourceName(t: ChatTemplate): string {
  return t.source.startsWith('built-in') ? t.source : path.basename(t.source);
}

/** Context names transformers passes when asked to (apply_chat_template's kwargs): absent from plain rows. */
const OPTIONAL_NAMES = ['tools', 'documents', 'custom_tools', 'builtin_tools', 'date_string', 'tools_in_user_message'];

/**
 * What a template reads that the rows lack, to say why it failed: the keys it takes from each message (`m['name']`,
 * `message.tool_calls`) that no message of the row has, and the optional context names it uses (`tools`).
 */
export function lackingNames(template: string, messages: readonly Message[]): string[] {
  const out = new Set<string>();
  const have = new Set(messages.flatMap((m) => Object.keys(m)));
  const vars = [...template.matchAll(/\{%-?\s*for\s+(\w+)\s+in\s+[\w.[\]:'"]*messages/g)].map((m) => m[1]);
  for (const v of new Set(vars)) {
    const keys = new RegExp(`\\b${v}\\s*(?:\\[\\s*['"](\\w+)['"]\\s*\\]|\\.(\\w+)\\b(?!\\s*\\())`, 'g');
    for (const m of template.matchAll(keys)) {
      const key = m[1] ?? m[2];
      if (!have.has(key)) out.add(`message['${key}']`);
    }
  }
  for (const name of OPTIONAL_NAMES) if (new RegExp(`\\b${name}\\b`).test(template)) out.add(`\`${name}\``);
  return [...out];
}

function setOrAdd(written: Written, p: string[], value: FixValue, title: string): Fix {
  return written(p) ? { kind: 'setValue', title, value } : addKeyFix(title, p, value);
}
