// Reads a config file: YAML with positions kept, so every problem can point at a line and column (the CLI prints
// `file:line:col`, the editor underlines the range). Also the throwing forms the engine and tests use.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isMap, isSeq, LineCounter, parseDocument } from 'yaml';
import type { Document, Node, Pair } from 'yaml';
import { LoraPlusError } from '../protocol/errors';
import { fixEdits } from './fixes';
import type { TextEdit } from './fixes';
import { toYamlPath } from './problem';
import type { ConfigCheck, Problem, Segment } from './problem';
import { requireResolved } from './auto';
import type { TrainConfig, TunableConfig } from './schema';
import type { ValidateContext } from './validate';
import { validateConfig } from './validate';
import { checkYamlStructure, deepText, MAX_TEXT, pathAt, toJsIssue } from './yaml-checks';
import type { YamlIssue } from './yaml-checks';

/**
 * A problem with its range in the file: 1-based line/col (`endCol` is the column just past the end) and 0-based
 * offsets in UTF-16 units (what an editor's `positionAt` takes). `edits` carry out `fix` in this text, when they can.
 */
export interface LocatedProblem extends Problem {
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  offset: number;
  endOffset: number;
  edits?: TextEdit[];
}

export interface LoadOptions {
  checks?: readonly ConfigCheck[]; // further checks (the engine's, against the model and data), see validateConfig
  resolveModel?: ValidateContext['resolveModel']; // Hub ids in `model:`, see validateConfig
}

export interface LoadResult {
  config: TunableConfig | null; // learning_rate and loraplus_lr_ratio may still be `auto` (auto.ts)
  problems: LocatedProblem[]; // in file order
  text: string;
}

export function loadConfigFile(file: string, opts: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    const p = { ...wholeFile('config/unreadable', `cannot read the config file: ${why}`), severity: 'error' as const };
    return { config: null, problems: [p], text: '' };
  }
  return { ...parseConfigText(text, path.dirname(path.resolve(file)), opts), text };
}

/** The same as loadConfigFile for text already in memory (an editor buffer); paths resolve against configDir. */
export function parseConfigText(
  text: string,
  configDir: string,
  opts: LoadOptions = {},
): { config: TunableConfig | null; problems: LocatedProblem[] } {
  if (text.length > MAX_TEXT) {
    const kb = Math.round(text.length / 1024);
    const message = `the file is ${kb} KB long; a config is a few KB, so this is not one (it was not read)`;
    return { config: null, problems: [{ ...wholeFile('config/too-large', message), severity: 'error' }] };
  }
  const lc = new LineCounter();
  const at = (offset: number): { line: number; col: number } => lc.linePos(Math.min(offset, text.length));
  const located = (i: YamlIssue, severity: LocatedProblem['severity'] = 'error'): LocatedProblem => {
    const [start, end] = [at(i.offset), at(i.endOffset)];
    return {
      severity,
      code: i.code,
      message: i.message,
      path: i.path,
      yamlPath: toYamlPath(i.path),
      at: 'value',
      ...(i.hint ? { hint: i.hint } : {}),
      line: start.line,
      col: start.col,
      endLine: end.line,
      endCol: end.col,
      offset: i.offset,
      endOffset: i.endOffset,
    };
  };
  const deep = deepText(text); // before the parser, whose stack would overflow (at no fixed place)
  if (deep) {
    // No parse: count the lines here.
    lc.addNewLine(0);
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) lc.addNewLine(i + 1);
    return { config: null, problems: [located(deep)] };
  }
  let doc: Document.Parsed;
  try {
    // Duplicate keys are found by checkYamlStructure: the parser's own check is quadratic in a mapping's size.
    doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false });
  } catch (err) {
    const message = `YAML: the text cannot be read (${err instanceof Error ? err.message : String(err)})`;
    return { config: null, problems: [{ ...wholeFile('config/yaml-syntax', message), severity: 'error' }] };
  }
  const yamlIssues = [
    ...doc.errors.map((e) => ({ e, severity: 'error' as const })),
    ...doc.warnings.map((e) => ({ e, severity: 'warning' as const })),
  ];
  const syntax = yamlIssues.map(({ e, severity }): LocatedProblem => {
    const deep = e.code === 'RESOURCE_EXHAUSTION'; // the parser ran out of stack: say what that means
    const [offset, endOffset] = [e.pos[0], Math.max(e.pos[1], e.pos[0])];
    return located(
      {
        code: deep ? 'config/yaml-too-deep' : 'config/yaml-syntax',
        message: deep
          ? 'YAML nests too deeply here to be read; a config has 3 levels'
          : e.code === 'MULTIPLE_DOCS' // the parser's own words name its API
            ? "YAML: a config is one document, but '---' starts another here"
            : `YAML: ${e.message.split('\n')[0]}`,
        offset,
        endOffset,
        path: pathAt(doc, offset),
      },
      severity,
    );
  });
  // A half-parsed document only produces confusing follow-up errors (missing keys and the like); fix the syntax first.
  if (doc.errors.length) return { config: null, problems: sortByPosition(syntax) };
  const structure = checkYamlStructure(doc).map((i) => located(i));
  if (structure.length) return { config: null, problems: sortByPosition([...syntax, ...structure]) };
  let js: unknown;
  try {
    js = doc.toJS(); // throws on an alias bomb (the parser's maxAliasCount) or aliases nested past the stack
  } catch (err) {
    return { config: null, problems: sortByPosition([...syntax, located(toJsIssue(doc, err))]) };
  }

  const { config, problems } = validateConfig(js, { configDir, checks: opts.checks, resolveModel: opts.resolveModel });
  const placed = problems.map((p): LocatedProblem => {
    const edits = fixEdits(doc, text, lc, p);
    return { ...p, ...locate(doc, p, at), ...(edits ? { edits } : {}) };
  });
  return { config, problems: sortByPosition([...syntax, ...placed]) };
}

/** `file:line:col: severity: message (at yaml.path) hint` — the form the CLI prints and terminals make clickable. */
export function formatProblem(file: string, p: Problem | LocatedProblem): string {
  const where = 'line' in p ? `${file}:${p.line}:${p.col}` : file;
  const yamlPath = p.yamlPath ? ` (at ${p.yamlPath})` : '';
  return `${where}: ${p.severity}: ${p.message}${yamlPath}${p.hint ? ` ${p.hint}` : ''}`;
}

/**
 * Loads and validates, or throws LoraPlusError 'config/invalid' listing every error ('config/auto' when a value is
 * still `auto`: requireTunableConfig is the form for what tunes).
 */
export function requireValidConfig(file: string, opts: LoadOptions = {}): TrainConfig {
  return requireResolved(requireTunableConfig(file, opts), file);
}

/** The same, with `auto` values kept (loraplus tune, and train of a config that says auto). */
export function requireTunableConfig(file: string, opts: LoadOptions = {}): TunableConfig {
  const { config, problems } = loadConfigFile(file, opts);
  return config ?? throwInvalid(file, problems);
}

/** Validates a config given as an object (tests, demos); relative paths resolve against configDir. */
export function configFromObject(obj: unknown, configDir: string, opts: LoadOptions = {}): TrainConfig {
  return requireResolved(tunableConfigFromObject(obj, configDir, opts));
}

/** The same, with `auto` values kept. */
export function tunableConfigFromObject(obj: unknown, configDir: string, opts: LoadOptions = {}): TunableConfig {
  const { config, problems } = validateConfig(obj, { configDir, checks: opts.checks, resolveModel: opts.resolveModel });
  return config ?? throwInvalid('<config object>', problems);
}

function throwInvalid(file: string, problems: Problem[]): never {
  const errors = problems.filter((p) => p.severity === 'error');
  const n = errors.length === 1 ? '1 error' : `${errors.length} errors`;
  // The list ends the message, so each line stays `file:line:col: ...` for terminals to link.
  throw new LoraPlusError({
    code: 'config/invalid',
    message: `invalid config (${n}):\n${errors.map((p) => `  ${formatProblem(file, p)}`).join('\n')}`,
    file,
  });
}

// ---- Positions ----

const START = { line: 1, col: 1, endLine: 1, endCol: 1, offset: 0, endOffset: 0 };

/** A problem with the file as a whole, at its start. */
function wholeFile(code: string, message: string): Omit<LocatedProblem, 'severity'> {
  return { code, message, path: [], yamlPath: '', at: 'value', ...START };
}

/** The range of what a problem points at; when that is not in the file (a missing key), the nearest enclosing key. */
function locate(
  doc: Document,
  p: Problem,
  at: (offset: number) => { line: number; col: number },
): Omit<LocatedProblem, keyof Problem | 'edits'> {
  const target = p.at === 'parent' ? p.path.slice(0, -1) : p.path;
  // Walk down as far as the YAML goes, remembering the last key passed.
  let node: unknown = doc.contents;
  let keyNode: Node | undefined;
  let valueNode: Node | undefined;
  let found = true;
  for (const seg of target) {
    if (isMap(node) && typeof seg === 'string') {
      const pair = node.items.find((it: Pair) => keyName(it.key) === seg);
      if (!pair) {
        found = false;
        break;
      }
      keyNode = pair.key as Node;
      valueNode = (pair.value as Node | null) ?? undefined;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
      valueNode = node.items[seg] as Node;
      node = valueNode;
    } else {
      found = false;
      break;
    }
  }
  let range: readonly number[] | null | undefined;
  if (!keyNode && !valueNode) {
    // A top-level key is missing (or the document is empty): point at the first key of the file.
    const root = doc.contents;
    range = isMap(root) && root.items.length ? (root.items[0].key as Node | null)?.range : undefined;
  } else if (p.at === 'value' && found) {
    range = (valueNode ?? keyNode)?.range;
  } else {
    range = (keyNode ?? valueNode)?.range;
  }
  if (!range) return START;
  const start = at(range[0]);
  const end = at(range[1]);
  return {
    line: start.line,
    col: start.col,
    endLine: end.line,
    endCol: end.col,
    offset: range[0],
    endOffset: range[1],
  };
}

function keyName(key: unknown): Segment | undefined {
  if (key && typeof key === 'object' && 'value' in key) return (key as { value: Segment }).value;
  return typeof key === 'string' ? key : undefined;
}

function sortByPosition(problems: LocatedProblem[]): LocatedProblem[] {
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => a.p.line - b.p.line || a.p.col - b.p.col || a.i - b.i)
    .map(({ p }) => p);
}
