// What readRows now refuses or places: text that is not UTF-8, empty files, and the line of each element of a
// .json array, on SST-2's dev set written in other encodings and shapes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { lineOf, readRows } from '../../../src/engine/data/datasets';
import { loadData } from '../../../src/engine/train/inputs';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError, type ErrorInfo } from '../../../src/protocol/errors';
import { SST2, STORIES, tempDir } from '../../helpers/shared';

const dev = fs.readFileSync(path.join(SST2, 'dev.tsv'), 'utf8');

function write(name: string, content: string | Buffer): string {
  const file = path.join(tempDir(), name);
  fs.writeFileSync(file, content);
  return file;
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

describe('readRows: encodings, empty files, .json lines', () => {
  it('refuses a file that is not UTF-8 at its first bad line, instead of reading U+FFFD', () => {
    const lines = dev.split('\n');
    lines[41] = lines[41].replace('e', 'é'); // line 42, saved by an editor set to Latin-1
    const bytes = lines.map((l, i) => Buffer.from(`${l}\n`, i === 41 ? 'latin1' : 'utf8'));
    const latin1 = write('dev.tsv', Buffer.concat(bytes));
    const e = errorOf(() => readRows(latin1));
    assert.deepEqual([e.code, e.file, e.line], ['data/not-utf8', latin1, 42]);
    assert.match(e.message, /^line 42 is not valid UTF-8 \(at column \d+\)/);
    assert.match(e.hint ?? '', /Save the file as UTF-8/);
    const utf16 = write('dev16.tsv', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(dev, 'utf16le')]));
    assert.deepEqual(errorOf(() => readRows(utf16)).message, 'the file is UTF-16, not UTF-8');
    assert.equal(readRows(write('ok.tsv', lines.join('\n'))).length, 872, 'the same text in UTF-8 reads');
  });

  it('reads an empty or header-only file as no rows, and training says the file has none', () => {
    for (const [name, text] of [
      ['empty.tsv', ''],
      ['blank.csv', '\n\r\n  \n'],
      ['header.tsv', 'sentence\tlabel\n'],
      ['empty.json', ''],
      ['empty.jsonl', '\n'],
    ]) {
      const file = write(name, text);
      assert.deepEqual(readRows(file), [], name);
      const config = configFromObject({ model: STORIES, data: { train: file } }, path.dirname(file));
      const e = errorOf(() => loadData(config, loadTokenizer(STORIES)));
      assert.deepEqual([e.code, e.file, e.yamlPath], ['data/empty', file, 'data.train'], name);
    }
  });

  it('places each element of a .json array at the line it starts on', () => {
    const rows = dev
      .split('\n')
      .slice(1, 6)
      .map((l) => ({ sentence: l.split('\t')[0], label: l.split('\t')[1] }));
    const pretty = write('dev.json', JSON.stringify(rows, null, 2));
    assert.deepEqual(
      readRows(pretty).map((r) => lineOf(r)),
      [2, 6, 10, 14, 18],
    );
    const packed = write('packed.json', `[${JSON.stringify(rows[0])},\n  ${JSON.stringify(rows[1])}, "x"]`);
    const e = errorOf(() => readRows(packed));
    assert.deepEqual([e.code, e.line], ['data/malformed', 2]);
    const tricky = write('tricky.json', '[{"a": "[{,\\"}]"},\n{"b": [1, {"c": 2}]}]');
    assert.deepEqual(
      readRows(tricky).map((r) => lineOf(r)),
      [1, 2],
    );
  });
});
