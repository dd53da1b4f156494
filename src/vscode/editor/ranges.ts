// The editor's view of a config's problems, without `vscode` (so tests run it): which documents are configs, the
// files a config names, what each problem links to (the model's config.json, the data file), the message shown, and
// the quick fixes as text edits. The checks and the edits themselves come from src/config and the engine; this only
// arranges them for the editor.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { applyEdits, fixEdits } from '../../config/fixes';
import type { TextEdit } from '../../config/fixes';
import { parseConfigText } from '../../config/load';
import type { LocatedProblem } from '../../config/load';
import { resolveHubModel } from '../../engine/checks/config';

// ---- Which documents are configs ----

/** `*.lora.yaml`, `*.loraplus.yaml`, `loraplus.yaml` (as in package.json's menus and yamlValidation). */
export const CONFIG_FILE_NAME = /(^loraplus\.yaml$)|(\.lora\.yaml$)|(\.loraplus\.yaml$)/;

export function isConfigFileName(fileName: string): boolean {
  return CONFIG_FILE_NAME.test(path.basename(fileName));
}

/** A top-level `loraplus: 1` line marks any YAML file as a config. */
export function hasConfigMarker(text: string): boolean {
  return /^loraplus[ \t]*:[ \t]*['"]?1['"]?[ \t]*(#.*)?\r?$/m.test(text);
}

export function isConfigDocument(doc: { fileName: string; languageId: string; getText(): string }): boolean {
  return isConfigFileName(doc.fileName) || (doc.languageId === 'yaml' && hasConfigMarker(doc.getText()));
}

// ---- The files a config names ----

export interface ConfigFiles {
  model?: string; // absolute folder
  train?: string; // absolute files
  eval?: string;
}

/** The model folder and data files as written (resolved like the validator does), from a buffer that may not parse. */
export function configFiles(text: string, configDir: string): ConfigFiles {
  const doc = parseDocument(text, { prettyErrors: false });
  const get = (...at: string[]): string | undefined => {
    const v: unknown = doc.getIn(at);
    return typeof v === 'string' && v !== '' ? resolvePath(configDir, v) : undefined;
  };
  const files: ConfigFiles = {};
  const written: unknown = doc.getIn(['model']);
  const model = typeof written === 'string' && written !== '' ? modelFolder(configDir, written) : undefined;
  const train = get('data', 'train');
  const evalFile = get('data', 'eval');
  if (model) files.model = model;
  if (train) files.train = train;
  if (evalFile) files.eval = evalFile;
  return files;
}

/** The folder `model:` names: a path, or a Hub id's snapshot in the Hugging Face cache (when it is there). */
function modelFolder(configDir: string, written: string): string {
  try {
    return resolveHubModel(written, configDir) ?? resolvePath(configDir, written);
  } catch {
    return resolvePath(configDir, written); // not cached: the diagnostics say so at `model`
  }
}

export function resolvePath(configDir: string, written: string): string {
  const expanded = written === '~' || written.startsWith('~/') ? path.join(os.homedir(), written.slice(1)) : written;
  return path.resolve(configDir, expanded);
}

// ---- What a problem links to ----

export interface Related {
  file: string;
  line: number; // 0-based
  message: string;
}

/** Problems about the model: their related information is its config.json, at the line that matters. */
const MODEL_CODES: Record<string, readonly string[]> = {
  'config/unknown-module': ['model_type'],
  'config/embedding-target': ['model_type'],
  'config/target-trained-in-full': ['model_type'],
  'config/task-unsupported': ['model_type', 'architectures'],
  'config/rank-above-layer': ['hidden_size', 'n_embd', 'dim'],
  'config/max-length-beyond-positions': ['max_position_embeddings', 'n_positions', 'n_ctx'],
};
const DATA_CODES = new Set(['config/missing-column', 'config/no-training-rows', 'config/batch-larger-than-data']);

export function relatedFiles(p: LocatedProblem, files: ConfigFiles): Related[] {
  const modelProblem = p.code in MODEL_CODES || /^(model|weights|safetensors)\//.test(p.code);
  if (modelProblem && files.model) {
    const file = path.join(files.model, 'config.json');
    const keys = MODEL_CODES[p.code] ?? ['model_type'];
    const at = jsonKeyLine(file, keys);
    if (!at) return [];
    return [{ file, line: at.line, message: at.text }]; // VS Code shows the file name beside it
  }
  const dataProblem = DATA_CODES.has(p.code) || p.code.startsWith('data/');
  const file = p.yamlPath === 'data.eval' ? files.eval : files.train;
  if (dataProblem && file && isFile(file)) {
    // A malformed file says where (`file:12: ...`); otherwise the header row is what the columns come from.
    const lineNo = new RegExp(`${escapeRegExp(file)}:(\\d+):`).exec(p.message)?.[1];
    const line = lineNo ? Number(lineNo) - 1 : 0;
    const what = lineNo
      ? `line ${lineNo}`
      : p.code === 'config/missing-column'
        ? 'the header: its columns'
        : 'the data';
    return [{ file, line, message: what }];
  }
  return [];
}

/** The first line of a (small) JSON file that holds one of `keys`, with that line's text. */
function jsonKeyLine(file: string, keys: readonly string[]): { line: number; text: string } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const lines = text.split(/\r?\n/);
  for (const key of keys) {
    const i = lines.findIndex((l) => l.includes(`"${key}"`));
    if (i >= 0) return { line: i, text: lines[i].trim().replace(/,$/, '') };
  }
  return { line: 0, text: "the model's configuration" };
}

function isFile(file: string): boolean {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The message a diagnostic shows: what is wrong, then (on hover, in full) what to do. */
export function diagnosticMessage(p: LocatedProblem): string {
  return p.hint ? `${p.message}\n${p.hint}` : p.message;
}

// ---- Quick fixes ----

export interface FixAction {
  title: string;
  edits: TextEdit[];
  preferred: boolean;
}

/**
 * The quick fixes of one problem: its own fix, and for a value outside an enum each other allowed value. The one
 * fix of a problem that has exactly one is preferred (Shift+Alt+. applies it; a typo's rename is one).
 */
export function fixActions(text: string, p: LocatedProblem): FixAction[] {
  const actions: FixAction[] = [];
  if (p.fix && p.edits?.length) actions.push({ title: p.fix.title, edits: p.edits, preferred: false });
  if (p.code === 'config/enum' && p.suggestions?.length) {
    const lc = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
    const taken = p.fix?.kind === 'setValue' ? p.fix.value : undefined;
    for (const value of p.suggestions.filter((s) => s !== taken)) {
      const title = `Change to ${value}`;
      const edits = fixEdits(doc, text, lc, { ...p, fix: { kind: 'setValue', title, value } });
      if (edits?.length) actions.push({ title, edits, preferred: false });
    }
  }
  // A did-you-mean with a close match is the one likely fix, even when other values are offered beside it.
  if (actions.length && (actions.length === 1 || (p.code === 'config/enum' && p.fix))) actions[0].preferred = true;
  return actions;
}

/**
 * One edit that adds every missing required key (model, data.train): the fixes are applied one after another on the
 * text, since each changes where the next one goes. Undefined when fewer than two keys are missing.
 */
export function addMissingKeysEdit(text: string, configDir: string): FixAction | undefined {
  const missing = (t: string): LocatedProblem[] =>
    parseConfigText(t, configDir).problems.filter((q) => q.code === 'config/missing-key' && q.edits?.length);
  let current = text;
  let count = 0;
  for (let next = missing(current); next.length && count < 20; next = missing(current), count++)
    current = applyEdits(current, next[0].edits!);
  if (count < 2) return undefined;
  return { title: `Add the ${count} missing required keys`, edits: [minimalEdit(text, current)], preferred: false };
}

/** The single replacement that turns `before` into `after` (between their common start and common end). */
export function minimalEdit(before: string, after: string): TextEdit {
  let start = 0;
  while (start < before.length && start < after.length && before[start] === after[start]) start++;
  let end = 0;
  while (
    end < before.length - start &&
    end < after.length - start &&
    before[before.length - 1 - end] === after[after.length - 1 - end]
  )
    end++;
  const s = linePos(before, start);
  const e = linePos(before, before.length - end);
  return {
    offset: start,
    endOffset: before.length - end,
    line: s.line,
    col: s.col,
    endLine: e.line,
    endCol: e.col,
    newText: after.slice(start, after.length - end),
  };
}

/** 1-based line and column of an offset. */
function linePos(text: string, offset: number): { line: number; col: number } {
  const lines = text.slice(0, offset).split('\n');
  return { line: lines.length, col: lines[lines.length - 1].length + 1 };
}
