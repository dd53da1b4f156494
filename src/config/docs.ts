// What the editor shows while a config is typed: hover docs for a key, the keys and values to complete at the cursor.
// Pure functions of the schema and the buffer's text, so they run anywhere (the extension host, a language server,
// tests) and need no model, no files and no `vscode`. The position logic reads lines and indentation rather than a
// YAML parse: a buffer being typed is rarely valid YAML.
import { describeLimit, describeType, specAt } from './keys';
import { yamlValue } from './problem';
import type { FixValue, Segment } from './problem';
import type { Kind, Spec } from './schema';

export interface KeyDocs {
  path: string; // dotted, e.g. `training.loraplus_lr_ratio`
  key: string;
  kind: Kind;
  type: string; // in words: `a number > 0`, `one of constant, linear, cosine`
  required: boolean;
  default?: FixValue; // absent for required keys, markers and sections
  defaultText?: string; // the default as YAML: `16`, `null`
  values?: string[]; // what a value can be, when that is a short list (enums, booleans, all-linear)
  description: string;
  docs?: string; // the longer Markdown explanation (LoRA+ background, usual values)
  aliases?: readonly string[]; // Hugging Face / PEFT names that mean this key
  markdown: string; // all of it, for a hover
}

/**
 * Docs for the key at `path` (`['training', 'loraplus_lr_ratio']`); list indices are ignored. Undefined when unknown.
 */
export function docsFor(path: readonly Segment[]): KeyDocs | undefined {
  const segments = path.filter((s): s is string => typeof s === 'string');
  const spec = specAt(segments);
  if (!spec || segments.length === 0) return undefined;
  const key = segments[segments.length - 1];
  const required = spec.kind !== 'object' && spec.kind !== 'marker' && spec.required === true;
  const dflt = defaultOf(spec);
  const values = valuesOf(spec);
  const lines = [`**${segments.join('.')}**: ${describeType(spec)}`, '', spec.description];
  if (spec.docs) lines.push('', spec.docs);
  // The engine's limits, with what breaks past them (the JSON Schema carries the numbers only).
  if ((spec.kind === 'number' || spec.kind === 'integer') && spec.limit)
    lines.push('', `Limit:${describeLimit(spec)}. ${spec.limit.why}`);
  if (spec.kind === 'string' && spec.pattern)
    lines.push('', `Must be ${spec.pattern.what}${spec.maxLength ? `, at most ${spec.maxLength} characters` : ''}.`);
  if (required) lines.push('', 'Required.');
  else if (dflt !== undefined) lines.push('', `Default: \`${yamlValue(dflt)}\``);
  if (spec.aliases?.length)
    lines.push('', `Also known as: ${spec.aliases.map((a) => `\`${a}\``).join(', ')} (Hugging Face / PEFT names).`);
  return {
    path: segments.join('.'),
    key,
    kind: spec.kind,
    type: describeType(spec),
    required,
    ...(dflt !== undefined ? { default: dflt, defaultText: yamlValue(dflt) } : {}),
    ...(values ? { values } : {}),
    description: spec.description,
    ...(spec.docs ? { docs: spec.docs } : {}),
    ...(spec.aliases ? { aliases: spec.aliases } : {}),
    markdown: lines.join('\n'),
  };
}

export interface Completion {
  label: string; // the key or value
  kind: 'key' | 'section' | 'value';
  // `learning_rate: 0.0002`; a section brings its required keys (`data:\n  train: path/to/train.jsonl`)
  insertText: string;
  detail: string; // type and default, one line
  documentation: string; // Markdown
  preselect?: boolean; // the default among values
}

/** The keys that can be added to the mapping at `parent` (`[]` for the top level), less those already `present`. */
export function keyCompletions(parent: readonly string[], present: readonly string[] = []): Completion[] {
  const spec = specAt(parent);
  if (spec?.kind !== 'object') return [];
  return Object.entries(spec.keys)
    .filter(([key]) => !present.includes(key))
    .map(([key, s]): Completion => {
      const d = docsFor([...parent, key])!;
      const detail = d.required
        ? `${d.type} · required`
        : d.defaultText !== undefined
          ? `${d.type} · default ${d.defaultText}`
          : d.type;
      return {
        label: key,
        kind: s.kind === 'object' ? 'section' : 'key',
        insertText: keyText(key, s, 2),
        detail,
        documentation: d.markdown,
      };
    });
}

/** The values to offer for the key at `path`: enum values, true/false, a list's special words; the default first. */
export function valueCompletions(path: readonly Segment[]): Completion[] {
  const d = docsFor(path);
  if (!d?.values) return [];
  const ordered =
    d.defaultText !== undefined && d.values.includes(d.defaultText)
      ? [d.defaultText, ...d.values.filter((v) => v !== d.defaultText)]
      : d.values;
  const about = VALUE_DOCS[d.path] ?? {};
  return ordered.map((v) => ({
    label: v,
    kind: 'value',
    insertText: v,
    detail: [v === d.defaultText ? `${d.key} · default` : d.key, about[v]].filter(Boolean).join(' · '),
    documentation: about[v] ? `\`${v}\`: ${about[v]}\n\n---\n\n${d.markdown}` : d.markdown,
    ...(v === d.defaultText ? { preselect: true } : {}),
  }));
}

/** What a value looks like or does, where the key's own docs do not say it in one line per value. */
const VALUE_DOCS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  task: {
    'causal-lm': 'next-token prediction on text',
    'sequence-classification': 'a label head on text (pairs)',
    sft: 'instruction tuning: loss on the answers of chat rows',
  },
  'data.format': {
    auto: "detected from the first row's fields",
    messages: '{"messages": [{"role": "user", "content": "…"}, {"role": "assistant", "content": "…"}]}',
    prompt_completion: '{"prompt": "…", "completion": "…"} (strings, or lists of messages)',
    alpaca: '{"instruction": "…", "input": "…", "output": "…"}',
    sharegpt: '{"conversations": [{"from": "human", "value": "…"}, {"from": "gpt", "value": "…"}]}',
    text: '{"text": "…"} (or data.text_field): the whole text carries loss',
  },
  'data.chat_template': {
    chatml: '<|im_start|>user\\n…<|im_end|> (Qwen, SmolLM)',
    llama3: '<|start_header_id|>user<|end_header_id|>\\n\\n…<|eot_id|>',
    gemma: '<start_of_turn>user\\n…<end_of_turn> (the assistant is `model`)',
    phi3: '<|user|>\\n…<|end|>',
    plain: '### Instruction: / ### Response:, the answer ending with eos (base models without chat tokens)',
    null: "the model's own (chat_template.jinja or tokenizer_config.json)",
  },
};

/** Where the cursor is, as far as completion and hover need to know. */
export interface CursorContext {
  path: string[]; // the mapping the cursor's line belongs to (`['training']`)
  key?: string; // the key written on the cursor's line, if any (`loraplus_lr_ratio`)
  position: 'key' | 'value' | 'item'; // typing a key, a value after `key:`, or an item of the block list `key`
  present: string[]; // keys already in that mapping (not offered again)
}

/** The cursor's place in a config buffer; `offset` counts UTF-16 units from 0. */
export function cursorAt(text: string, offset: number): CursorContext {
  const lines = text.slice(0, offset).split('\n');
  const row = lines.length - 1;
  const before = lines[row];
  const all = text.split('\n');
  const whole = all[row] ?? before;
  const indent = indentOf(before);
  const item = /^\s*-(\s|$)/.test(before); // a block-list item: its key is on a line above
  const keyHere = /^\s*([\w.-]+)\s*:(\s|$)/.exec(whole)?.[1];
  const afterColon = /^\s*[\w.-]+\s*:\s/.test(before) || /^\s*[\w.-]+\s*:$/.test(before);
  const path = parentsOf(all, row, indent, item);
  if (item) {
    const listKey = path.pop();
    return { path, ...(listKey ? { key: listKey } : {}), position: 'item', present: [] };
  }
  return {
    path,
    ...(keyHere ? { key: keyHere } : {}),
    position: afterColon ? 'value' : 'key',
    present: siblingsOf(all, row, indent),
  };
}

/**
 * Completions at the cursor: keys of the enclosing mapping, or values of the key before the colon. List items
 * (target_modules, modules_to_save) depend on the model: the editor adds those from the engine's inspectModel.
 */
export function completionsAt(text: string, offset: number): Completion[] {
  const c = cursorAt(text, offset);
  if (c.position === 'key') return keyCompletions(c.path, c.present);
  return c.position === 'value' && c.key ? valueCompletions([...c.path, c.key]) : [];
}

/** Hover docs for the key on the cursor's line. */
export function docsAt(text: string, offset: number): KeyDocs | undefined {
  const c = cursorAt(text, offset);
  return c.key ? docsFor([...c.path, c.key]) : undefined;
}

// ---- Helpers ----

function defaultOf(spec: Spec): FixValue | undefined {
  if (spec.kind === 'object' || spec.kind === 'marker' || spec.required) return undefined;
  return spec.default ?? null;
}

function valuesOf(spec: Spec): string[] | undefined {
  if (spec.kind === 'enum') return [...spec.values, ...(spec.nullable ? ['null'] : [])];
  if (spec.kind === 'boolean') return ['true', 'false'];
  if (spec.kind === 'string-list' && spec.also?.length) return [...spec.also, ...(spec.nullable ? ['null'] : [])];
  if (spec.kind === 'marker') return [String(spec.value)];
  // A path that also takes names of its own (data.chat_template: the built-in templates).
  if (spec.kind === 'path' && spec.names?.length) return [...spec.names, ...(spec.nullable ? ['null'] : [])];
  return undefined;
}

/** `key: default`; a section with its required keys under it, indented by `unit` per level. */
function keyText(key: string, spec: Spec, unit: number, depth = 0): string {
  const pad = ' '.repeat(depth * unit);
  if (spec.kind === 'marker') return `${pad}${key}: ${spec.value}`;
  if (spec.kind !== 'object') {
    const v = spec.required ? (spec.placeholder ?? '') : yamlValue(spec.default ?? null);
    return `${pad}${key}: ${v}`.trimEnd();
  }
  const required = Object.entries(spec.keys).filter(
    ([, s]) => s.kind !== 'object' && s.kind !== 'marker' && s.required,
  );
  return [`${pad}${key}:`, ...required.map(([k, s]) => keyText(k, s, unit, depth + 1))].join('\n');
}

function indentOf(line: string): number {
  return line.length - line.trimStart().length;
}

const isBlank = (line: string): boolean => /^\s*(#.*)?$/.test(line);

/** The section keys above `row` that enclose a line indented by `indent` (a list item may sit at its key's indent). */
function parentsOf(lines: string[], row: number, indent: number, item: boolean): string[] {
  const path: string[] = [];
  let limit = indent;
  let sameIndentOk = item;
  for (let i = row - 1; i >= 0 && limit > 0; i--) {
    const line = lines[i];
    if (isBlank(line)) continue;
    const ind = indentOf(line);
    if (ind > limit || (ind === limit && !sameIndentOk)) continue;
    const section = /^\s*([\w.-]+)\s*:\s*(#.*)?$/.exec(line);
    if (section) {
      path.unshift(section[1]);
      limit = ind;
      sameIndentOk = false;
    } else if (ind < limit) break; // `key: value` cannot hold keys: the buffer is not a config here
  }
  if (item && limit === 0 && path.length === 0) {
    // `target_modules:` at the top level with items at column 0
    for (let i = row - 1; i >= 0; i--) {
      if (isBlank(lines[i]) || /^\s*-/.test(lines[i])) continue;
      const m = /^([\w.-]+)\s*:\s*(#.*)?$/.exec(lines[i]);
      if (m) path.push(m[1]);
      break;
    }
  }
  return path;
}

/** Keys at exactly `indent` in the block around `row` (stopping where a line is indented less). */
function siblingsOf(lines: string[], row: number, indent: number): string[] {
  const keys: string[] = [];
  const scan = (from: number, step: number): void => {
    for (let i = from; i >= 0 && i < lines.length; i += step) {
      const line = lines[i];
      if (isBlank(line)) continue;
      const ind = indentOf(line);
      if (ind < indent) return;
      const m = ind === indent ? /^\s*([\w.-]+)\s*:/.exec(line) : null;
      if (m) keys.push(m[1]);
    }
  };
  scan(row - 1, -1);
  scan(row + 1, 1);
  return keys;
}
