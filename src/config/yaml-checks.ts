// YAML that parses but is no config, found on the parsed document before anything turns it into values: the `yaml`
// package's own answers to these are exceptions with no position (an undefined alias, an alias bomb), process
// warnings (a list as a key), quadratic time (duplicate keys in a huge mapping) or a stack overflow (deep nesting).
// Each becomes a problem at its node, so `loraplus validate` can say where. The walk is iterative and linear.
import { isAlias, isCollection, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import type { Alias, Document, Node } from 'yaml';
import { quote } from './problem';
import type { Segment } from './problem';

/** A config is a few KB; past this the text is not one, and the parser takes seconds (1.4 s for 800 KB of list). */
export const MAX_TEXT = 256 << 10;
/** A config nests 3 levels (lora.target_modules[0]); the parser's stack overflows at about 1000 (less when deep). */
export const MAX_DEPTH = 64;
/** Keys in one mapping: a config section has about 25. */
export const MAX_KEYS = 1000;

export interface YamlIssue {
  code: string;
  message: string;
  hint?: string;
  offset: number; // where in the text (UTF-16 units)
  endOffset: number;
  path: Segment[];
}

/** The first few structural problems of a parsed document (empty when toJS may run). */
export function checkYamlStructure(doc: Document): YamlIssue[] {
  const issues: YamlIssue[] = [];
  const add = (node: Node | null | undefined, path: Segment[], code: string, message: string, hint?: string): void => {
    const [offset, end] = node?.range ?? [0, 0];
    issues.push({ code, message, hint, offset, endOffset: Math.max(offset, end), path });
  };
  const anchors = new Map<string, Node>(); // the last node with each anchor, in document order
  // Depth-first in document order (children pushed last-first), so an alias sees only the anchors before it.
  const stack: { node: unknown; path: Segment[]; depth: number }[] = [{ node: doc.contents, path: [], depth: 0 }];
  while (stack.length && issues.length < 10) {
    const { node, path, depth } = stack.pop()!;
    if (!node || typeof node !== 'object') continue;
    const n = node as Node;
    if (n.anchor) anchors.set(n.anchor, n);
    if (isAlias(n)) {
      const target = anchors.get(n.source);
      if (!target) {
        add(
          n,
          path,
          'config/yaml-alias',
          `YAML: alias *${quote(n.source)} has no anchor &${quote(n.source)} before it`,
        );
      } else if (contains(target, n)) {
        add(
          n,
          path,
          'config/yaml-alias',
          `YAML: alias *${quote(n.source)} is inside the node it refers to: it never ends`,
        );
      }
      continue;
    }
    if (depth > MAX_DEPTH) {
      const shown = path.slice(0, 16); // the path of a node this deep is no help past its start
      add(n, shown, 'config/yaml-too-deep', `YAML nests more than ${MAX_DEPTH} levels deep here; a config has 3`);
      continue;
    }
    const children: { node: unknown; path: Segment[] }[] = [];
    if (isMap(n)) {
      if (n.items.length > MAX_KEYS) {
        add(n, path, 'config/yaml-too-large', `a mapping with ${n.items.length} keys; a config section has about 25`);
        continue;
      }
      const seen = new Set<string>();
      for (const pair of n.items) {
        const key = pair.key as Node | null;
        const name = keyText(key, anchors);
        if (name === undefined) {
          add(key, path, 'config/yaml-key', 'YAML: a key must be a name, not a list or a mapping');
          continue;
        }
        if (seen.has(name)) {
          add(key, [...path, name], 'config/duplicate-key', `YAML: key '${quote(name)}' appears twice in this mapping`);
          continue;
        }
        seen.add(name);
        children.push({ node: key, path }, { node: pair.value, path: [...path, name] });
      }
    } else if (isSeq(n)) {
      n.items.forEach((item, i) => children.push({ node: item, path: [...path, i] }));
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push({ ...children[i], depth: depth + 1 });
  }
  return issues;
}

/**
 * Nesting deeper than MAX_DEPTH found in the text itself, before parsing: where the parser would overflow its stack
 * (at a place that depends on how deep the caller's stack already is) this gives one fixed position. Counts block
 * levels by indentation (and `- ` entries) plus open flow brackets outside quotes and comments.
 */
export function deepText(text: string): YamlIssue | null {
  const indents: number[] = [];
  let flow = 0;
  let open: '"' | "'" | null = null; // the quote of the scalar we are in
  for (let i = 0; i < text.length; i++) {
    if (i === 0 || text[i - 1] === '\n') {
      let j = i;
      while (text[j] === ' ') j++;
      if (!open && flow === 0 && j < text.length && !'#\r\n'.includes(text[j])) {
        while (indents.length && indents[indents.length - 1] >= j - i) indents.pop();
        indents.push(j - i);
        for (let k = j; text[k] === '-' && text[k + 1] === ' '; k += 2) indents.push(k + 2 - i); // `- - x`
        if (indents.length > MAX_DEPTH) return deepAt(text, j);
      }
    }
    const c = text[i];
    if (open) {
      if (c === '\\' && open === '"') i++;
      else if (c === open && !(open === "'" && text[i + 1] === "'")) open = null;
      else if (c === "'" && open === "'") i++; // '' inside single quotes
      continue;
    }
    const after = i === 0 || ' \t\n[{,:-'.includes(text[i - 1]); // a quote opens a scalar only at its start
    if ((c === '"' || c === "'") && after) open = c;
    else if (c === '#' && (i === 0 || ' \t\n'.includes(text[i - 1]))) {
      while (i < text.length && text[i] !== '\n') i++;
      i--;
    } else if (c === '[' || c === '{') {
      if (++flow + indents.length > MAX_DEPTH) return deepAt(text, i);
    } else if ((c === ']' || c === '}') && flow > 0) flow--;
  }
  return null;
}

function deepAt(text: string, offset: number): YamlIssue {
  // The path up to here, from the text before it (shallow enough to parse).
  const doc = parseDocument(text.slice(0, offset + 1), { prettyErrors: false, uniqueKeys: false });
  return {
    code: 'config/yaml-too-deep',
    message: `YAML nests more than ${MAX_DEPTH} levels deep here; a config has 3`,
    offset,
    endOffset: offset + 1,
    path: pathAt(doc, offset).slice(0, 16),
  };
}

/** Where toJS failed (an alias bomb, or aliases nested past the stack): the first alias to a node with aliases. */
export function toJsIssue(doc: Document, err: unknown): YamlIssue {
  const bomb = /alias/i.test(err instanceof Error ? err.message : '');
  const nodes = inOrder(doc.contents);
  const anchors = new Map<string, Node>();
  let alias: Alias | undefined;
  let first: Alias | undefined;
  const nested = new Map<Node, boolean>(); // whether an anchored node holds aliases
  for (const n of nodes) {
    if (n.anchor) anchors.set(n.anchor, n);
    if (!isAlias(n)) continue;
    first ??= n;
    const target = anchors.get(n.source);
    if (target && !nested.has(target))
      nested.set(
        target,
        inOrder(target).some((m) => isAlias(m)),
      );
    if (target && nested.get(target)) {
      alias = n;
      break;
    }
  }
  const [offset, end] = (alias ?? first)?.range ?? [0, 0];
  return {
    code: bomb ? 'config/yaml-alias' : 'config/yaml-too-deep',
    message: bomb
      ? 'YAML: these aliases expand to too many values (an alias bomb)'
      : 'YAML: the aliases expand to a document too deep to read',
    hint: 'A config needs no nested aliases: write the values out.',
    offset,
    endOffset: Math.max(offset, end),
    path: pathAt(doc, offset),
  };
}

/** Every node under `root` in document order (keys before their values), without recursion. */
function inOrder(root: unknown): Node[] {
  const out: Node[] = [];
  const stack: unknown[] = [root];
  while (stack.length) {
    const n = stack.pop();
    if (!n || typeof n !== 'object') continue;
    out.push(n as Node);
    if (isMap(n)) for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i].value, n.items[i].key);
    else if (isSeq(n)) for (let i = n.items.length - 1; i >= 0; i--) stack.push(n.items[i]);
  }
  return out;
}

/** The YAML path of the innermost key or item whose text holds `offset` (for syntax errors): at most 16 levels. */
export function pathAt(doc: Document, offset: number): Segment[] {
  const path: Segment[] = [];
  let node: unknown = doc.contents;
  const holds = (n: unknown): boolean => {
    const r = (n as Node | null)?.range;
    return !!r && r[0] <= offset && offset < r[2];
  };
  while (path.length < 16) {
    if (isMap(node)) {
      const pair = node.items.find((p) => {
        const k = (p.key as Node | null)?.range;
        const v = (p.value as Node | null)?.range;
        return !!k && k[0] <= offset && offset < (v ? v[2] : k[2]);
      });
      const name = pair && isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (!pair || name === undefined) break;
      path.push(name);
      node = pair.value;
    } else if (isSeq(node)) {
      const i = node.items.findIndex(holds);
      if (i < 0) break;
      path.push(i);
      node = node.items[i];
    } else break;
  }
  return path;
}

/** A key as text; undefined for a collection (directly or through an alias). */
function keyText(key: Node | null, anchors: Map<string, Node>): string | undefined {
  const k = isAlias(key) ? anchors.get(key.source) : key;
  if (k === null || k === undefined) return '';
  if (isCollection(k)) return undefined;
  return isScalar(k) ? String(k.value ?? '') : '';
}

/** Whether `inner` lies inside `outer`'s text: an alias inside its own anchor's node refers to itself. */
function contains(outer: Node, inner: Node): boolean {
  const [a, , b] = outer.range ?? [0, 0, 0];
  const [c, , d] = inner.range ?? [0, 0, 0];
  return isCollection(outer) && a <= c && d <= b;
}
