// Damaged safetensors, index and adapter files (issue 14): real files from ../shared, mutated in a temp folder, give
// the right result or one clear error (a code, the file, the tensor, a hint), the same from the loader and from the
// config checks (inspect.ts), never numbers read from the wrong bytes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors, loadAdapter } from '../../src/adapters/peft';
import {
  loadModelWeights,
  parseSafetensors,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
} from '../../src/adapters/safetensors';
import { inspectModel } from '../../src/engine/checks/inspect';
import { LoraPlusError } from '../../src/protocol/errors';
import { REFERENCE, SHARED, STORIES, tempDir } from '../helpers/shared';

const skip = !fs.existsSync(STORIES) && 'needs ../shared';
const STORIES_FILE = path.join(STORIES, 'model.safetensors');
const HEAD_FILE = path.join(REFERENCE, 'loraplus_bert_cls.final_head.safetensors'); // classifier.bias, .weight
const ADAPTER = path.join(REFERENCE, 'lorafa_llama.final_adapter'); // LoRA r 4 on stories260k

/** A file's parts: the header text (padding included) and the data section. */
function split(buf: Buffer): { text: string; data: Buffer } {
  const n = Number(buf.readBigUInt64LE(0));
  return { text: buf.subarray(8, 8 + n).toString('utf8'), data: buf.subarray(8 + n) };
}

/** A safetensors file from header bytes and data, with the length field `len` (default: the header's length). */
function build(header: string | Buffer, data: Buffer, len?: number): Buffer {
  const h = Buffer.from(header);
  const l = Buffer.alloc(8);
  l.writeBigUInt64LE(BigInt(len ?? h.length));
  return Buffer.concat([l, h, data]);
}

/** Asserts one clear error: this code, naming `file`, a message matching `re`, and a hint. */
function rejects(fn: () => unknown, code: string, re: RegExp, file?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LoraPlusError, `expected a LoraPlusError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.info.message, re);
    if (file) assert.equal(err.info.file, file);
    assert.ok(err.info.hint, 'every error says what to do');
    return true;
  });
}

/** inspectModel's problem for `dir`, which must be this code with a message matching `re`. */
function inspectRejects(dir: string, code: string, re: RegExp): void {
  const r = inspectModel(dir);
  assert.ok(!r.ok, 'inspectModel accepted it');
  assert.equal(r.problem.code, code, r.problem.message);
  assert.match(r.problem.message, re);
}

/** A model folder: stories260k's config.json and tokenizer.json, plus `files`. */
function modelFolder(files: Record<string, string | Buffer>): string {
  const dir = tempDir('loraplus-damaged-');
  for (const f of ['config.json', 'tokenizer.json']) fs.copyFileSync(path.join(STORIES, f), path.join(dir, f));
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), content);
  return dir;
}

describe('the real checkpoints still load', { skip }, () => {
  it('every shared model, reference and adapter file: whole, and its header read alone, agree', () => {
    const files = [
      ...fs.readdirSync(path.join(SHARED, 'models')).map((m) => path.join(SHARED, 'models', m, 'model.safetensors')),
      ...fs.readdirSync(REFERENCE).flatMap((f) => {
        const p = path.join(REFERENCE, f);
        if (f.endsWith('.safetensors')) return [p];
        return f.endsWith('_adapter') ? [path.join(p, 'adapter_model.safetensors')] : [];
      }),
    ].filter((f) => fs.existsSync(f));
    assert.ok(files.length >= 20, `${files.length} files`);
    for (const file of files) {
      const whole = readSafetensors(file);
      const header = readSafetensorsHeader(file);
      assert.deepEqual(
        header.tensors.map((t) => [t.name, t.shape]),
        [...whole.tensors].map(([name, t]) => [name, t.shape]),
        file,
      );
      assert.deepEqual(header.metadata, whole.metadata);
    }
  });
});

describe('the header is exactly its JSON, and the tensors tile the data section', { skip }, () => {
  const buf = fs.readFileSync(STORIES_FILE); // its header has 5 spaces of padding
  const n = Number(buf.readBigUInt64LE(0));
  const { text, data } = split(buf);

  it('a header length a few bytes short or long is refused, never read shifted', () => {
    const relabel = (len: number): Buffer => {
      const copy = Buffer.from(buf);
      copy.writeBigUInt64LE(BigInt(len));
      return copy;
    };
    rejects(() => parseSafetensors(relabel(n - 1), STORIES_FILE), 'safetensors/trailing-data', /last 1 byte$/);
    rejects(() => parseSafetensors(relabel(n - 5), STORIES_FILE), 'safetensors/trailing-data', /last 5 bytes/);
    rejects(() => parseSafetensors(relabel(n - 6), STORIES_FILE), 'safetensors/bad-header', /does not close/);
    rejects(() => parseSafetensors(relabel(n + 1), STORIES_FILE), 'safetensors/bad-header', /after its JSON/);
    rejects(() => parseSafetensors(relabel(n + 3), STORIES_FILE), 'safetensors/bad-header', /too long/);
  });

  it('only spaces may follow the JSON: a flipped padding byte, or JSON cut before the declared length', () => {
    for (const pad of ['\n', '\0', 'x', '\t']) {
      const flipped = text.slice(0, -2) + pad + ' ';
      rejects(() => parseSafetensors(build(flipped, data), 'f'), 'safetensors/bad-header', /only space padding/, 'f');
    }
    const cut = `${text.trimEnd().slice(0, -1)}  `; // the closing brace lost to padding
    rejects(() => parseSafetensors(build(cut, data), 'f'), 'safetensors/bad-header', /does not close/);
    rejects(() => parseSafetensors(build(` ${text.trimEnd()}`, data), 'f'), 'safetensors/bad-header', /first byte/);
  });

  it('data_offsets start at 0, leave no gap and end exactly at the end of the file', () => {
    const head = split(fs.readFileSync(HEAD_FILE));
    assert.match(head.text, /"classifier\.weight":\{[^}]*"data_offsets":\[8,264\]/);
    const moved = (from: string, to: string, extra: number): Buffer =>
      build(head.text.replace(from, to), Buffer.concat([head.data, Buffer.alloc(extra)]));
    const gap = moved('[8,264]', '[12,268]', 4);
    rejects(() => parseSafetensors(gap, 'h'), 'safetensors/bad-offsets', /4 bytes between .*'classifier\.bias'/);
    const late = moved('[0,8]', '[4,12]', 0);
    rejects(
      () => parseSafetensors(late, 'h'),
      'safetensors/bad-offsets',
      /4 bytes before the first tensor, 'classifier\.bias'/,
    );
    const overlap = moved('[8,264]', '[4,260]', 0);
    rejects(
      () => parseSafetensors(overlap, 'h'),
      'safetensors/overlap',
      /'classifier\.bias' \[0, 8\] and 'classifier\.weight' \[4, 260\]/,
    );
    rejects(() => parseSafetensors(moved('', '', 4), 'h'), 'safetensors/trailing-data', /last 4 bytes/);
  });

  it('a UTF-8 BOM before the header: one clear error from every reader', () => {
    const bom = build(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(text)]), data);
    const dir = modelFolder({ 'model.safetensors': bom });
    const file = path.join(dir, 'model.safetensors');
    rejects(() => readSafetensors(file), 'safetensors/bad-header', /byte-order mark/, file);
    rejects(() => readSafetensorsHeader(file), 'safetensors/bad-header', /byte-order mark/, file);
    rejects(() => loadModelWeights(dir), 'safetensors/bad-header', /byte-order mark/, file);
    inspectRejects(dir, 'safetensors/bad-header', /model\.safetensors: header starts with a UTF-8 byte-order mark/);
  });
});

describe('duplicate keys in a header (JSON.parse keeps the last)', { skip }, () => {
  const { text, data } = split(fs.readFileSync(STORIES_FILE));

  it('a tensor named twice, or a field twice in one entry, is refused by the loader and the checks', () => {
    const twice = text.replace('{', '{"model.norm.weight":{"dtype":"F32","shape":[64],"data_offsets":[0,256]},');
    const dir = modelFolder({ 'model.safetensors': build(twice, data) });
    rejects(() => loadModelWeights(dir), 'safetensors/duplicate-key', /names tensor 'model\.norm\.weight' twice/);
    inspectRejects(dir, 'safetensors/duplicate-key', /'model\.norm\.weight' twice/);
    const field = text.replace('"dtype":"F32"', '"dtype":"I32","dtype":"F32"');
    rejects(
      () => parseSafetensors(build(field, data), 'f'),
      'safetensors/duplicate-key',
      /entry 'model\.embed_tokens\.weight' has 'dtype' twice/,
    );
  });
});

describe('one reader: the loader and the checks agree on headers and on model.safetensors.index.json', { skip }, () => {
  let tensors: [string, ReturnType<typeof readSafetensors>['tensors'] extends Map<string, infer T> ? T : never][];
  before(() => {
    tensors = [...readSafetensors(STORIES_FILE).tensors];
  });
  const shard = 'model-00001-of-00001.safetensors';
  const sharded = (weightMap: unknown, extra: Record<string, string | Buffer> = {}): string => {
    const dir = modelFolder({ ...extra, 'model.safetensors.index.json': JSON.stringify({ weight_map: weightMap }) });
    writeSafetensors(path.join(dir, shard), new Map(tensors));
    return dir;
  };
  const allTo = (value: unknown): Record<string, unknown> =>
    Object.fromEntries(tensors.map(([k], i) => [k, i === 3 ? value : shard]));

  it('__metadata__: null loads everywhere, with the right values', () => {
    const { text, data } = split(fs.readFileSync(STORIES_FILE));
    const nullMeta = text.replace(/"__metadata__":\{[^}]*\}/, '"__metadata__":null');
    const dir = modelFolder({ 'model.safetensors': build(nullMeta, data) });
    assert.deepEqual(loadModelWeights(dir), new Map(tensors));
    assert.ok(inspectModel(dir).ok);
  });

  it('a shard that is a folder, "", a number, outside the folder, missing: weights/bad-index from both', () => {
    const cases: [unknown, RegExp, Record<string, string | Buffer>?][] = [
      ['sub', /shard sub listed in weight_map is a folder/],
      ['', /maps '.*' to "", not to a shard file/],
      [7, /maps '.*' to 7/],
      ['../model.safetensors', /not to a shard file in the model folder/],
      ['gone.safetensors', /shard gone\.safetensors is listed in weight_map but missing/],
    ];
    for (const [value, re] of cases) {
      const dir = sharded(allTo(value));
      fs.mkdirSync(path.join(dir, 'sub'));
      rejects(() => loadModelWeights(dir), 'weights/bad-index', re);
      inspectRejects(dir, 'weights/bad-index', re);
    }
    assert.deepEqual(loadModelWeights(sharded(allTo(shard))), new Map(tensors), 'the intact index loads');
  });

  it('an index with a BOM or a tensor named twice is refused by both', () => {
    const dir = sharded(allTo(shard));
    const index = path.join(dir, 'model.safetensors.index.json');
    const json = fs.readFileSync(index, 'utf8');
    fs.writeFileSync(index, `\uFEFF${json}`);
    rejects(() => loadModelWeights(dir), 'weights/bad-index', /byte-order mark/, index);
    inspectRejects(dir, 'weights/bad-index', /byte-order mark/);
    fs.writeFileSync(index, json.replace('"weight_map":{', `"weight_map":{"${tensors[0][0]}":"${shard}",`));
    rejects(
      () => loadModelWeights(dir),
      'weights/bad-index',
      /weight_map has the key 'model\.embed_tokens\.weight' twice/,
    );
    inspectRejects(dir, 'weights/bad-index', /twice/);
  });
});

describe('adapters', { skip }, () => {
  const copy = (edit: { config?: (c: Record<string, unknown>) => void; weights?: (b: Buffer) => Buffer }): string => {
    const dir = tempDir('loraplus-damaged-adapter-');
    const config = JSON.parse(fs.readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'));
    edit.config?.(config);
    fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(config));
    const weights = fs.readFileSync(path.join(ADAPTER, 'adapter_model.safetensors'));
    fs.writeFileSync(path.join(dir, 'adapter_model.safetensors'), edit.weights?.(Buffer.from(weights)) ?? weights);
    return dir;
  };
  /** Writes `value` over float `i` of tensor `name`. */
  const poke = (buf: Buffer, name: string, i: number, value: number): Buffer => {
    const header = readSafetensorsHeader(path.join(ADAPTER, 'adapter_model.safetensors'));
    const t = header.tensors.find((e) => e.name === name)!;
    buf.writeFloatLE(value, header.dataStart + t.begin + 4 * i);
    return buf;
  };
  const B = 'base_model.model.model.layers.2.self_attn.v_proj.lora_B.weight';

  it('NaN/Inf in an adapter or a bare init file: refused naming the tensor and the count (merge may keep them)', () => {
    const dir = copy({ weights: (b) => poke(poke(b, B, 7, NaN), B, 9, -Infinity) });
    const file = path.join(dir, 'adapter_model.safetensors');
    rejects(
      () => loadAdapter(dir),
      'adapter/non-finite',
      /'[^']*v_proj\.lora_B\.weight' holds 2 NaN\/Inf values \(of 128\)/,
      file,
    );
    rejects(
      () => adapterWeightsFromSafetensors(readSafetensors(file).tensors, file),
      'adapter/non-finite',
      /holds 2 NaN\/Inf/,
      file,
    );
    const kept = loadAdapter(dir, { allowNonFinite: true }).lora.get('model.layers.2.self_attn.v_proj')!.B;
    assert.ok(Number.isNaN(kept.data[7]) && kept.data[9] === -Infinity);
  });

  it('rank_pattern with a rank of 0, below 0 or not an integer is refused', () => {
    for (const r of [0, -2, 2.5]) {
      const dir = copy({ config: (c) => (c.rank_pattern = { q_proj: r }) });
      rejects(() => loadAdapter(dir), 'adapter/bad-config', new RegExp(`rank_pattern\\['q_proj'\\] .* got ${r}`));
    }
  });

  it('an adapter tensor stored as integers is refused naming it and its dtype', () => {
    const dir = copy({
      weights: (b) => {
        const { text, data } = split(b);
        const relabelled = text.replace(/(lora_B\.weight":\{"dtype":)"F32"/, '$1"I32"');
        assert.notEqual(relabelled, text);
        return build(relabelled, data);
      },
    });
    rejects(() => loadAdapter(dir), 'adapter/bad-dtype', /lora_B\.weight' is stored as I32, but adapter weights/);
  });
});
