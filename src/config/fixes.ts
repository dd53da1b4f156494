// Quick fixes as text edits. A problem's `fix` says what to change by YAML path; this finds where in the text, on the
// parsed document, and writes edits that keep the file's layout: its indentation, its comments, the other keys.
// Block mappings are handled; a fix inside a flow mapping (`data: {train: x}`) or a multi-line value has no edits
// (the editor then offers no quick fix, the problem is still reported).
import { isMap, isScalar, isSeq } from 'yaml';
import type { Document, LineCounter, Node, Pair, YAMLMap } from 'yaml';
import { specAt } from './keys';
import { yamlValue } from './problem';
import type { Problem, Segment } from './problem';

/** A replacement of [offset, endOffset) by newText; offsets count UTF-16 units from 0, line/col count from 1. */
export interface TextEdit {
  offset: number;
  endOffset: number;
  line: number;
  col: number;
  endLine: number;
  endCol: number;
  newText: string;
}

interface Edit {
  start: number;
  end: number;
  newText: string;
}

/** The edits that carry out `p.fix` in `text` (parsed as `doc`), or undefined when there is no fix or no safe edit. */
export function fixEdits(doc: Document, text: string, lc: LineCounter, p: Problem): TextEdit[] | undefined {
  const edits = p.fix ? planEdits(new Text(doc, text), p) : undefined;
  if (!edits) return undefined;
  const pos = (offset: number) => lc.linePos(offset);
  return edits
    .sort((a, b) => a.start - b.start)
    .map((e) => {
      const s = pos(e.start);
      const end = pos(e.end);
      return {
        offset: e.start,
        endOffset: e.end,
        line: s.line,
        col: s.col,
        endLine: end.line,
        endCol: end.col,
        newText: e.newText,
      };
    });
}

/** Applies edits (non-overlapping, any order) to text: what an editor does with them; used by tests and the CLI. */
export function applyEdits(text: string, edits: readonly Pick<TextEdit, 'offset' | 'endOffset' | 'newText'>[]): string {
  let out = text;
  for (const e of [...edits].sort((a, b) => b.offset - a.offset))
    out = out.slice(0, e.offset) + e.newText + out.slice(e.endOffset);
  return out;
}

function planEdits(t: Text, p: Problem): Edit[] | undefined {
  const fix = p.fix!;
  switch (fix.kind) {
    case 'replaceKey': {
      const found = t.find(p.path);
      const r = found?.key?.range;
      return r ? [{ start: r[0], end: r[1], newText: fix.with }] : undefined;
    }
    case 'setValue':
      return t.setValue(p.path, yamlValue(fix.value));
    case 'addKey':
      return t.addKey(fix.path, fix.text);
    case 'removeKey': {
      const edit = t.removePair(p.path);
      return edit && [edit];
    }
    case 'moveKey': {
      const found = t.find(p.path);
      const value = found?.value;
      if (!found?.pair || t.find(fix.to)) return undefined; // the target exists already: a person must choose
      const valueText = value?.range ? t.text.slice(value.range[0], t.contentEnd(value.range[1])) : '';
      if (valueText.includes('\n')) return undefined;
      const remove = t.removePair(p.path);
      const add = t.addKey(fix.to, `${fix.to[fix.to.length - 1]}: ${valueText}`.trimEnd(), found.pair);
      return remove && add ? [remove, ...add] : undefined;
    }
  }
}

interface Found {
  pair?: Pair; // for a key in a mapping
  key?: Node;
  value: Node | null; // the value node (or list item); null when absent
  parent: Node;
}

/** The text and its document, with the lookups and edits fixes are made of. */
class Text {
  constructor(
    readonly doc: Document,
    readonly text: string,
  ) {}

  /** The node at a path, exactly (undefined when any segment is missing). */
  find(path: readonly Segment[]): Found | undefined {
    let node: unknown = this.doc.contents;
    let found: Found | undefined;
    for (const seg of path) {
      if (isMap(node) && typeof seg === 'string') {
        const pair = node.items.find((it) => keyName(it.key) === seg);
        if (!pair) return undefined;
        found = { pair, key: pair.key as Node, value: (pair.value as Node | null) ?? null, parent: node };
      } else if (isSeq(node) && typeof seg === 'number' && node.items[seg]) {
        found = { value: node.items[seg] as Node, parent: node };
      } else return undefined;
      node = found.value;
    }
    return found;
  }

  setValue(path: readonly Segment[], newText: string): Edit[] | undefined {
    const found = this.find(path);
    if (!found) return undefined;
    const r = found.value?.range;
    if (r && r[1] > r[0]) return [{ start: r[0], end: this.contentEnd(r[1]), newText }];
    // `key:` with nothing after it: write the value after the colon.
    const keyEnd = found.key?.range?.[1];
    if (keyEnd === undefined) return undefined;
    const colon = this.text.indexOf(':', keyEnd);
    return colon < 0 ? undefined : [{ start: colon + 1, end: colon + 1, newText: ` ${newText}` }];
  }

  /** Deletes a key's whole lines (its value and trailing comment with it). */
  removePair(path: readonly Segment[]): Edit | undefined {
    const found = this.find(path);
    const keyStart = found?.key?.range?.[0];
    if (!found?.pair || keyStart === undefined || !this.isBlock(found.parent)) return undefined;
    const start = this.lineStart(keyStart);
    if (this.text.slice(start, keyStart).trim() !== '') return undefined; // not alone on its line (`- key: v`)
    const end = this.lineEnd(this.pairEnd(found.pair));
    return { start, end: Math.min(end + 1, this.text.length), newText: '' };
  }

  /**
   * Inserts `line` (`key: value`) as the key at `path`, creating the sections on the way that are missing. It goes
   * where the schema lists it (after the keys that come before it), so `task` lands under `model`, not at the end.
   * `exclude` is a pair being removed by the same fix: nothing is anchored to it.
   */
  addKey(path: readonly string[], line: string, exclude?: Pair): Edit[] | undefined {
    const root = this.doc.contents;
    if (root === null || (isScalar(root) && root.value === null)) {
      const sep = this.text === '' || this.text.endsWith('\n') ? '' : '\n';
      return [
        {
          start: this.text.length,
          end: this.text.length,
          newText: `${sep}${nested(path, line, this.unit()).join('\n')}\n`,
        },
      ];
    }
    let map: unknown = root;
    for (let i = 0; i < path.length; i++) {
      if (!isMap(map) || !this.isBlock(map)) return undefined;
      const pair = map.items.find((it) => keyName(it.key) === path[i]);
      const rest = path.slice(i);
      if (!pair || pair === exclude)
        return this.insertInto(map, path.slice(0, i), path[i], nested(rest, line, this.unit()), exclude);
      if (i === path.length - 1) return undefined; // the key is there already
      const value = pair.value as Node | null;
      if (
        value === null ||
        (isScalar(value) && value.value === null && this.text.slice(...rangeOf(value)).trim() === '')
      ) {
        // `training:` with nothing under it: the keys go on the next lines, one level deeper.
        const keyRange = (pair.key as Node).range!;
        const indent = ' '.repeat(keyRange[0] - this.lineStart(keyRange[0]) + this.unit());
        const lines = nested(path.slice(i + 1), line, this.unit());
        return [
          {
            start: this.lineEnd(keyRange[1]),
            end: this.lineEnd(keyRange[1]),
            newText: lines.map((l) => `\n${indent}${l}`).join(''),
          },
        ];
      }
      map = value;
    }
    return undefined;
  }

  private insertInto(
    map: YAMLMap,
    parent: readonly string[],
    key: string,
    lines: string[],
    exclude?: Pair,
  ): Edit[] | undefined {
    const pairs = map.items.filter((it) => it !== exclude);
    const first = (pairs[0] ?? map.items[0])?.key as Node | undefined;
    if (!first?.range) return undefined;
    const indent = ' '.repeat(first.range[0] - this.lineStart(first.range[0]));
    const spec = specAt(parent);
    const order = spec?.kind === 'object' ? Object.keys(spec.keys) : [];
    const rank = (k: unknown): number => (order.includes(String(k)) ? order.indexOf(String(k)) : order.length);
    const before = order.includes(key) ? pairs.filter((it) => rank(keyName(it.key)) < order.indexOf(key)) : pairs;
    const anchor = before[before.length - 1];
    if (anchor) {
      const at = this.lineEnd(this.pairEnd(anchor));
      return [{ start: at, end: at, newText: lines.map((l) => `\n${indent}${l}`).join('') }];
    }
    // Nothing comes before it: the new lines go above the first key.
    const at = this.lineStart(((pairs[0] ?? map.items[0]).key as Node).range![0]);
    return [{ start: at, end: at, newText: lines.map((l) => `${indent}${l}\n`).join('') }];
  }

  /** The offset just past a pair's content (its value, else its key). */
  private pairEnd(pair: Pair): number {
    const value = pair.value as Node | null;
    const end = value?.range && value.range[1] > value.range[0] ? value.range[1] : (pair.key as Node).range![1];
    return this.contentEnd(end);
  }

  /** Indentation step of this file's nested mappings (2 unless the file uses another). */
  private unit(): number {
    const root = this.doc.contents;
    if (!isMap(root)) return 2;
    for (const pair of root.items) {
      const child = pair.value;
      const k = (pair.key as Node).range?.[0];
      const c = isMap(child) && !child.flow ? (child.items[0]?.key as Node | undefined)?.range?.[0] : undefined;
      if (k !== undefined && c !== undefined) return c - this.lineStart(c) - (k - this.lineStart(k)) || 2;
    }
    return 2;
  }

  private isBlock(node: Node): boolean {
    return !(isMap(node) || isSeq(node)) || !node.flow;
  }

  /** Backs up over whitespace and newlines: YAML ranges often end after the line break. */
  contentEnd(offset: number): number {
    let o = Math.min(offset, this.text.length);
    while (o > 0 && /\s/.test(this.text[o - 1])) o--;
    return o;
  }

  private lineStart(offset: number): number {
    return this.text.lastIndexOf('\n', offset - 1) + 1;
  }

  private lineEnd(offset: number): number {
    const i = this.text.indexOf('\n', offset);
    return i < 0 ? this.text.length : i;
  }
}

/** `['data', 'train']`, `train: x` → [`data:`, `  train: x`]: the lines that create missing sections. */
function nested(path: readonly string[], line: string, unit: number): string[] {
  return [
    ...path.slice(0, -1).map((seg, i) => `${' '.repeat(i * unit)}${seg}:`),
    `${' '.repeat((path.length - 1) * unit)}${line}`,
  ];
}

function rangeOf(node: Node): [number, number] {
  return node.range ? [node.range[0], node.range[1]] : [0, 0];
}

function keyName(key: unknown): Segment | undefined {
  if (key && typeof key === 'object' && 'value' in key) return (key as { value: Segment }).value;
  return typeof key === 'string' ? key : undefined;
}
