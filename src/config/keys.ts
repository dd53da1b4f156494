// The schema seen as a flat list of keys with dotted paths, and its wording for people: what the validator's
// did-you-mean searches, and what the editor's completion and hover (docs.ts) are built from.
import { schema } from './schema';
import type { NumberSpec, ObjectSpec, Spec } from './schema';

export interface KeyInfo {
  path: string; // dotted, e.g. `training.learning_rate`
  segments: string[];
  key: string; // last segment
  spec: Spec;
}

/** Every key in the schema, parents before children, in file order. */
export function configKeys(): KeyInfo[] {
  const out: KeyInfo[] = [];
  const walk = (spec: ObjectSpec, prefix: string[]): void => {
    for (const [key, s] of Object.entries(spec.keys)) {
      const segments = [...prefix, key];
      out.push({ path: segments.join('.'), segments, key, spec: s });
      if (s.kind === 'object') walk(s, segments);
    }
  };
  walk(schema, []);
  return out;
}

/** The spec at a path (`['training', 'learning_rate']`), the root object for `[]`, or undefined when unknown. */
export function specAt(segments: readonly (string | number)[]): Spec | undefined {
  let spec: Spec = schema;
  for (const seg of segments) {
    if (spec.kind !== 'object' || typeof seg !== 'string' || !Object.hasOwn(spec.keys, seg)) return undefined;
    spec = spec.keys[seg];
  }
  return spec;
}

/** Human wording of a spec's accepted values, e.g. `a number > 0`, `an integer ≥ 1 or null`. */
export function describeType(spec: Spec): string {
  let t: string;
  switch (spec.kind) {
    case 'number':
    case 'integer':
      t = `${spec.kind === 'integer' ? 'an integer' : 'a number'}${describeBounds(spec)}`;
      break;
    case 'boolean':
      t = 'true or false';
      break;
    case 'string':
      t = 'a string';
      break;
    case 'path':
      t = 'a path';
      break;
    case 'enum':
      t = `one of ${spec.values.join(', ')}`;
      break;
    case 'string-list':
      t =
        spec.minItems === 1
          ? 'a non-empty list of strings'
          : spec.minItems
            ? `a list of at least ${spec.minItems} strings`
            : 'a list of strings';
      if (spec.also?.length) t += ` or ${spec.also.join(', ')}`;
      break;
    case 'marker':
      t = String(spec.value);
      break;
    case 'object':
      t = 'a mapping of keys';
      break;
  }
  return spec.nullable ? `${t} or null` : t;
}

/** ` in [0, 1)`, ` > 0`, ` ≥ 1` or '' — the bounds of a number spec. */
export function describeBounds(spec: NumberSpec): string {
  const { min, max } = spec;
  if (min !== undefined && max !== undefined)
    return ` in ${spec.exclusiveMin ? '(' : '['}${min}, ${max}${spec.exclusiveMax ? ')' : ']'}`;
  if (min !== undefined) return ` ${spec.exclusiveMin ? '>' : '≥'} ${min}`;
  if (max !== undefined) return ` ${spec.exclusiveMax ? '<' : '≤'} ${max}`;
  return '';
}

/** ` ≤ 16384`, ` in [1e-9, 1]` or '' — the engine's limits of a number spec (inclusive). */
export function describeLimit(spec: NumberSpec): string {
  const { min, max } = spec.limit ?? {};
  if (min !== undefined && max !== undefined) return ` in [${min}, ${max}]`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  return '';
}
