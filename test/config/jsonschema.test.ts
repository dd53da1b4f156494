// The generated JSON Schema: it must match schema.ts (regenerated here in memory and compared with the file that
// ships in schemas/), and say for every key what the validator checks: description, default, enum, bounds, no
// unknown keys.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { jsonSchemaText, SCHEMA_FILE, toJsonSchema, writeJsonSchema } from '../../src/config/jsonschema';
import { configKeys } from '../../src/config/keys';
import { schema } from '../../src/config/schema';

type JsonNode = {
  [k: string]: unknown;
  properties?: Record<string, JsonNode>;
  enum?: unknown[];
  type?: unknown;
  anyOf?: JsonNode[];
};

/** The node for a dotted key, checking on the way down that each mapping forbids unknown keys. */
function nodeAt(js: JsonNode, segments: string[]): JsonNode {
  let node = js;
  for (const seg of segments) {
    assert.equal(node.additionalProperties, false, `${segments.join('.')}: its parent must forbid unknown keys`);
    node = node.properties?.[seg] as JsonNode;
    assert.ok(node, `${segments.join('.')} is missing from the JSON Schema`);
  }
  return node;
}

describe('JSON Schema', () => {
  test('schemas/loraplus-config.schema.json is up to date', () => {
    const onDisk = fs.existsSync(SCHEMA_FILE) ? fs.readFileSync(SCHEMA_FILE, 'utf8') : '<missing>';
    assert.ok(
      onDisk === jsonSchemaText(),
      `${SCHEMA_FILE} is stale: run \`npm run schema\` to regenerate it from src/config/schema.ts`,
    );
  });

  test('draft-07, with every key described, and a default for every key that is not required', () => {
    const js = toJsonSchema() as JsonNode;
    assert.equal(js.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(js.required, ['model', 'data']);
    assert.deepEqual((js.properties?.data as JsonNode).required, ['train']);
    for (const k of configKeys()) {
      const node = nodeAt(js, k.segments);
      assert.equal(node.description, k.spec.description);
      if (k.spec.docs) assert.equal(node.markdownDescription, `${k.spec.description}\n\n${k.spec.docs}`);
      if (k.spec.kind !== 'object' && !(k.spec.kind !== 'marker' && k.spec.required))
        assert.ok('default' in node, `${k.path} needs a default`);
    }
  });

  test('enums, bounds (draft-07 numbers for exclusive ones) and nullable types', () => {
    const t = (toJsonSchema().properties as Record<string, JsonNode>).training.properties!;
    const ratio = schema.keys.training.keys.loraplus_lr_ratio;
    assert.deepEqual(t.loraplus_lr_ratio, {
      description: ratio.description,
      markdownDescription: `${ratio.description}\n\n${ratio.docs}`,
      default: 16,
      type: ['number', 'string'], // `auto`: a tune picks λ (src/config/auto.ts); the pattern binds strings only
      exclusiveMinimum: 0,
      pattern: '^auto$',
    });
    assert.deepEqual(t.lr_scheduler.enum, ['constant', 'linear', 'cosine']);
    assert.deepEqual(t.max_steps.type, ['integer', 'null']);
    assert.deepEqual([t.adam_beta1.minimum, t.adam_beta1.exclusiveMaximum], [0, 1]);
    const lora = (toJsonSchema().properties as Record<string, JsonNode>).lora.properties!;
    assert.deepEqual(lora.target_modules.anyOf, [
      { type: 'array', items: { type: 'string', minLength: 1 }, uniqueItems: true, minItems: 1 },
      { type: 'string', enum: ['all-linear'] },
      { type: 'null' },
    ]);
    assert.match(String(t.loraplus_lr_ratio.markdownDescription), /LoRA\+.*Hayou, Ghosh and Yu.*2× faster/s);
  });

  test('writeJsonSchema writes the file once and reports no change the second time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'loraplus-schema-'));
    try {
      const file = join(dir, 'schemas', 'loraplus-config.schema.json');
      assert.equal(writeJsonSchema(file), true);
      assert.equal(fs.readFileSync(file, 'utf8'), jsonSchemaText());
      assert.equal(writeJsonSchema(file), false);
      assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), toJsonSchema());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
