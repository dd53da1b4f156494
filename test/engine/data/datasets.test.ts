// Data files → rows → token ids → batches, on the real SST-2 files and small files written here.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  buildCausalLM,
  buildClassification,
  collateCausal,
  collateClassification,
  countTokens,
  epochOrder,
  lineOf,
  readRows,
  splitEval,
  type Row,
} from '../../../src/engine/data/datasets';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError, type ErrorInfo } from '../../../src/protocol/errors';
import { configFromObject } from '../../../src/config/load';
import { collate, loadData } from '../../../src/engine/train/inputs';
import { byteLevelTokenizer } from '../../helpers/byte-level';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const llama = loadTokenizer(STORIES, { bos_token_id: 1, eos_token_id: 2 });
const bert = loadTokenizer(path.join(SHARED, 'models', 'tiny-random-bert'));
const roberta = byteLevelTokenizer('roberta');

function write(name: string, text: string): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, text);
  return file;
}

/** Asserts fn throws a LoraPlusError and returns its info for exact checks. */
function errorOf(fn: () => unknown): ErrorInfo {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof LoraPlusError, `expected a LoraPlusError, got ${String(e)}`);
    return e.info;
  }
  assert.fail('expected an error');
}

describe('readRows: GLUE SST-2 as it is', () => {
  it('reads train.tsv: 67,349 rows, sentence and label, trailing space trimmed', () => {
    const rows = readRows(path.join(SST2, 'train.tsv'));
    assert.equal(rows.length, 67349);
    assert.deepEqual(rows[0], { sentence: 'hide new secretions from the parental units', label: '0' });
    assert.deepEqual(Object.keys(rows[1]), ['sentence', 'label']);
    assert.equal(rows[rows.length - 1].label, '0');
    assert.equal(lineOf(rows[0]), 2);
    assert.equal(lineOf(rows[rows.length - 1]), 67350);
    assert.deepEqual(new Set(rows.map((r) => r.label)), new Set(['0', '1']));
    assert.ok(
      rows.every((r) => typeof r.sentence === 'string' && r.sentence === r.sentence.trim() && r.sentence !== ''),
    );
  });

  it('reads dev.tsv (872 rows) and tokenizes it for classification', () => {
    const file = path.join(SST2, 'dev.tsv');
    const rows = readRows(file);
    assert.equal(rows.length, 872);
    const ds = buildClassification(rows, bert, { textField: 'sentence', labelField: 'label', maxLength: 64, file });
    assert.deepEqual(ds.labels, ['0', '1']);
    assert.equal(ds.examples.length, 872);
    assert.deepEqual(
      ds.examples.map((e) => e.label),
      rows.map((r) => Number(r.label)),
    );
    assert.ok(ds.examples.every((e) => e.ids[0] === 2 && e.ids[e.ids.length - 1] === 3 && e.ids.length <= 64));
  });
});

describe('readRows: formats and malformed files', () => {
  it('reads CSV with quotes, commas, doubled quotes and newlines inside fields (RFC 4180)', () => {
    const file = write('d.csv', 'text,label\r\n"good, not ""great""",1\r\nplain,0\r\n"two\nlines",1\r\n\r\nlast,0');
    const rows = readRows(file);
    assert.deepEqual(rows, [
      { text: 'good, not "great"', label: '1' },
      { text: 'plain', label: '0' },
      { text: 'two\nlines', label: '1' },
      { text: 'last', label: '0' },
    ]);
    assert.deepEqual(rows.map(lineOf), [2, 3, 4, 7]);
  });

  it('reads JSONL, a JSON array and plain text', () => {
    assert.deepEqual(readRows(write('d.jsonl', '{"text": "a", "label": 1}\n\n{"text": "b", "label": 0}\n')), [
      { text: 'a', label: 1 },
      { text: 'b', label: 0 },
    ]);
    assert.deepEqual(readRows(write('d.json', '[{"text": "a"}, {"text": "b"}]')), [{ text: 'a' }, { text: 'b' }]);
    const txt = readRows(write('d.txt', 'first line\n\n  \nsecond line\n'));
    assert.deepEqual(txt, [{ text: 'first line' }, { text: 'second line' }]);
    assert.deepEqual(txt.map(lineOf), [1, 4]);
  });

  it('names file:line for a bad JSONL line', () => {
    const file = write('bad.jsonl', '{"text": "a"}\n{"text": "b"}\n{"text": "c",}\n');
    const e = errorOf(() => readRows(file));
    assert.deepEqual([e.code, e.file, e.line], ['data/malformed', file, 3]);
    assert.match(e.message, /^bad JSON/);
    assert.equal(errorOf(() => readRows(write('arr.jsonl', '{"text": "a"}\n[1, 2]\n'))).line, 2);
  });

  it('names file:line for a row with the wrong number of columns', () => {
    const tsv = write('bad.tsv', 'sentence\tlabel\ngood\t1\nno label here\n');
    const e = errorOf(() => readRows(tsv));
    assert.deepEqual([e.code, e.file, e.line], ['data/malformed', tsv, 3]);
    assert.match(e.message, /expected 2 tab-separated columns \(sentence, label\) but found 1/);
    assert.equal(errorOf(() => readRows(write('bad.csv', 'text,label\n"a",1\n"x",1,2\n'))).line, 3);
    assert.equal(errorOf(() => readRows(write('open.csv', 'text,label\na,1\n"never closed,1\n'))).line, 3);
  });

  it('gives the line of a JSON syntax error and rejects non-arrays', () => {
    assert.equal(errorOf(() => readRows(write('bad.json', '[\n{"text": "a"},\n{"text" "b"}\n]'))).line, 3);
    assert.match(
      errorOf(() => readRows(write('obj.json', '{"text": "a"}'))).message,
      /expected a JSON array of objects/,
    );
  });

  it('lists the supported extensions for an unknown one, and reports a missing file', () => {
    const e = errorOf(() => readRows(write('d.parquet', '')));
    assert.equal(e.code, 'data/unsupported-format');
    assert.equal(e.hint, 'Supported data files: .tsv, .csv, .jsonl, .json, .txt.');
    assert.equal(errorOf(() => readRows('/nonexistent/train.jsonl')).code, 'data/not-found');
  });
});

describe('buildCausalLM: packing', () => {
  const rows: Row[] = [{ text: 'Once upon a time.' }, { text: 'The end.' }, { input_ids: [5, 6, 7] }, { text: '' }];
  // BOS text EOS, BOS text EOS, then the pre-tokenized ids as they are: 16 tokens.
  const stream = [1, 403, 407, 261, 378, 426, 2, 1, 291, 344, 264, 426, 2, 5, 6, 7];

  it('cuts the concatenated tokens into blocks of exactly max_length, dropping the partial tail', () => {
    const ds = buildCausalLM(rows, llama, { textField: 'text', maxLength: 5, file: 'x.jsonl' });
    assert.equal(ds.kind, 'causal-lm');
    assert.deepEqual(
      ds.blocks.map((b) => Array.from(b)),
      [stream.slice(0, 5), stream.slice(5, 10), stream.slice(10, 15)],
    );
    assert.equal(ds.tokens, 15);
    assert.equal(countTokens(ds), 15);
    const exact = buildCausalLM(rows, llama, { textField: 'text', maxLength: 16, file: 'x.jsonl' });
    assert.deepEqual(
      exact.blocks.map((b) => Array.from(b)),
      [stream],
    );
  });

  it('says max_length is longer than the data when no block fills', () => {
    const e = errorOf(() => buildCausalLM(rows, llama, { textField: 'text', maxLength: 17, file: 'x.jsonl' }));
    assert.equal(e.code, 'data/too-short');
    assert.equal(e.message, 'max_length 17 is longer than the data (16 tokens in 4 rows)');
    assert.equal(e.yamlPath, 'data.max_length');
  });

  it('names the missing text field, the file, the line and the fields that exist', () => {
    const file = path.join(SST2, 'dev.tsv');
    const e = errorOf(() => buildCausalLM(readRows(file), llama, { textField: 'text', maxLength: 8, file }));
    assert.deepEqual([e.code, e.file, e.line, e.yamlPath], ['data/missing-field', file, 2, 'data.text_field']);
    assert.equal(e.message, "the row has no field 'text'; its fields are: sentence, label");
    const made = errorOf(() =>
      buildCausalLM([{ text: 'a' }, { body: 'b' }], llama, { textField: 'text', maxLength: 2, file: 'f' }),
    );
    assert.equal(made.message, "row 2 has no field 'text'; its fields are: body");
  });
});

describe('buildClassification', () => {
  const opts = { textField: 'text', labelField: 'label', maxLength: 64, file: 'd.jsonl' };

  it('collects label names from the data: numeric order for numbers, else string order', () => {
    const n = buildClassification(
      [
        { text: 'a', label: 10 },
        { text: 'b', label: '2' },
        { text: 'c', label: 1 },
      ],
      bert,
      opts,
    );
    assert.deepEqual(n.labels, ['1', '2', '10']);
    assert.deepEqual(
      n.examples.map((e) => e.label),
      [2, 1, 0],
    );
    const s = buildClassification(
      [
        { text: 'a', label: 'positive' },
        { text: 'b', label: 'negative' },
      ],
      bert,
      opts,
    );
    assert.deepEqual(s.labels, ['negative', 'positive']);
    assert.deepEqual(
      s.examples.map((e) => e.label),
      [1, 0],
    );
  });

  it('maps names and indices onto given labels and rejects others with file:line', () => {
    const labels = ['negative', 'positive'];
    const ds = buildClassification(
      [
        { text: 'a', label: 'positive' },
        { text: 'b', label: '0' },
        { text: 'c', label: 1 },
      ],
      bert,
      { ...opts, labels },
    );
    assert.deepEqual(ds.labels, labels);
    assert.deepEqual(
      ds.examples.map((e) => e.label),
      [1, 0, 1],
    );
    const file = write('d.jsonl', '{"text": "a", "label": "positive"}\n{"text": "b", "label": "neutral"}\n');
    const e = errorOf(() => buildClassification(readRows(file), bert, { ...opts, labels, file }));
    assert.deepEqual([e.code, e.file, e.line], ['data/unknown-label', file, 2]);
    assert.equal(e.message, "label 'neutral' (field 'label' of the row) is not one of the labels [negative, positive]");
    assert.equal(
      errorOf(() => buildClassification([{ text: 'a', label: 2 }], bert, { ...opts, labels })).code,
      'data/unknown-label',
    );
  });

  it('truncates to max_length and keeps the closing [SEP]; pairs by longest_first', () => {
    const ds = buildClassification([{ text: "it 's a charming journey", label: 1 }], bert, { ...opts, maxLength: 5 });
    assert.deepEqual(ds.examples[0], { ids: [2, 143, 9, 51, 3], typeIds: [0, 0, 0, 0, 0], label: 0 });
    // 3 + 3 text tokens into 7 − 3 specials = 4: both halved (HF's fast tokenizers with truncation=True).
    const pair = buildClassification([{ text: 'a charming journey', q: 'it is bleak', label: 0 }], bert, {
      ...opts,
      textPairField: 'q',
      maxLength: 7,
    });
    assert.deepEqual(pair.examples[0].ids, [2, 33, 422, 3, 143, 140, 3]);
    assert.deepEqual(pair.examples[0].typeIds, [0, 0, 0, 0, 1, 1, 1]);
    // 3 + 1 into 3: the shorter text stays whole, the longer takes the rest.
    const short = buildClassification([{ text: 'a charming journey', q: 'it', label: 0 }], bert, {
      ...opts,
      textPairField: 'q',
      maxLength: 6,
    });
    assert.deepEqual(short.examples[0].ids, [2, 33, 422, 3, 143, 3]);
    const e = errorOf(() =>
      buildClassification([{ text: 'a', q: 'b', label: 0 }], roberta, { ...opts, textPairField: 'q', maxLength: 3 }),
    );
    assert.deepEqual([e.code, e.yamlPath], ['data/max-length-too-short', 'data.max_length']);
  });

  it('uses pre-tokenized rows, dropping their padding', () => {
    const ds = buildClassification([{ input_ids: [2, 40, 3, 0, 0], attention_mask: [1, 1, 1, 0, 0], label: 1 }], bert, {
      ...opts,
      labels: ['0', '1'],
    });
    assert.deepEqual(ds.examples[0], { ids: [2, 40, 3], typeIds: [0, 0, 0], label: 1 });
  });
});

describe('sentence pairs end to end (MRPC/RTE/MNLI-style sentence1, sentence2)', () => {
  const rows = [
    ['a charming journey', 'it is good', 'equivalent'],
    ['the film is bad', 'not a good movie', 'not_equivalent'],
  ];
  const files: Record<string, string> = {
    'pairs.tsv': ['sentence1\tsentence2\tlabel', ...rows.map((r) => r.join('\t'))].join('\n'),
    'pairs.csv': ['sentence1,sentence2,label', ...rows.map((r) => r.map((c) => `"${c}"`).join(','))].join('\n'),
    'pairs.jsonl': rows
      .map(([sentence1, sentence2, label]) => JSON.stringify({ sentence1, sentence2, label }))
      .join('\n'),
  };
  const id = (t: string) => bert.encode(t, { addSpecialTokens: false }).ids;

  for (const [name, text] of Object.entries(files)) {
    it(`${name}: config → data set → batch gives [CLS] A [SEP] B [SEP] with type ids 0/1`, () => {
      const train = write(name, text);
      const config = configFromObject(
        {
          model: path.join(SHARED, 'models', 'tiny-random-bert'),
          task: 'sequence-classification',
          data: { train, text_field: 'sentence1', text_pair_field: 'sentence2', max_length: 32 },
        },
        path.dirname(train),
      );
      const { train: ds, labels } = loadData(config, bert);
      assert.deepEqual(labels, ['equivalent', 'not_equivalent']);
      assert.equal(ds.kind, 'sequence-classification');
      const batch = collate(ds, [0, 1], 0);
      const first = [2, ...id('a charming journey'), 3, ...id('it is good'), 3];
      const second = [2, ...id('the film is bad'), 3, ...id('not a good movie'), 3];
      assert.equal(batch.seq, 16, 'padded to a multiple of 8');
      const row = (r: number, a: Int32Array) => Array.from(a.slice(r * batch.seq, (r + 1) * batch.seq));
      assert.deepEqual(row(0, batch.inputIds), [...first, ...Array(16 - first.length).fill(0)]);
      assert.deepEqual(row(1, batch.inputIds), [...second, ...Array(16 - second.length).fill(0)]);
      assert.deepEqual(row(0, batch.typeIds), [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
      assert.deepEqual(row(1, batch.typeIds), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0]);
      assert.deepEqual(Array.from(batch.labels ?? []), [0, 1]);
    });
  }

  it('max_length cuts the longer sentence first and keeps both [SEP]s', () => {
    const train = write('pairs.tsv', files['pairs.tsv']);
    const config = configFromObject(
      {
        model: path.join(SHARED, 'models', 'tiny-random-bert'),
        task: 'sequence-classification',
        data: { train, text_field: 'sentence1', text_pair_field: 'sentence2', max_length: 9 },
      },
      path.dirname(train),
    );
    const ds = loadData(config, bert).train;
    assert.ok(ds.kind === 'sequence-classification');
    // 4 + 4 text tokens into 9 − 3 = 6: both cut to 3.
    assert.deepEqual(ds.examples[1].ids, [2, ...id('the film is'), 3, ...id('not a good'), 3]);
    assert.deepEqual(ds.examples[1].typeIds, [0, 0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('names the missing sentence2 column', () => {
    const e = errorOf(() =>
      buildClassification([{ sentence1: 'a', label: 0 }], bert, {
        textField: 'sentence1',
        textPairField: 'sentence2',
        labelField: 'label',
        maxLength: 8,
        file: 'd.jsonl',
      }),
    );
    assert.deepEqual([e.code, e.yamlPath], ['data/missing-field', 'data.text_pair_field']);
  });
});

describe('batches', () => {
  it('collateCausal stacks blocks row-major with a full mask and no labels', () => {
    const b = collateCausal([Int32Array.from([1, 2, 3]), Int32Array.from([4, 5, 6])]);
    assert.deepEqual(Array.from(b.inputIds), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(b.attentionMask), [1, 1, 1, 1, 1, 1]);
    assert.deepEqual([b.batch, b.seq, b.tokens, b.labels], [2, 3, 6, null]);
  });

  it('collateClassification right-pads to the longest example with mask 0', () => {
    const b = collateClassification(
      [
        { ids: [2, 10, 3], typeIds: [0, 0, 0], label: 1 },
        { ids: [2, 11, 12, 13, 3], typeIds: [0, 0, 0, 1, 1], label: 0 },
      ],
      9,
    );
    assert.deepEqual([b.batch, b.seq, b.tokens], [2, 5, 8]);
    assert.deepEqual(Array.from(b.inputIds), [2, 10, 3, 9, 9, 2, 11, 12, 13, 3]);
    assert.deepEqual(Array.from(b.attentionMask), [1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
    assert.deepEqual(Array.from(b.typeIds), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
    assert.deepEqual(Array.from(b.labels ?? []), [1, 0]);
    const padded = collateClassification([{ ids: [2, 10, 3], typeIds: [0, 0, 0], label: 1 }], 9, 8);
    assert.deepEqual([padded.seq, padded.tokens], [8, 3]);
    assert.deepEqual(Array.from(padded.attentionMask), [1, 1, 1, 0, 0, 0, 0, 0]);
  });
});

describe('order and splits', () => {
  it('epochOrder is a permutation, the same for the same (seed, epoch), different across epochs and seeds', () => {
    const o = epochOrder(100, 42, 0, true);
    assert.deepEqual(
      [...o].sort((a, b) => a - b),
      Array.from({ length: 100 }, (_, i) => i),
    );
    assert.deepEqual(epochOrder(100, 42, 0, true), o);
    assert.notDeepEqual(epochOrder(100, 42, 1, true), o);
    assert.notDeepEqual(epochOrder(100, 43, 0, true), o);
    assert.deepEqual(epochOrder(5, 42, 3, false), [0, 1, 2, 3, 4]);
  });

  it('splitEval is deterministic, disjoint, complete and keeps the file order', () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    const s = splitEval(items, 0.1, 7);
    assert.equal(s.eval.length, 100);
    assert.equal(s.train.length, 900);
    assert.deepEqual(splitEval(items, 0.1, 7), s);
    assert.notDeepEqual(splitEval(items, 0.1, 8).eval, s.eval);
    const inEval = new Set(s.eval);
    assert.ok(s.train.every((x) => !inEval.has(x)));
    assert.deepEqual(
      [...s.train, ...s.eval].sort((a, b) => a - b),
      items,
    );
    assert.deepEqual(
      s.eval,
      [...s.eval].sort((a, b) => a - b),
    );
    assert.deepEqual(splitEval(items, 0, 7), { train: items, eval: [] });
    assert.equal(splitEval([1, 2, 3], 0.01, 7).eval.length, 1);
    assert.equal(errorOf(() => splitEval(items, 1, 7)).code, 'data/bad-eval-fraction');
  });
});
