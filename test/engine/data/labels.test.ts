// Classification labels are matched by value and checked: SST-2's dev set (0/1) with one label changed at a time,
// through loadData/loadEvalData as training and `loraplus eval` use them, and through the config checks.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { checkConfigText } from '../../../src/engine/checks/config';
import { collectLabels, readRows, splitEval } from '../../../src/engine/data/datasets';
import { labelKey } from '../../../src/engine/data/labels';
import { loadData, loadEvalData } from '../../../src/engine/train/inputs';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError, type ErrorInfo } from '../../../src/protocol/errors';
import { SHARED, SST2, tempDir } from '../../helpers/shared';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const bert = loadTokenizer(BERT);
const DEV = path.join(SST2, 'dev.tsv');
const devLines = fs.readFileSync(DEV, 'utf8').split('\n');

/** dev.tsv with `edit(label, line)` giving each row's new label (line: 1-based in the file), or null to drop it. */
function dev(edit: (label: string, line: number) => string | null, name = 'dev.tsv'): string {
  const out = [devLines[0]];
  devLines.slice(1).forEach((l, i) => {
    if (l === '') return;
    const [sentence, label] = l.split('\t');
    const v = edit(label, i + 2);
    if (v !== null) out.push(`${sentence}\t${v}`);
  });
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, `${out.join('\n')}\n`);
  return file;
}

function config(train: string, data: Record<string, unknown> = {}) {
  return configFromObject(
    {
      model: BERT,
      task: 'sequence-classification',
      data: { train, text_field: 'sentence', max_length: 32, ...data },
    },
    path.dirname(train),
  );
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

/** The config checks' problems for train/eval files (paths absolute). */
function problems(train: string, data: Record<string, unknown> = {}) {
  const text = [
    `model: ${BERT}`,
    'task: sequence-classification',
    'data:',
    `  train: ${train}`,
    '  text_field: sentence',
    ...Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
  ].join('\n');
  return checkConfigText(text, path.dirname(train)).problems.filter((p) => p.code.startsWith('data/'));
}

describe('labels are matched by value and checked', () => {
  it("keeps SST-2's label names exactly: '0' and '1', in that order", () => {
    assert.deepEqual(collectLabels(readRows(path.join(SST2, 'train.tsv')), { labelField: 'label', file: 'x' }), [
      '0',
      '1',
    ]);
    const { train, eval: ev, labels } = loadData(config(DEV, { eval: DEV }), bert);
    assert.deepEqual(labels, ['0', '1']);
    assert.ok(train.kind === 'sequence-classification' && ev?.kind === 'sequence-classification');
    const want = readRows(DEV).map((r) => Number(r.label));
    assert.deepEqual(
      train.examples.map((e) => e.label),
      want,
    );
    assert.deepEqual(
      ev.examples.map((e) => e.label),
      want,
    );
    assert.deepEqual(problems(DEV, { eval: DEV }), []);
  });

  it('1, 1.0, "1" and " 1 " are one class; consistent spellings keep their names', () => {
    const spell = ['1', '1.0', '01', '1e0', '+1'];
    const mixed = dev((l, line) => (l === '1' ? spell[line % spell.length] : line % 2 ? '0.0' : '-0'));
    const { train, labels } = loadData(config(mixed), bert);
    assert.deepEqual(labels, ['0', '1']);
    assert.ok(train.kind === 'sequence-classification');
    assert.deepEqual(
      train.examples.map((e) => e.label),
      readRows(DEV).map((r) => Number(r.label)),
    );
    assert.deepEqual(loadData(config(dev((l) => `${l}.0`)), bert).labels, ['0.0', '1.0']);
    const jsonl = path.join(tempDir(), 'train.jsonl');
    const values = [1, 1.0, '1', ' 1.0 ', 0, '0'];
    fs.writeFileSync(jsonl, values.map((label) => JSON.stringify({ sentence: 'a b', label })).join('\n'));
    const j = loadData(config(jsonl), bert);
    assert.deepEqual(j.labels, ['0', '1']);
    assert.ok(j.train.kind === 'sequence-classification');
    assert.deepEqual(
      j.train.examples.map((e) => e.label),
      [1, 1, 1, 1, 0, 0],
    );
    // Values, not floats: these two differ in the last digit.
    assert.notEqual(labelKey('12345678901234567890'), labelKey('12345678901234567891'));
    assert.equal(labelKey('12345678901234567890'), labelKey('1234567890123456789e1'));
    assert.notEqual(labelKey('0x1'), labelKey('1'));
  });

  it('an eval label the training data never had is an error naming it, its file and line (not class 0)', () => {
    const ev = dev((l, line) => (line === 100 ? '2' : l), 'eval.tsv');
    for (const load of [loadData, loadEvalData]) {
      const e = errorOf(() => load(config(DEV, { eval: ev }), bert));
      assert.deepEqual([e.code, e.file, e.line], ['data/unknown-label', ev, 100]);
      assert.equal(
        e.message,
        "label '2' (field 'label' of the row) never occurs in the training data (dev.tsv), whose labels are [0, 1]",
      );
      assert.match(e.hint ?? '', /data\.labels/);
    }
    // Training labels 1 and 2: an eval 0 was taken as an index and scored as class '1'.
    const shifted = dev((l) => String(Number(l) + 1));
    const e = errorOf(() => loadData(config(shifted, { eval: DEV }), bert));
    assert.deepEqual([e.code, e.file, e.line], ['data/unknown-label', DEV, 3]);
    const [p] = problems(shifted, { eval: DEV });
    assert.deepEqual([p.code, p.yamlPath], ['data/unknown-label', 'data.eval']);
    assert.ok(p.message.startsWith(`${DEV}:3: label '0'`), p.message);
  });

  it('a label that eval_fraction holds out of training is the same error', () => {
    const rare = dev((l, line) => (line === 5 ? 'neutral' : l));
    const indices = readRows(rare).map((_, k) => k);
    // A seed whose split puts line 5 (row 3) in the held-out part.
    const seed = [...Array(50).keys()].find((s) => splitEval(indices, 0.1, s).eval.includes(3))!;
    const cfg = configFromObject(
      {
        model: BERT,
        task: 'sequence-classification',
        data: { train: rare, text_field: 'sentence', max_length: 32, eval_fraction: 0.1 },
        training: { seed },
      },
      path.dirname(rare),
    );
    const e = errorOf(() => loadData(cfg, bert));
    assert.deepEqual([e.code, e.file, e.line], ['data/unknown-label', rare, 5]);
    assert.match(e.message, /^label 'neutral' .* never occurs in the training data/);
  });

  it('an empty or missing label is an error at its line, in training and in the config checks', () => {
    const empty = dev((l, line) => (line === 50 ? '' : l));
    const e = errorOf(() => loadData(config(empty), bert));
    assert.deepEqual([e.code, e.file, e.line], ['data/empty-label', empty, 50]);
    assert.equal(e.message, "the row has an empty label (field 'label')");
    const [p] = problems(empty);
    assert.deepEqual([p.code, p.yamlPath, p.severity], ['data/empty-label', 'data.train', 'error']);
    assert.ok(p.message.startsWith(`${empty}:50: `), p.message);

    const jsonl = path.join(tempDir(), 'train.jsonl');
    fs.writeFileSync(jsonl, '{"sentence": "a", "label": 1}\n{"sentence": "b", "label": 0}\n{"sentence": "c"}\n');
    const m = errorOf(() => loadData(config(jsonl), bert));
    assert.deepEqual([m.code, m.line], ['data/missing-field', 3]);
  });

  it('training data of one class is an error that names the class and counts its rows', () => {
    const ones = dev((l) => (l === '1' ? l : null));
    const e = errorOf(() => loadData(config(ones), bert));
    assert.deepEqual([e.code, e.file, e.yamlPath], ['data/single-class', ones, 'data.label_field']);
    assert.equal(e.message, "the training data has only one class, '1' (all 444 rows)");
    const given = errorOf(() => loadData(config(ones, { labels: ['negative', 'positive'] }), bert));
    assert.match(given.message, /only one class, 'positive' \(all 444 rows\) of the 2 in data.labels/);
    // The first rows of dev.tsv are 1, 0, 1, 1: three rows hold one class.
    const cut = errorOf(() => loadData(config(DEV, { max_train_samples: 1 }), bert));
    assert.deepEqual(
      [cut.code, cut.message],
      ['data/single-class', "the training data has only one class, '1' (all 1 row)"],
    );
    assert.match(cut.hint ?? '', /max_train_samples \(1\)/);
    const [p] = problems(ones);
    assert.deepEqual([p.code, p.yamlPath], ['data/single-class', 'data.train']);
  });
});
