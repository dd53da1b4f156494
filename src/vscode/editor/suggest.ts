// Completion and hover for a config buffer, without `vscode` (so tests run it). The keys, enum values and docs come
// from src/config/docs.ts; this adds what needs the files the config names: module names of the selected model
// (engine inspectModel), the data's columns (inspectData), paths relative to the config's folder, and the model and
// data summaries on hover. Everything here is read through inspect.ts's cache, so it is cheap on every keystroke.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseDocument } from 'yaml';
import { cursorAt, docsAt, keyCompletions, valueCompletions } from '../../config/docs';
import { specAt } from '../../config/keys';
import type { Spec } from '../../config/schema';
import { parseConfigText } from '../../config/load';
import { inspectData, inspectModel } from '../../engine/checks/inspect';
import { memoryHint } from '../../engine/checks/memory';
import { resolveHubModel } from '../../engine/checks/config';
import type { ModelSummary } from '../../engine/checks/inspect';
import { SUPPORTED_EXTENSIONS } from '../../engine/data/rows';
import { configFiles, resolvePath } from './ranges';
import { orderColumns } from './new-config-plan';
import { chatTemplateInfo, formatInfo } from './hover-sft';
import { learningRatesInfo } from './hover-rates';
import { listCachedModels } from '../../engine/hub/cache';
import { FAMILIES } from '../../models/registry';

export interface Suggestion {
  label: string;
  kind: 'key' | 'section' | 'value' | 'module' | 'folder' | 'file' | 'field';
  insertText: string;
  snippet?: boolean; // insertText is snippet syntax (`${1:default}`)
  detail: string;
  documentation?: string; // Markdown
  preselect?: boolean;
  sortText?: string;
  start: number; // the text [start, end) the suggestion replaces (offsets)
  end: number;
  retrigger?: boolean; // a folder: suggest again inside it
}

const MODULE_LISTS = ['target_modules', 'modules_to_save'];
const FIELD_KEYS = ['text_field', 'label_field', 'text_pair_field'];

/** What a trigger character opens the list for: `/` paths, `[` and `,` module names, `:` and space values. */
const TRIGGERED: Record<string, readonly Suggestion['kind'][]> = {
  '/': ['folder', 'file'],
  '[': ['module'],
  ',': ['module'],
  ':': ['value', 'field', 'folder', 'file'],
  ' ': ['value', 'field', 'folder', 'file', 'module'],
};

/** What to suggest at `offset`; `trigger` is the character that opened the list, if one did. */
export function suggestionsAt(text: string, offset: number, configDir: string, trigger?: string): Suggestion[] {
  const all = suggestAll(text, offset, configDir, trigger);
  const kinds = trigger ? TRIGGERED[trigger] : undefined;
  return kinds ? all.filter((s) => kinds.includes(s.kind)) : all;
}

function suggestAll(text: string, offset: number, configDir: string, trigger?: string): Suggestion[] {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const nl = text.indexOf('\n', offset);
  const before = text.slice(lineStart, offset);
  const after = text.slice(offset, nl < 0 ? text.length : nl);
  if (/(^|\s)#/.test(before)) return []; // in a comment
  const c = cursorAt(text, offset);
  const wordAfter = /^[\w.-]*/.exec(after)![0].length;

  if (c.position === 'key') {
    const word = /[\w.-]*$/.exec(before)![0];
    if (trigger === ' ' || trigger === ':' || before.slice(0, before.length - word.length).trim() !== '') return [];
    const keyOnly = /^[\w.-]*\s*:/.test(after); // `lr|: 1`: the colon and value are there already
    return keyCompletions(c.path, c.present).map((k) => ({
      label: k.label,
      kind: k.kind,
      insertText: keyOnly ? k.label : snippetOf(k.insertText),
      snippet: !keyOnly,
      detail: k.detail,
      documentation: k.documentation,
      start: offset - word.length,
      end: offset + wordAfter,
    }));
  }

  if (!c.key) return [];
  const at = [...c.path, c.key];
  const spec = specAt(at);
  if (c.position === 'item') {
    if (!MODULE_LISTS.includes(c.key) || !/^\s*-\s*[\w.-]*$/.test(before)) return [];
    const word = /[\w.-]*$/.exec(before)![0];
    return moduleSuggestions(text, configDir, c.key, offset - word.length, offset + wordAfter);
  }

  // A value after `key:`.
  const head = /^(\s*[\w.-]+\s*:)(\s*)/.exec(before);
  if (!head || !spec) return [];
  const valueStart = lineStart + head[0].length;
  const typed = text.slice(valueStart, offset);
  const valueEnd = offset + /^[^#]*?(?=\s*(#|$))/.exec(after)![0].length;
  if (spec.kind === 'string-list' && typed.startsWith('[')) {
    const token = /[^[,\s]*$/.exec(typed)![0];
    return moduleSuggestions(text, configDir, c.key, offset - token.length, offset + wordAfter);
  }
  if (trigger === ' ' && typed !== '') return []; // a space inside a value
  const space = head[2] === '' ? ' ' : ''; // right after the colon
  const values: Suggestion[] = valueCompletions(at).map((v) => ({
    ...v,
    insertText: space + v.insertText,
    kind: 'value',
    start: valueStart,
    end: valueEnd,
  }));
  if (spec.kind === 'path') {
    // A path that also takes names (data.chat_template: chatml, plain, …): the names, then the files.
    const paths = pathSuggestions(configDir, typed, spec, offset, offset + /^[^/\s#'"]*/.exec(after)![0].length, space);
    return typed.includes('/') ? paths : [...values, ...paths];
  }
  if (FIELD_KEYS.includes(c.key)) values.push(...fieldSuggestions(text, configDir, c.key, space, valueStart, valueEnd));
  if (MODULE_LISTS.includes(c.key) && typed === '')
    values.push(...defaultTargetsSuggestion(text, configDir, c.key, space, valueStart, valueEnd));
  return values;
}

/** `key: value` lines as a snippet with the values as placeholders; a bare section gets its cursor on the next line. */
export function snippetOf(insertText: string): string {
  const esc = (s: string): string => s.replace(/[$}\\]/g, '\\$&');
  let n = 0;
  const lines = insertText.split('\n').map((l) => {
    const m = /^(\s*[\w.-]+:) (.+)$/.exec(l);
    return m ? `${esc(m[1])} \${${++n}:${esc(m[2])}}` : esc(l);
  });
  if (lines.length === 1 && insertText.endsWith(':')) lines.push('  $0');
  return lines.join('\n');
}

// ---- Module names ----

function modelOf(text: string, configDir: string): ModelSummary | undefined {
  const dir = configFiles(text, configDir).model;
  const m = dir ? inspectModel(dir) : undefined;
  return m?.ok ? m.value : undefined;
}

/** The values already listed under lora.<list>, so they are not offered again. */
function listed(text: string, list: string): string[] {
  const lora: unknown = (parseDocument(text, { prettyErrors: false }).toJS() as { lora?: unknown } | null)?.lora;
  const v = lora && typeof lora === 'object' ? (lora as Record<string, unknown>)[list] : undefined;
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

function taskOf(text: string): string {
  const t: unknown = parseDocument(text, { prettyErrors: false }).get('task');
  return typeof t === 'string' ? t : 'causal-lm';
}

/** The model's Linear layers by name suffix (what PEFT matches), its defaults first; the task's head for modules_to_save. */
function moduleSuggestions(text: string, configDir: string, list: string, start: number, end: number): Suggestion[] {
  const m = modelOf(text, configDir);
  if (!m) return [];
  const groups = new Map<string, { names: string[]; dims: Set<string> }>();
  for (const [name, dims] of m.linears) {
    const suffix = name.slice(name.lastIndexOf('.') + 1);
    const g = groups.get(suffix) ?? { names: [], dims: new Set<string>() };
    g.names.push(name);
    g.dims.add(dims.join('×'));
    groups.set(suffix, g);
  }
  const task = taskOf(text);
  const lm = task !== 'sequence-classification'; // causal-lm and sft train the language-model head
  const heads = m.family.outputHeads.filter((h) => lm === (h === 'lm_head'));
  // A head the checkpoint lacks is still a Linear of the built model: tied to the embeddings, or a fresh classifier.
  const missing = lm ? 'tied to the embeddings' : 'created fresh';
  for (const h of heads) if (!groups.has(h)) groups.set(h, { names: [h], dims: new Set([missing]) });
  const present = listed(text, list);
  const defaults = list === 'target_modules' ? m.family.defaultTargets : heads;
  return [...groups]
    .filter(([suffix]) => !present.includes(suffix))
    .map(([suffix, g]): Suggestion => {
      const isDefault = defaults.includes(suffix);
      const isHead = m.family.outputHeads.includes(suffix);
      const role = isDefault
        ? list === 'target_modules'
          ? ` · ${m.family.name} default`
          : ' · task head'
        : isHead
          ? ' · output head'
          : '';
      const shown = g.names
        .slice(0, 8)
        .map((n) => `- \`${n}\``)
        .join('\n');
      return {
        label: suffix,
        kind: 'module',
        insertText: suffix,
        detail: `${g.names.length} Linear${g.names.length > 1 ? 's' : ''} ${[...g.dims].join(', ')}${role}`,
        documentation: `${shown}${g.names.length > 8 ? `\n- … ${g.names.length - 8} more` : ''}`,
        sortText: `${isDefault ? 0 : isHead ? 2 : 1}-${suffix}`,
        ...(isDefault ? { preselect: true } : {}),
        start,
        end,
      };
    });
}

/** `[q_proj, v_proj]`: the family's default targets as one flow list, after `target_modules:`. */
function defaultTargetsSuggestion(
  text: string,
  configDir: string,
  list: string,
  space: string,
  start: number,
  end: number,
): Suggestion[] {
  const m = modelOf(text, configDir);
  if (!m || list !== 'target_modules') return [];
  const value = `[${m.family.defaultTargets.join(', ')}]`;
  return [
    {
      label: value,
      kind: 'value',
      insertText: space + value,
      detail: `the ${m.family.name} default`,
      sortText: '0',
      start,
      end,
    },
  ];
}

// ---- Data columns ----

function fieldSuggestions(
  text: string,
  configDir: string,
  key: string,
  space: string,
  start: number,
  end: number,
): Suggestion[] {
  const train = configFiles(text, configDir).train;
  const data = train ? inspectData(train) : undefined;
  if (!data?.ok) return [];
  const ordered = orderColumns(data.value.columns, key === 'label_field' ? 'label' : 'text');
  return ordered.map((col, i) => ({
    label: col,
    kind: 'field',
    insertText: space + col,
    detail: `column of ${path.basename(train!)}`,
    sortText: `0-${i}`,
    ...(i === 0 && key !== 'text_pair_field' ? { preselect: true } : {}),
    start,
    end,
  }));
}

// ---- Paths ----

const MAX_ENTRIES = 300;

/** Entries of the folder typed so far (relative to the config's folder): folders, and data files for data keys. */
function pathSuggestions(
  configDir: string,
  typed: string,
  spec: Spec & { kind: 'path' },
  offset: number,
  end: number,
  space: string,
): Suggestion[] {
  const bare = typed.replace(/^['"]/, '');
  const slash = bare.lastIndexOf('/');
  const dirPart = bare.slice(0, slash + 1);
  const partial = bare.slice(slash + 1);
  const dir = resolvePath(configDir, dirPart || '.');
  const wantFiles = spec.exists?.type === 'file';
  const prefix = typed === '' ? space : '';
  const cached = spec.kind === 'path' && spec.hub ? hubSuggestions(bare, offset - bare.length, end, prefix) : [];
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return cached; // `Qwen/` is no folder here, but may be a Hub id
  }
  const start = offset - partial.length;
  const out: Suggestion[] = [];
  if (partial === '' && (dirPart === '' || /(^|\/)\.\.\/$/.test(dirPart))) {
    out.push({
      label: '../',
      kind: 'folder',
      insertText: `${prefix}../`,
      detail: path.dirname(dir),
      sortText: '0',
      start,
      end,
      retrigger: true,
    });
  }
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.length >= MAX_ENTRIES) break;
    if (e.name.startsWith('.') && !partial.startsWith('.')) continue;
    const full = path.join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && isDirectory(full));
    if (isDir) {
      const what = folderKind(full);
      // A model (or adapter) folder is the value itself; other folders are steps on the way.
      const final = (spec.exists?.contains && what.contains === spec.exists.contains) || (!wantFiles && what.label);
      out.push({
        label: `${e.name}/`,
        kind: 'folder',
        insertText: prefix + (final ? e.name : `${e.name}/`),
        detail: what.label ?? 'folder',
        sortText: `${final ? 1 : 2}-${e.name}`,
        start,
        end,
        ...(final ? {} : { retrigger: true }),
      });
    } else if (wantFiles && fileExtensions(spec).includes(path.extname(e.name).toLowerCase())) {
      out.push({
        label: e.name,
        kind: 'file',
        insertText: prefix + e.name,
        detail: spec.names ? 'chat template' : 'data file',
        sortText: `1-${e.name}`,
        start,
        end,
      });
    }
  }
  return [...out, ...cached];
}

/** The files a path key takes: .jinja chat templates for data.chat_template, else data files. */
function fileExtensions(spec: Spec & { kind: 'path' }): readonly string[] {
  return spec.names ? ['.jinja'] : SUPPORTED_EXTENSIONS;
}

/** The supported models of the Hugging Face cache whose Hub id starts with what is typed. */
function hubSuggestions(typed: string, start: number, end: number, prefix: string): Suggestion[] {
  if (/^[./~]/.test(typed)) return []; // a path
  return listCachedModels()
    .flatMap((m) => m.revisions)
    .filter((r) => !r.missing.length && r.modelType !== undefined && r.modelType in FAMILIES)
    .filter((r) => r.spec.startsWith(typed))
    .map((r) => ({
      label: r.spec,
      kind: 'folder' as const,
      insertText: prefix + r.spec,
      detail: `${r.modelType} · Hugging Face cache`,
      sortText: `3-${r.spec}`,
      start,
      end,
    }));
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `model folder (llama)` for a folder with config.json, `adapter` for a PEFT adapter. */
function folderKind(dir: string): { label?: string; contains?: string } {
  try {
    const type = (JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8')) as { model_type?: unknown })
      .model_type;
    return { label: `model folder${typeof type === 'string' ? ` (${type})` : ''}`, contains: 'config.json' };
  } catch {
    return fs.existsSync(path.join(dir, 'adapter_config.json'))
      ? { label: 'PEFT adapter', contains: 'adapter_config.json' }
      : {};
  }
}

// ---- Hover ----

export interface HoverInfo {
  markdown: string;
  start: number; // the key (or list item) hovered
  end: number;
}

/** The docs of the key on the hovered line (with what the model or data file holds, for those keys). */
export function hoverAt(text: string, offset: number, configDir: string): HoverInfo | undefined {
  const lineStart = text.lastIndexOf('\n', offset - 1) + 1;
  const nl = text.indexOf('\n', offset);
  const line = text.slice(lineStart, nl < 0 ? text.length : nl);
  const col = offset - lineStart;
  const comment = line.search(/(^|\s)#/);
  const content = /^\s*(-\s*)?/.exec(line)![0].length;
  if (col < content || (comment >= 0 && col > comment) || col > line.trimEnd().length) return undefined;
  const d = docsAt(text, offset);
  if (!d) return undefined;
  const key = /^(\s*(?:-\s*)?)([\w.-]+)/.exec(line);
  const start = lineStart + (key ? key[1].length : content);
  const end = key ? start + key[2].length : lineStart + line.trimEnd().length;
  const files = configFiles(text, configDir);
  let extra = '';
  if (d.path === 'model' && files.model) extra = modelInfo(files.model) + memoryInfo(text, configDir, files.model);
  if (d.path === 'data.train' && files.train) extra = dataInfo(files.train);
  if (d.path === 'data.eval' && files.eval) extra = dataInfo(files.eval);
  if (d.path === 'data.format' && files.train) extra = formatInfo(text, files.train);
  if (d.path === 'data.chat_template' && files.model) extra = chatTemplateInfo(text, configDir, files);
  if (d.path === 'training.learning_rate' || d.path === 'training.loraplus_lr_ratio') extra = learningRatesInfo(text);
  return { markdown: extra ? `${d.markdown}\n\n---\n\n${extra}` : d.markdown, start, end };
}

/** What the model folder is: family, tasks, default targets, its Linear layers and positions. */
export function modelInfo(dir: string): string {
  const r = inspectModel(dir);
  if (!r.ok) return `$(error) ${r.problem.message}`;
  const m = r.value;
  const suffixes = [...new Set([...m.linears.keys()].map((n) => n.slice(n.lastIndexOf('.') + 1)))];
  return [
    `**${path.basename(dir)}**: \`${String(m.config.model_type)}\` (${m.family.name} family) · ${m.family.tasks.join(', ')}`,
    '',
    `${m.linears.size} Linear layers: ${suffixes.map((s) => `\`${s}\``).join(', ')} · default targets ${m.family.defaultTargets.map((s) => `\`${s}\``).join(', ')}`,
    ...(m.positions
      ? [
          '',
          `${m.positions.max} positions (${m.positions.learned ? 'a learned table: max_length cannot exceed it' : 'rotary'})`,
        ]
      : []),
  ].join('\n');
}

/** What this config needs in memory with this model, on its device (engine/checks/memory.ts); '' until the config
 *  is valid. Schema checks only: the estimate needs the model's headers, which inspectModel has cached. */
function memoryInfo(text: string, configDir: string, dir: string): string {
  const { config } = parseConfigText(text, configDir, { resolveModel: resolveHubModel });
  const m = inspectModel(dir);
  const hint = config && m.ok ? memoryHint({ ...config, model: dir }, m.value) : null;
  return hint ? `\n\nMemory: ${hint}` : '';
}

/** What the data file holds: its columns and rows. */
export function dataInfo(file: string): string {
  const r = inspectData(file);
  if (!r.ok) return `$(error) ${r.problem.message}`;
  const d = r.value;
  const cols = d.columns.map((c) => `\`${c}\``).join(', ');
  return `**${path.basename(file)}**: ${d.rows} rows${d.pretokenized ? ', tokenized already (input_ids)' : ''}${cols ? ` · columns ${cols}` : ''}`;
}
