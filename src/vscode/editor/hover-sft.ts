// Hovers of task sft's keys, without `vscode`: data.format shows the format the training file's first row has;
// data.chat_template shows where the template comes from (data.chat_template, or the model's own file) and the
// first row rendered with it, the text that carries loss marked. Read through inspect.ts's cache and the same
// functions the config checks use (engine/checks/sft-template.ts), so the hover shows what training will do.
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { inspectData } from '../../engine/checks/inspect';
import {
  fallbackTemplate,
  loadTemplate,
  modelTokens,
  renderRow,
  rowExample,
  sourceName,
} from '../../engine/checks/sft-template';
import { CHAT_FORMATS, type ChatFormat } from '../../engine/data/chat';
import { chatTemplateSource, loadChatTemplate } from '../../models/chat-template';
import type { ConfigFiles } from './ranges';

/** What the hover quotes of a rendered row at most. */
const PREVIEW_LINES = 14;
const PREVIEW_LINE_CHARS = 100;
const PREVIEW_CHARS = 900;
/** Marks around the text that carries loss in the preview. */
const [OPEN, CLOSE] = ['⟦', '⟧'];

function dataKey(text: string, key: string): unknown {
  return parseDocument(text, { prettyErrors: false }).getIn(['data', key]);
}

function writtenFormat(text: string): ChatFormat | 'auto' {
  const v = dataKey(text, 'format');
  return typeof v === 'string' && (CHAT_FORMATS as readonly string[]).includes(v) ? (v as ChatFormat) : 'auto';
}

/** The format of the training file's first row, and how many sampled rows have an assistant turn. */
export function formatInfo(text: string, train: string): string {
  const r = inspectData(train);
  if (!r.ok) return `$(error) ${r.problem.message}`;
  const chat = r.value.chat;
  const name = path.basename(train);
  if (!chat) return `**${name}** has no rows.`;
  const line = chat.sample[0].line ? ` (line ${chat.sample[0].line})` : '';
  if (!chat.format)
    return (
      `**${name}**: the first row${line} has none of the chat formats' fields ` +
      `(its fields: ${Object.keys(chat.sample[0].row).join(', ') || 'none'}).`
    );
  const out = [`**${name}**: the first row${line} is \`${chat.format}\`.`];
  const t = chat.turns;
  if (t?.conversational && t.rows)
    out.push(`${t.withAssistant} of the first ${t.rows} rows have an assistant turn (roles: ${t.roles.join(', ')}).`);
  const written = writtenFormat(text);
  if (written !== 'auto' && written !== chat.format) out.push(`data.format says \`${written}\`.`);
  return out.join(' ');
}

/** Where the template comes from, and the first row of the training file rendered with it. */
export function chatTemplateInfo(text: string, configDir: string, files: ConfigFiles): string {
  const model = files.model!;
  const raw = dataKey(text, 'chat_template');
  const spec = typeof raw === 'string' && raw !== '' ? raw : null;
  const out: string[] = [];
  let own: string | null = null;
  try {
    own = loadChatTemplate(model);
  } catch (err) {
    out.push(`$(error) ${(err as Error).message}`);
  }
  const source = path.relative(configDir, chatTemplateSource(model)) || chatTemplateSource(model);
  out.push(
    own !== null
      ? `The model's own template: \`${source}\`${spec ? ' (data.chat_template replaces it)' : ''}.`
      : `${path.basename(model)} has no chat template of its own (no chat_template.jinja, none in ` +
          `tokenizer_config.json)${spec ? '' : `: set \`chat_template: ${fallbackTemplate(model)}\``}.`,
  );
  const preview = files.train ? renderedFirstRow(text, configDir, model, spec, files.train) : '';
  return [out.join(' '), preview].filter(Boolean).join('\n\n');
}

function renderedFirstRow(text: string, configDir: string, model: string, spec: string | null, train: string): string {
  const data = inspectData(train);
  if (!data.ok || !data.value.chat) return '';
  const { sample } = data.value.chat;
  const written = writtenFormat(text);
  const format = written === 'auto' ? data.value.chat.format : written;
  if (!format || format === 'text') return '';
  const row = sample.find((r) => rowExample(r, format, train));
  const ex = row && rowExample(row, format, train);
  if (!row || !ex || ex.kind === 'text' || ex.kind === 'prompt_completion_text') return '';
  const loaded = loadTemplate(model, spec, configDir);
  if (!loaded.ok) return loaded.error ? `$(error) ${loaded.error.message}` : '';
  const where = `${path.basename(train)}${row.line ? `:${row.line}` : ''}`;
  // The loss switches as sft-data.ts reads them: null means yes (assistant_only_loss: for conversations).
  const assistantOnly = (dataKey(text, 'assistant_only_loss') ?? format !== 'prompt_completion') === true;
  const completionOnly = (dataKey(text, 'completion_only_loss') ?? true) === true;
  try {
    const r = renderRow(loaded.template, ex, assistantOnly, modelTokens(model).special);
    let spans = r.answers;
    if (completionOnly && r.completion !== null) spans = clip(spans ?? [[0, r.text.length]], r.completion);
    const marked = spans ? mark(r.text, spans) : r.text;
    const what = spans ? `; the text that carries loss is between ${OPEN} and ${CLOSE}` : ', all of it carrying loss';
    return `${where} rendered with ${sourceName(loaded.template)}${what}:\n\n\`\`\`text\n${shorten(marked)}\n\`\`\``;
  } catch (err) {
    return `$(error) ${where}: ${(err as Error).message}`;
  }
}

/** The parts of `spans` from `from` on. */
function clip(spans: [number, number][], from: number): [number, number][] {
  return spans.flatMap(([a, b]): [number, number][] => (b > from ? [[Math.max(a, from), b]] : []));
}

function mark(text: string, spans: [number, number][]): string {
  let out = '';
  let at = 0;
  for (const [a, b] of spans) {
    out += `${text.slice(at, a)}${OPEN}${text.slice(a, b)}${CLOSE}`;
    at = b;
  }
  return out + text.slice(at);
}

/** At most PREVIEW_LINES lines of PREVIEW_LINE_CHARS, PREVIEW_CHARS in all; no fence can close early. */
export function shorten(text: string): string {
  const lines = text.replace(/```/g, "'''").split('\n');
  const kept = lines
    .slice(0, PREVIEW_LINES)
    .map((l) => (l.length > PREVIEW_LINE_CHARS ? `${l.slice(0, PREVIEW_LINE_CHARS)}…` : l));
  let out = kept.join('\n');
  if (out.length > PREVIEW_CHARS) out = `${out.slice(0, PREVIEW_CHARS)}…`;
  else if (lines.length > PREVIEW_LINES) out += `\n… ${lines.length - PREVIEW_LINES} more lines`;
  return out;
}
