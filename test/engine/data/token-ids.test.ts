// Pre-tokenized rows (input_ids, attention_mask, token_type_ids) are used as they are, so every id is checked
// against the model: SST-2 dev sentences tokenized with stories260k, written as JSONL/JSON, then one id broken.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { readRows } from '../../../src/engine/data/datasets';
import { loadData } from '../../../src/engine/train/inputs';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError, type ErrorInfo } from '../../../src/protocol/errors';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const llama = loadTokenizer(STORIES, { bos_token_id: 1, eos_token_id: 2 });
const bert = loadTokenizer(BERT);
const sentences = readRows(path.join(SST2, 'dev.tsv'))
  .slice(0, 40)
  .map((r) => ({ text: String(r.sentence), label: String(r.label) }));

type Json = Record<string, unknown>;

/** A data file of these rows (.jsonl: one per line; .json: an array with one element per line). */
function write(rows: Json[], ext = '.jsonl'): string {
  const file = path.join(tempDir(), `train${ext}`);
  const lines = rows.map((r) => JSON.stringify(r));
  fs.writeFileSync(file, ext === '.json' ? `[\n${lines.join(',\n')}\n]\n` : `${lines.join('\n')}\n`);
  return file;
}

function causal(train: string, model = STORIES) {
  const config = configFromObject({ model, data: { train, max_length: 16 } }, path.dirname(train));
  return loadData(config, model === STORIES ? llama : bert);
}

function classify(train: string) {
  const config = configFromObject(
    { model: BERT, task: 'sequence-classification', data: { train, max_length: 32 } },
    path.dirname(train),
  );
  return loadData(config, bert);
}

function errorOf(fn: () => unknown): ErrorInfo {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof LoraPlusError, `expected a LoraPlusError, got ${String(e)}`);
    return e.info;
  }
  assert.fail('expected an error');
}

const llamaRows = (): Json[] => sentences.map((s) => ({ input_ids: llama.encode(s.text).ids }));

describe('pre-tokenized input_ids against the vocabulary', () => {
  it('uses good rows as they are: the same blocks as tokenizing the text', () => {
    const ids = causal(write(llamaRows())).train;
    const text = causal(write(sentences.map((s) => ({ text: s.text })))).train;
    assert.ok(ids.kind === 'causal-lm' && text.kind === 'causal-lm');
    // The text path appends EOS after each document; the ids path takes the ids as written.
    const stream = llamaRows().flatMap((r) => r.input_ids as number[]);
    assert.deepEqual(Array.from(ids.blocks[3]), stream.slice(48, 64));
    assert.ok(text.blocks.length > ids.blocks.length);
  });

  const cases: [string, unknown, string, RegExp][] = [
    [
      '512 (= vocab_size)',
      512,
      'data/token-id-out-of-range',
      /input_ids\[5\] of the row is 512, but the model's vocabulary has 512 ids \(0 to 511\)/,
    ],
    ['2^40 (wrapped to 0 in an Int32Array before)', 2 ** 40, 'data/token-id-out-of-range', /is 1099511627776/],
    ['-1', -1, 'data/bad-token-id', /input_ids\[5\] of the row is -1, not a token id/],
    ['1.5', 1.5, 'data/bad-token-id', /is 1\.5, not a token id/],
    ['"7" (a string)', '7', 'data/bad-token-id', /is "7", not a token id/],
    ['null', null, 'data/bad-token-id', /is null/],
  ];
  for (const [what, bad, code, message] of cases) {
    for (const ext of ['.jsonl', '.json']) {
      it(`${ext}: an id of ${what} is ${code} at its file and line`, () => {
        const rows = llamaRows();
        (rows[17].input_ids as unknown[])[5] = bad;
        const file = write(rows, ext);
        const e = errorOf(() => causal(file));
        assert.deepEqual([e.code, e.file, e.line], [code, file, 18 + (ext === '.json' ? 1 : 0)]);
        assert.match(e.message, message);
        assert.match(e.hint ?? '', /this model's tokenizer/);
      });
    }
  }

  it("checks against the model's vocab_size (tiny-random-bert: 1000), not only the tokenizer's", () => {
    const rows: Json[] = sentences.map((s) => ({ input_ids: bert.encode(s.text).ids }));
    (rows[3].input_ids as number[])[1] = 999;
    const ds = causal(write(rows), BERT).train;
    assert.ok(ds.kind === 'causal-lm' && ds.tokens > 0);
    (rows[3].input_ids as number[])[1] = 1000;
    const e = errorOf(() => causal(write(rows), BERT));
    assert.deepEqual([e.code, e.line], ['data/token-id-out-of-range', 4]);
  });

  it('drops what attention_mask marks as padding, and checks the mask and token_type_ids', () => {
    const rows: Json[] = sentences.map((s, i) => {
      const ids = bert.encode(s.text, { maxLength: 32 }).ids;
      const pad = 32 - ids.length;
      return {
        input_ids: [...ids, ...Array(pad).fill(0)],
        attention_mask: [...ids.map(() => 1), ...Array(pad).fill(0)],
        token_type_ids: Array(32).fill(0),
        label: i % 2,
      };
    });
    const ds = classify(write(rows)).train;
    assert.ok(ds.kind === 'sequence-classification');
    assert.deepEqual(ds.examples[2].ids, bert.encode(sentences[2].text, { maxLength: 32 }).ids);

    const broken = (edit: (r: Json) => void): ErrorInfo => {
      const copy = rows.map((r) => structuredClone(r));
      edit(copy[9]);
      return errorOf(() => classify(write(copy)));
    };
    const mask = broken((r) => ((r.attention_mask as number[])[0] = 2));
    assert.deepEqual([mask.code, mask.line], ['data/bad-attention-mask', 10]);
    const short = broken((r) => (r.attention_mask as number[]).pop());
    assert.deepEqual([short.code, short.line], ['data/length-mismatch', 10]);
    assert.match(short.message, /attention_mask of the row has 31 entries but input_ids has 32/);
    const type = broken((r) => ((r.token_type_ids as number[])[3] = 2)); // type_vocab_size 2
    assert.deepEqual([type.code, type.line], ['data/token-id-out-of-range', 10]);
    assert.match(type.message, /token_type_ids\[3\] of the row is 2, but the model has 2 token types/);
    const empty = broken((r) => (r.attention_mask = (r.attention_mask as number[]).map(() => 0)));
    assert.deepEqual([empty.code, empty.line], ['data/empty-example', 10]);
    const notList = broken((r) => (r.input_ids = '2 40 3'));
    assert.deepEqual([notList.code, notList.line], ['data/bad-value', 10]);
  });
});
