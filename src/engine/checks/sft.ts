// The checks of task sft against the data and the model folder: the rows' format (data.format, or what auto
// detects), the two loss switches against that format, the chat template (sft-template.ts: rendered once on the
// first row, as training renders every row) and packing. What a run would stop on while it builds its data set is
// found here first, at the key to change. Reads the first rows only (inspect.ts) and the tokenizer files.
import { addKeyFix, problem } from '../../config/problem';
import type { CheckInput, ConfigCheck, Fix, FixValue, Problem, ProblemInit } from '../../config/problem';
import type { TrainConfig } from '../../config/schema';
import { detectFormat, type ChatFormat } from '../data/chat';
import { chatTurns, inspectData, inspectModel, type ChatTurns, type SampleRow } from './inspect';
import { checkTemplate, CONVERSATIONS, FORMAT_WORDS } from './sft-template';

type Report = (p: ProblemInit) => void;
type Written = CheckInput['written'];

/**
 * Families whose attention cannot keep packed rows apart (data.packing), with why. Every family packs today
 * (src/models: segment ids and restarting positions); a family that cannot is listed here so a run says so up front.
 */
export const PACKING_UNSUPPORTED: Record<string, string> = {};

/** The sft checks; nothing for the other tasks (rules.ts warns about sft keys there). */
export const checkSft: ConfigCheck = ({ config, configDir, written }) => {
  if (config.task !== 'sft') return [];
  const problems: Problem[] = [];
  const report: Report = (p) => problems.push(problem(p));
  const d = config.data;
  const train = inspectData(d.train);
  if (!train.ok || !train.value.chat) return problems; // unreadable or empty: checkData says so
  const format = rowFormat(config, 'train', train.value.chat.sample, train.value.columns, written, report);
  const evalData = d.eval ? inspectData(d.eval) : null;
  if (evalData?.ok && evalData.value.chat)
    rowFormat(config, 'eval', evalData.value.chat.sample, evalData.value.columns, written, report);
  if (!format) return problems;
  const { sample } = train.value.chat;
  const turns = chatTurns(sample, format, d.train, d.text_field);
  checkIgnored(config, format, turns, written, report);
  checkAssistantTurns(config, format, turns, written, report);
  if (turns.conversational && turns.rows > 0) checkTemplate(config, configDir, format, sample, written, report);
  checkPacking(config, report);
  return problems;
};

// ---- The rows ----

/** The format training reads `key`'s rows as (data.format, or the first row's), or null after reporting why. */
function rowFormat(
  config: TrainConfig,
  key: 'train' | 'eval',
  sample: SampleRow[],
  columns: string[],
  written: Written,
  report: Report,
): ChatFormat | null {
  const d = config.data;
  const file = d[key]!;
  const [first] = sample;
  const where = `${file}${first.line ? `:${first.line}` : ''}`;
  const detected = detectFormat(first.row);
  const format = d.format === 'auto' ? detected : d.format;
  if (!format) {
    // auto reads a text column only when it is named `text`; another column needs format: text.
    const textColumn = written(['data', 'text_field']) && columns.includes(d.text_field);
    report({
      severity: 'error',
      code: 'data/unknown-format',
      message:
        `${where}: the first row of the ${key === 'train' ? 'training' : 'evaluation'} data has none of the ` +
        `fields of a chat format (its fields: ${Object.keys(first.row).join(', ') || 'none'})`,
      path: ['data', key === 'train' ? 'format' : 'eval'],
      at: key === 'eval' || written(['data', 'format']) ? 'value' : 'parent',
      hint:
        'sft reads rows with "messages", "prompt" + "completion", "conversations" or "instruction" + "output"; ' +
        'for plain text in another column set data.format: text and data.text_field.',
      ...(textColumn && key === 'train'
        ? { fix: setOrAdd(written, ['data', 'format'], 'text', 'Set format: text') }
        : {}),
    });
    return null;
  }
  if (format === 'text') return format; // a missing text column is checkData's (config/missing-column)
  const turns = chatTurns(sample, format, file, d.text_field);
  if (turns.bad?.at === first && detected !== format) {
    const fields = Object.keys(first.row).join(', ') || 'none';
    report({
      severity: 'error',
      code: 'data/chat-format-mismatch',
      message:
        `${where}: data.format is ${format}, but the first row is not (its fields: ${fields})` +
        (detected ? `: it is ${FORMAT_WORDS[detected]}` : ''),
      path: ['data', key === 'train' ? 'format' : 'eval'],
      at: 'value',
      hint: turns.bad.error.info.hint ?? 'Set data.format to the format of the rows, or auto.',
      ...(detected && key === 'train'
        ? { fix: { kind: 'setValue', title: `Set format to ${detected}`, value: detected } as Fix }
        : {}),
    });
    return null;
  }
  if (turns.bad) {
    const { at, error } = turns.bad;
    report({
      severity: 'error',
      code: 'data/bad-chat-row',
      message: `${file}${at.line ? `:${at.line}` : ''}: ${error.info.message} (the first row is ${format})`,
      path: ['data', key],
      at: 'value',
      ...(error.info.hint ? { hint: error.info.hint } : {}),
    });
  }
  return key === 'train' ? format : null;
}

/** Keys the rows' format makes useless: a warning at the key, with a fix that deletes it. */
function checkIgnored(
  config: TrainConfig,
  format: ChatFormat,
  turns: ChatTurns,
  written: Written,
  report: Report,
): void {
  const d = config.data;
  const words = turns.conversational || format === 'text' ? FORMAT_WORDS[format] : 'prompt/completion string';
  const ignored = (key: string, why: string, hint: string): void =>
    report({
      severity: 'warning',
      code: 'config/ignored-for-format',
      message: `${key} is ignored for ${words} rows: ${why}`,
      path: ['data', key],
      at: 'key',
      hint,
      fix: { kind: 'removeKey', title: `Delete ${key}` },
    });
  if (format !== 'text' && written(['data', 'text_field']))
    ignored('text_field', 'they name their own fields', 'It is read only with data.format: text.');
  if (format !== 'prompt_completion' && d.completion_only_loss !== null)
    ignored(
      'completion_only_loss',
      'it picks the completion of prompt/completion rows',
      turns.conversational
        ? "assistant_only_loss picks a conversation's loss tokens (the assistant's turns)."
        : 'Plain text is trained on in full.',
    );
  if (!turns.conversational && d.chat_template !== null)
    ignored('chat_template', 'only conversations are rendered with a chat template', 'Delete it, or reshape the rows.');
  if (d.assistant_only_loss === true && !turns.conversational) {
    // TRL raises a ValueError here; ignoring it would train on tokens the config asks to leave out.
    report({
      severity: 'error',
      code: 'config/assistant-only-loss-not-conversational',
      message:
        'assistant_only_loss needs conversations, but ' +
        (format === 'text' ? 'the rows are plain text' : "the rows' prompt and completion are strings, not messages") +
        ": there is no assistant turn to train on (TRL's SFTTrainer refuses this too)",
      path: ['data', 'assistant_only_loss'],
      at: 'value',
      hint:
        format === 'text'
          ? 'Delete it to train on the whole text, or write the rows as messages.'
          : 'completion_only_loss (on by default) already trains on the completion only: delete assistant_only_loss.',
      fix: { kind: 'removeKey', title: 'Delete assistant_only_loss' },
    });
  }
}

/** assistant_only_loss (on by default for conversations) on rows without an assistant turn: nothing to learn. */
function checkAssistantTurns(
  config: TrainConfig,
  format: ChatFormat,
  turns: ChatTurns,
  written: Written,
  report: Report,
): void {
  const d = config.data;
  if (
    !turns.conversational ||
    !(d.assistant_only_loss ?? CONVERSATIONS.includes(format)) ||
    !turns.rows ||
    !turns.without
  )
    return;
  const isWritten = written(['data', 'assistant_only_loss']);
  const first = turns.rows === 1 ? 'the first row' : `the first ${turns.rows} rows`;
  if (turns.withAssistant === 0) {
    report({
      severity: 'error',
      code: 'data/no-assistant-turns',
      message:
        `none of ${first} of ${d.train} has an assistant turn (roles: ${turns.roles.join(', ')}): with ` +
        `assistant_only_loss${isWritten ? '' : ' (on by default for conversations)'} no token carries loss, ` +
        'and every row would be dropped',
      path: ['data', 'assistant_only_loss'],
      at: isWritten ? 'value' : 'parent',
      hint: "Train on whole conversations (assistant_only_loss: false), or name the answers' role 'assistant'.",
      fix: setOrAdd(written, ['data', 'assistant_only_loss'], false, 'Train on whole conversations'),
    });
    return;
  }
  const at = turns.without;
  const more = turns.rows - turns.withAssistant - 1;
  report({
    severity: 'info',
    code: 'data/rows-without-assistant',
    message:
      `${d.train}${at.line ? `:${at.line}` : ''}: ` +
      (more
        ? `this row and ${more} more of ${first} have no assistant turn: they carry no loss and are dropped`
        : `this row of ${first} has no assistant turn: it carries no loss and is dropped`) +
      ' (counted at run start)',
    path: ['data', 'train'],
    at: 'value',
  });
}

// ---- Packing ----

function checkPacking(config: TrainConfig, report: Report): void {
  if (!config.data.packing) return;
  const m = inspectModel(config.model);
  const family = m.ok ? m.value.family.name : '';
  const why = PACKING_UNSUPPORTED[family];
  if (!why) return;
  report({
    severity: 'error',
    code: 'config/packing-unsupported',
    message: `the ${family} family cannot pack rows: ${why}`,
    path: ['data', 'packing'],
    at: 'value',
    hint: 'Set packing: false: rows are then padded to the longest of each batch.',
    fix: { kind: 'setValue', title: 'Set packing to false', value: false },
  });
}

function setOrAdd(written: Written, p: string[], value: FixValue, title: string): Fix {
  return written(p) ? { kind: 'setValue', title, value } : addKeyFix(title, p, value);
}
