// Generated data files (TSV, CSV, JSONL, JSON, TXT) with what real files get wrong — missing and extra columns,
// empty fields, odd and numeric-looking labels, quotes, BOMs, CRLF, bad input_ids, bytes that are not UTF-8, long
// lines, empty files, a header alone — through readRows, loadData and loadEvalData with the real stories260k and
// tiny-random-bert tokenizers. Each case must give the right data or one clean error that names the file (and the
// line, when a row is at fault); a success is checked against the rows: labels name the classes the rows give,
// ids are the rows' ids and inside the vocabulary.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load';
import { lineOf, readRows, type Row } from '../../src/engine/data/datasets';
import { labelKey } from '../../src/engine/data/labels';
import { loadData, loadEvalData, type Dataset } from '../../src/engine/train/inputs';
import { loadTokenizer, type TextTokenizer } from '../../src/models/tokenizer';
import type { LoraPlusError } from '../../src/protocol/errors';
import { SHARED, SST2, STORIES, tempDir } from '../helpers/shared';
import { cases, failures, fuzz, int, pick } from './harness';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const TOKENIZERS: Record<string, TextTokenizer> = {
  [STORIES]: loadTokenizer(STORIES, { bos_token_id: 1, eos_token_id: 2 }),
  [BERT]: loadTokenizer(BERT),
};
const VOCAB: Record<string, number> = { [STORIES]: 512, [BERT]: 1000 };
const SENTENCES = fs
  .readFileSync(path.join(SST2, 'dev.tsv'), 'utf8')
  .split('\n')
  .slice(1, 200)
  .map((l) => l.split('\t')[0].trim());

type R = () => number;
type Format = '.tsv' | '.csv' | '.jsonl' | '.json' | '.txt';
interface Input {
  entry: 'readRows' | 'loadData' | 'loadEvalData';
  model: string;
  task: 'causal-lm' | 'sequence-classification';
  files: string[]; // train, then eval when there is one
  data: Record<string, unknown>;
}

// ---- generating a data file ------------------------------------------------------------------------------------

// Labels a file is written with: clean sets, spelled in several ways (one class each), and odd ones.
const LABEL_SETS: unknown[][] = [
  ['0', '1'],
  ['1', '1.0', ' 1 ', '01', '0', '0.0', '-0', '1e0'],
  ['pos', 'neg'],
  ['0', '1', '2'],
  [0, 1, 1.0, '1', '0'],
];
const ODD_LABELS: unknown[] = ['', ' ', '2', 'NaN', '0x1', 'Infinity', true, null, 2.5, -1, 1e400, { a: 1 }, [1]];
const BAD_IDS: unknown[] = [512, 999, 1000, 2 ** 31, 2 ** 40, -1, 1.5, '3', null, 1e400, true];

function text(r: R, odd: boolean): string {
  const s = pick(r, SENTENCES);
  if (!odd) return r() < 0.2 ? `"${s}", he said` : s;
  const odds: (() => string)[] = [
    () => '',
    () => '   ',
    () => `${s}\t${s}`, // a tab: an extra TSV column
    () => `${s}\n${s}`, // a line break: CSV quotes it, TSV and JSONL split or escape it
    () => `${s} 😀 東京 naïve \u0000`,
    () => s.repeat(int(r, 50, 400)), // a long line (up to ~40,000 characters)
    () => 'a'.repeat(1_100_000), // a run stories260k cannot split: refused (BERT: [UNK])
  ];
  return pick(r, odds)();
}

/** Faults planted in one file, each at a random row: the rest of the file is clean. */
type Fault = 'text' | 'label' | 'no-label' | 'no-text' | 'extra' | 'ids' | 'mask' | 'types' | 'cells' | 'json';
const FAULTS: Fault[] = ['text', 'text', 'label', 'no-label', 'no-text', 'extra', 'cells', 'json'];
const ID_FAULTS: Fault[] = ['ids', 'ids', 'ids', 'mask', 'types', 'label', 'no-label', 'json'];

function rows(
  r: R,
  task: Input['task'],
  vocab: number,
  n: number,
  o: { json: boolean; pretokenized: boolean; faults: Set<Fault> },
) {
  const { json, pretokenized, faults } = o;
  const labels = pick(r, LABEL_SETS);
  const at = (f: Fault) => (faults.has(f) ? int(r, 0, n - 1) : -1);
  const [bad, odd, noLabel, noText, extra, badIds, mask, types] = (
    ['text', 'label', 'no-label', 'no-text', 'extra', 'ids', 'mask', 'types'] as Fault[]
  ).map(at);
  return Array.from({ length: n }, (_, i) => {
    const out: Record<string, unknown> = {};
    if (pretokenized) {
      const ids: unknown[] = Array.from({ length: int(r, 1, 20) }, () => int(r, 0, vocab - 1));
      if (i === badIds) ids[int(r, 0, ids.length - 1)] = pick(r, BAD_IDS);
      out.input_ids = ids;
      if (i === mask || r() < 0.2) {
        const m: unknown[] = ids.map((_, k) => (k === 0 || r() < 0.8 ? 1 : 0));
        if (i === mask && r() < 0.5) m.push(1);
        else if (i === mask) m[int(r, 0, m.length - 1)] = pick(r, [2, -1, '1', 0.5]);
        if (i === mask && r() < 0.3) m.fill(0);
        out.attention_mask = m;
      }
      if (i === types) out.token_type_ids = ids.map(() => pick(r, [0, 1, 2, -1]));
    } else if (i !== noText) out.text = text(r, i === bad);
    if (task === 'sequence-classification' && i !== noLabel) {
      out.label = i === odd ? pick(r, ODD_LABELS) : labels[i % labels.length];
      if (!json && typeof out.label !== 'string') out.label = String(out.label);
    }
    if (i === extra) out.extra = 'x';
    return out;
  });
}

const csvCell = (v: string) => (/[",\r\n]/.test(v) || v.trim() !== v ? `"${v.replace(/"/g, '""')}"` : v);

function serialize(data: Record<string, unknown>[], format: Format, r: R, task: Input['task'], faults: Set<Fault>) {
  const cols = task === 'causal-lm' ? ['text'] : ['text', 'label'];
  const cell = (v: unknown) =>
    v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v);
  const broken = faults.has('json') ? int(r, 0, data.length) : -1;
  switch (format) {
    case '.jsonl':
      return data.map((x, i) => (i === broken ? '{"text": broken' : JSON.stringify(x))).join('\n');
    case '.json':
      return broken >= 0 && r() < 0.5
        ? '{"text": "not an array"}'
        : `[\n${data.map((x) => JSON.stringify(x)).join(',\n')}\n]`;
    case '.txt':
      return data.map((x) => cell(x.text)).join('\n');
    case '.tsv':
    case '.csv': {
      const header =
        faults.has('cells') && r() < 0.3 ? pick(r, [[...cols, 'label'], cols.slice(0, 1), [...cols, '']]) : cols;
      const cut = faults.has('cells') ? int(r, 0, data.length) : -1;
      const body = data.map((x, i) => {
        let cells = cols.map((c) => cell(x[c]));
        cells =
          format === '.tsv'
            ? cells.map((c) => (faults.has('text') ? c : c.replace(/[\t\n]/g, ' ')))
            : cells.map(csvCell);
        if (i === cut && r() < 0.5) cells.push('extra');
        else if (i === cut) cells.pop();
        if (i === cut && format === '.csv' && r() < 0.3) cells[0] = `"never closed ${cells[0]}`;
        return cells.join(format === '.tsv' ? '\t' : ',');
      });
      return [header.join(format === '.tsv' ? '\t' : ','), ...body].join('\n');
    }
  }
}

/** A data file on disk: rows with 0-2 faults, serialized, then byte-level damage (BOM, CRLF, Latin-1, UTF-16). */
function dataFile(r: R, dir: string, name: string, task: Input['task'], vocab: number): string {
  const formats: Format[] = ['.jsonl', '.json', '.tsv', '.csv', ...(task === 'causal-lm' ? ['.txt' as const] : [])];
  const format = pick(r, formats);
  const json = format === '.jsonl' || format === '.json';
  const pretokenized = json && r() < 0.6;
  const faults = new Set(
    Array.from({ length: pick(r, [0, 0, 1, 1, 2]) }, () => pick(r, pretokenized ? ID_FAULTS : FAULTS)),
  );
  const n = pick(r, [0, 1, 2, 3, 8, 8, 20, 20, 20, 40, 40, 40]);
  let out = serialize(n ? rows(r, task, vocab, n, { json, pretokenized, faults }) : [], format, r, task, faults);
  if (r() < 0.1) out = out.replace(/\n/g, '\r\n');
  if (r() < 0.05) out = `\uFEFF${out}`;
  if (r() < 0.03) out = r() < 0.5 ? '' : '\n\n';
  let bytes = Buffer.from(out, 'utf8');
  const damage = r();
  if (damage < 0.04 && bytes.length > 4) {
    const at = int(r, 0, bytes.length - 1);
    const bad = Buffer.from([pick(r, [0xe9, 0xff, 0x80, 0xc3])]);
    bytes = Buffer.concat([bytes.subarray(0, at), bad, bytes.subarray(at)]);
  } else if (damage < 0.05) bytes = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(out, 'utf16le')]);
  const file = path.join(dir, `${name}${format}`);
  fs.writeFileSync(file, bytes);
  return file;
}

function make(r: R): { input: Input; label: string } {
  const dir = tempDir('loraplus-fuzz-data-');
  const task = r() < 0.5 ? 'causal-lm' : 'sequence-classification';
  const model = task === 'causal-lm' ? STORIES : pick(r, [BERT, STORIES]);
  const files = [dataFile(r, dir, 'train', task, VOCAB[model])];
  if (r() < 0.4) files.push(dataFile(r, dir, 'eval', task, VOCAB[model]));
  const data: Record<string, unknown> = { train: files[0], max_length: pick(r, [2, 4, 8, 16, 64]) };
  if (files[1]) data.eval = files[1];
  else if (r() < 0.3) data.eval_fraction = pick(r, [0.1, 0.5]);
  if (r() < 0.1) data.max_train_samples = int(r, 1, 5);
  if (task === 'sequence-classification' && r() < 0.1)
    data.labels = pick(r, [
      ['neg', 'pos'],
      ['0', '1'],
      ['1', '2', '3'],
    ]);
  const entry = pick(r, ['readRows', 'loadData', 'loadData', 'loadEvalData'] as const);
  const label = `${entry} ${task} ${path.basename(model)} ${files.map((f) => path.basename(f)).join(' ')}`;
  return { input: { entry, model, task, files, data }, label };
}

// ---- running it, and what a right answer is ----------------------------------------------------------------------

function run(input: Input): unknown {
  if (input.entry === 'readRows') return input.files.map((f) => readRows(f));
  const config = configFromObject(
    { model: input.model, task: input.task, data: { text_field: 'text', ...input.data } },
    path.dirname(input.files[0]),
  );
  const tok = TOKENIZERS[input.model];
  return input.entry === 'loadData' ? loadData(config, tok) : loadEvalData(config, tok);
}

/** Null when the result is right for these files, else what is wrong with it. */
function check(input: Input, result: unknown): string | null {
  if (input.entry === 'readRows') {
    for (const rows of result as Row[][]) {
      for (const row of rows) if (!(lineOf(row)! >= 1)) return `a row without its line: ${JSON.stringify(row)}`;
    }
    return null;
  }
  const out = result as { train?: Dataset; eval: Dataset | null; labels: string[] };
  const sets = [out.train, out.eval].filter((d): d is Dataset => !!d);
  const vocab = VOCAB[input.model];
  for (const ds of sets) {
    if (ds.kind === 'causal-lm') {
      if (!ds.blocks.every((b) => b.length === input.data.max_length)) return 'a block of the wrong length';
      for (const b of ds.blocks) if (b.some((id) => id < 0 || id >= vocab)) return `an id outside [0, ${vocab})`;
    } else {
      for (const e of ds.examples) {
        if (!e.ids.length || e.ids.length > Number(input.data.max_length)) return `an example of ${e.ids.length} ids`;
        if (e.ids.some((id) => id < 0 || id >= vocab)) return `an id outside [0, ${vocab})`;
        if (!('label' in e) || !(e.label >= 0 && e.label < out.labels.length))
          return `label id ${'label' in e ? e.label : '?'} of ${out.labels.length}`;
      }
    }
  }
  const split = input.data.eval_fraction !== undefined || input.data.max_train_samples !== undefined;
  const files: [Dataset | null | undefined, string | undefined][] = [[out.eval, input.files[1]]];
  if (!split) files.push([out.train, input.files[0]]);
  for (const [ds, file] of files) {
    const wrong = ds && file ? idsWrong(ds, readRows(file), input) : null;
    if (wrong) return `${path.basename(file!)}: ${wrong}`;
  }
  if (input.task !== 'sequence-classification') return null;
  // Every row's label must be the class its example got: read the rows again and compare by value.
  const given = Array.isArray(input.data.labels);
  const keys = out.labels.map((l) => labelKey(l));
  if (new Set(keys).size !== keys.length) return `one class twice in [${out.labels.join(', ')}]`;
  if (!given && keys.length < 2 && input.entry === 'loadData')
    return `trained with one class: [${out.labels.join(', ')}]`;
  for (const [ds, file] of files) {
    if (!ds || ds.kind !== 'sequence-classification' || !file) continue;
    const rows = readRows(file);
    if (rows.length !== ds.examples.length) return `${rows.length} rows but ${ds.examples.length} examples`;
    for (let i = 0; i < rows.length; i++) {
      const named = String(rows[i].label).trim();
      const got = out.labels[ds.examples[i].label];
      const byIndex = given && /^\d+$/.test(named) && out.labels[Number(named)] === got;
      if (labelKey(named) !== labelKey(got) && !byIndex) return `row ${i + 1} names '${named}' but got class '${got}'`;
    }
  }
  return null;
}

/** The ids each row should give, computed here from the rows and the tokenizer, against what the data set holds. */
function idsWrong(ds: Dataset, rows: Row[], input: Input): string | null {
  const tok = TOKENIZERS[input.model];
  const maxLength = Number(input.data.max_length);
  const own = (row: Row): number[] => {
    const ids = row.input_ids as number[];
    const mask = row.attention_mask as number[] | undefined;
    return mask ? ids.filter((_, k) => mask[k] !== 0) : ids;
  };
  if (ds.kind === 'causal-lm') {
    const stream: number[] = [];
    for (const row of rows) {
      if ('input_ids' in row) for (const id of own(row)) stream.push(id);
      else if (String(row.text) !== '') {
        const ids = tok.encode(String(row.text)).ids;
        if (tok.eosId !== null && ids[ids.length - 1] !== tok.eosId) ids.push(tok.eosId);
        for (const id of ids) stream.push(id);
      }
    }
    const got = ds.blocks.flatMap((b) => Array.from(b));
    const want = stream.slice(0, Math.floor(stream.length / maxLength) * maxLength);
    return got.length === want.length && got.every((id, k) => id === want[k]) ? null : "blocks are not the rows' ids";
  }
  for (let i = 0; i < rows.length; i++) {
    const want =
      'input_ids' in rows[i] ? own(rows[i]).slice(0, maxLength) : tok.encode(String(rows[i].text), { maxLength }).ids;
    const got = ds.examples[i]?.ids ?? [];
    if (got.length !== want.length || got.some((id, k) => id !== want[k])) return `row ${i + 1}: ids differ`;
  }
  return null;
}

/** Row-level errors must say which line; every error must name one of the data files (or the model's config). */
const ROW_CODES = new Set([
  'data/malformed',
  'data/not-utf8',
  'data/missing-field',
  'data/bad-value',
  'data/empty-label',
  'data/unknown-label',
  'data/bad-token-id',
  'data/token-id-out-of-range',
  'data/bad-attention-mask',
  'data/length-mismatch',
  'data/empty-example',
  'data/word-too-long',
]);

function where(e: LoraPlusError, input: Input): boolean {
  if (!input.files.includes(e.info.file ?? '')) return false;
  if (!ROW_CODES.has(e.code) || (e.code === 'data/malformed' && /not an array|array of objects/.test(e.message)))
    return true;
  const lines = fs.readFileSync(e.info.file!).toString('latin1').split('\n').length;
  return Number.isInteger(e.info.line) && e.info.line! >= 1 && e.info.line! <= lines;
}

describe('fuzz: data files through readRows, loadData and loadEvalData', () => {
  it('gives the right data or one clean error at the file and line', async () => {
    const counts: Record<string, number> = {};
    const report = await fuzz<Input>({
      n: cases(300),
      make,
      run: (input) => {
        try {
          return run(input);
        } catch (e) {
          const code = (e as LoraPlusError).info?.code ?? 'raw';
          counts[code] = (counts[code] ?? 0) + 1;
          throw e;
        }
      },
      check,
      where,
      timeoutMs: 30_000,
    });
    if (process.env.LORAPLUS_FUZZ_N) console.log(JSON.stringify(counts));
    assert.equal(report.counts['anything else'], 0, failures(report));
    assert.ok(report.counts.success > 0 && report.counts['clean error'] > 0, JSON.stringify(report.counts));
  });
});
