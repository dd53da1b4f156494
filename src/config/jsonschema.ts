// The config schema as a draft-07 JSON Schema, for YAML editors that read one (completion and checks without this
// extension). Derived from schema.ts and written to schemas/loraplus-config.schema.json by `npm run schema`
// (writeJsonSchema); a test fails when that file is stale. Checks the JSON Schema cannot express (paths exist,
// λ sanity, the model and data) stay in validate.ts, rules.ts and the engine.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { schema } from './schema';
import type { ObjectSpec, Spec } from './schema';

export type JsonSchema = { [key: string]: unknown };

/** Where the generated file lives: `schemas/` at the top of the repository (shipped with the extension). */
export const SCHEMA_FILE = path.resolve(__dirname, '..', '..', 'schemas', 'loraplus-config.schema.json');

export function toJsonSchema(): JsonSchema {
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    $id: 'https://loraplus-studio.invalid/schema/loraplus-config-1.json',
    title: 'LoRA+ Studio training config',
    ...objectSchema(schema),
  };
}

/** The file's exact text: two-space JSON and a final newline, so regenerating an unchanged schema changes nothing. */
export function jsonSchemaText(): string {
  return `${JSON.stringify(toJsonSchema(), null, 2)}\n`;
}

/** Regenerates the schema file; returns whether its content changed. */
export function writeJsonSchema(file: string = SCHEMA_FILE): boolean {
  const text = jsonSchemaText();
  if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === text) return false;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, text);
  return true;
}

function objectSchema(spec: ObjectSpec): JsonSchema {
  const properties: Record<string, JsonSchema> = {};
  const required: string[] = [];
  for (const [key, s] of Object.entries(spec.keys)) {
    properties[key] = toJson(s);
    if (s.kind !== 'object' && s.kind !== 'marker' && s.required) required.push(key);
    // A section is required when something inside it is.
    if (
      s.kind === 'object' &&
      Object.values(s.keys).some((c) => c.kind !== 'object' && c.kind !== 'marker' && c.required)
    )
      required.push(key);
  }
  return {
    type: 'object',
    ...describe(spec),
    properties,
    ...(required.length ? { required } : {}),
    additionalProperties: false,
  };
}

/** `description`, plus `markdownDescription` (read by VS Code's JSON and YAML support) where there are longer docs. */
function describe(s: Spec): JsonSchema {
  return { description: s.description, ...(s.docs ? { markdownDescription: `${s.description}\n\n${s.docs}` } : {}) };
}

function toJson(s: Spec): JsonSchema {
  const base: JsonSchema = describe(s);
  if (s.kind !== 'object' && s.kind !== 'marker' && s.default !== undefined) base.default = s.default;
  const orNull = (type: string): string | string[] => (s.nullable ? [type, 'null'] : type);
  switch (s.kind) {
    case 'number':
    case 'integer': {
      const out: JsonSchema = { ...base, type: orNull(s.kind) };
      // The engine's limits lie inside the bounds, so where there is one it is the bound the schema states.
      // draft-07: exclusiveMinimum/exclusiveMaximum are numbers, not booleans.
      const { min, max } = s.limit ?? {};
      if (min !== undefined) out.minimum = min;
      else if (s.min !== undefined) out[s.exclusiveMin ? 'exclusiveMinimum' : 'minimum'] = s.min;
      if (max !== undefined) out.maximum = max;
      else if (s.max !== undefined) out[s.exclusiveMax ? 'exclusiveMaximum' : 'maximum'] = s.max;
      // `auto` (a tune picks the value, auto.ts): the bounds apply to numbers only, the pattern to strings only.
      return s.auto ? { ...out, type: [s.kind, 'string'], pattern: '^auto$' } : out;
    }
    case 'boolean':
      return { ...base, type: 'boolean' };
    case 'string':
      return {
        ...base,
        type: orNull('string'),
        minLength: 1,
        ...(s.maxLength !== undefined ? { maxLength: s.maxLength } : {}),
        ...(s.pattern ? { pattern: s.pattern.regex } : {}),
      };
    case 'path':
      return { ...base, type: orNull('string'), minLength: 1 };
    case 'enum':
      return { ...base, type: orNull('string'), enum: s.nullable ? [...s.values, null] : [...s.values] };
    case 'string-list': {
      const list = {
        type: 'array',
        items: { type: 'string', minLength: 1 },
        uniqueItems: true,
        ...(s.minItems ? { minItems: s.minItems } : {}),
      };
      const anyOf: JsonSchema[] = [list];
      if (s.also?.length) anyOf.push({ type: 'string', enum: [...s.also] });
      if (s.nullable) anyOf.push({ type: 'null' });
      return anyOf.length === 1 ? { ...base, ...list } : { ...base, anyOf };
    }
    case 'marker':
      return { ...base, const: s.value, default: s.value };
    case 'object':
      return objectSchema(s);
  }
}

// `npm run schema` runs this file.
if (require.main === module) {
  console.log(writeJsonSchema() ? `wrote ${SCHEMA_FILE}` : `${SCHEMA_FILE} is up to date`);
}
