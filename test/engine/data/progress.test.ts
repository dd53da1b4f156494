// Long data preparation reports progress as `log` events (the engine never prints), and a pathological line
// (10 MB without a line break) tokenizes in seconds instead of minutes, or is refused at its line.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { loadData } from '../../../src/engine/train/inputs';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { LoraPlusError } from '../../../src/protocol/errors';
import type { LogEvent } from '../../../src/protocol/events';
import { SST2, STORIES, tempDir } from '../../helpers/shared';

const llama = loadTokenizer(STORIES, { bos_token_id: 1, eos_token_id: 2 });
const DEV = path.join(SST2, 'dev.tsv');

function config(data: Record<string, unknown>, dir: string) {
  return configFromObject({ model: STORIES, data: { text_field: 'sentence', max_length: 32, ...data } }, dir);
}

describe('data preparation progress', () => {
  it('reports rows done as log events, then a closing line, for train and the eval rows split off it', () => {
    const events: LogEvent[] = [];
    const cfg = config({ train: DEV, eval_fraction: 0.25 }, SST2);
    loadData(cfg, llama, { emit: (e) => events.push(e), progressEveryMs: 0 });
    const lines = events.map((e) => e.message);
    assert.ok(events.every((e) => e.type === 'log' && e.level === 'info'));
    // 872 rows: 654 train, 218 eval; one line per row but the last, then the closing line.
    assert.equal(lines[0], 'tokenizing dev.tsv: 0% (1 of 654 rows)');
    assert.equal(lines[326], 'tokenizing dev.tsv: 50% (327 of 654 rows)');
    assert.equal(lines[652], 'tokenizing dev.tsv: 99% (653 of 654 rows)');
    assert.match(lines[653], /^tokenized dev\.tsv: 654 rows, [\d,]+ tokens in \d+\.\d s$/);
    assert.equal(lines[654], 'tokenizing dev.tsv (eval rows): 0% (1 of 218 rows)');
    assert.match(lines[lines.length - 1], /^tokenized dev\.tsv \(eval rows\): 218 rows, /);
    assert.equal(lines.length, 654 + 218);
  });

  it('is silent for data that takes less than 2 s', () => {
    const events: LogEvent[] = [];
    loadData(config({ train: DEV }, SST2), llama, { emit: (e) => events.push(e) });
    assert.deepEqual(events, []);
  });

  it('a 10 MB line without line breaks tokenizes in seconds (was 80 s), with a closing line', () => {
    const sentences = fs
      .readFileSync(DEV, 'utf8')
      .split('\n')
      .slice(1)
      .map((l) => l.split('\t')[0])
      .join(' ');
    const line = sentences.repeat(Math.ceil(10_000_000 / sentences.length)).slice(0, 10_000_000);
    const file = path.join(tempDir(), 'one-line.txt');
    fs.writeFileSync(file, `${line}\n`);
    const events: LogEvent[] = [];
    const started = Date.now();
    const { train } = loadData(config({ train: file, text_field: 'text' }, path.dirname(file)), llama, {
      emit: (e) => events.push(e),
      progressEveryMs: 500,
    });
    const seconds = (Date.now() - started) / 1000;
    assert.ok(train.kind === 'causal-lm' && train.tokens > 5_000_000, String(train.kind));
    assert.ok(seconds < 40, `took ${seconds} s`); // about 5 s on one core; the library alone took 80 s
    assert.match(events[events.length - 1].message, /^tokenized one-line\.txt: 1 row, [\d,]+ tokens in /);
  });

  it('a run of over a million characters the tokenizer cannot split is an error at its line', () => {
    const file = path.join(tempDir(), 'blob.txt');
    fs.writeFileSync(file, `a short line\n${'a'.repeat(1_500_000)}\n`);
    try {
      loadData(config({ train: file, text_field: 'text' }, path.dirname(file)), llama);
      assert.fail('expected an error');
    } catch (e) {
      assert.ok(e instanceof LoraPlusError, String(e));
      assert.deepEqual([e.code, e.info.file, e.info.line], ['data/word-too-long', file, 2]);
      assert.match(e.message, /a run of 1,500,001 characters that the tokenizer cannot split/);
    }
  });
});
