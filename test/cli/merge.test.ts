// `loraplus merge` end to end through the CLI's main(), as the extension runs it (--json) and as a user types it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { openModelFolder } from '../../src/engine/train/inputs';
import { STORIES, tempDir, useBackend } from '../helpers/shared';
import { llamaAdapter, saved } from '../engine/merge/fixtures';
import { runCli } from '../helpers/cli';

describe('loraplus merge (CLI)', () => {
  before(() => useBackend());

  it('--json: two adapters combined with cat, progress on stderr, one JSON summary on stdout', async () => {
    const [a, b] = [saved(llamaAdapter(STORIES, 21)), saved(llamaAdapter(STORIES, 22))];
    const out = path.join(tempDir(), 'merged');
    const r = await runCli([
      'merge',
      '--adapter',
      a,
      '--adapter',
      b,
      '--weight',
      '0.5',
      '--weight',
      '2',
      '--combination',
      'cat',
      '--out',
      out,
      '--device',
      'wasm',
      '--json',
    ]);
    assert.equal(r.code, 0, r.err);
    const summary = JSON.parse(r.out);
    assert.equal(summary.ok, true);
    assert.equal(summary.out, out);
    assert.equal(summary.combination, 'cat');
    assert.deepEqual(
      summary.adapters.map((x: { path: string; weight: number }) => [x.path, x.weight]),
      [
        [a, 0.5],
        [b, 2],
      ],
    );
    assert.ok(summary.merge_check.max_abs_diff <= 1e-4);
    assert.ok(summary.files.includes('README.md') && summary.files.includes('config.json'));
    assert.match(r.err, /combined 2 adapter\(s\) with cat: r=8/);
    assert.match(r.err, /check: max \|Δlogits\| .* passed/);
    assert.equal(openModelFolder(out).config.model_type, 'llama');
  });

  it('usage errors say what is wrong and exit 1; --help prints the options', async () => {
    const a = saved(llamaAdapter(STORIES, 23));
    const noOut = await runCli(['merge', '--adapter', a]);
    assert.equal(noOut.code, 1);
    assert.match(noOut.err, /--out DIR/);
    const badCombination = await runCli([
      'merge',
      '--adapter',
      a,
      '--out',
      path.join(tempDir(), 'x'),
      '--combination',
      'ties',
    ]);
    assert.match(badCombination.err, /--combination must be one of linear, cat, svd/);
    const weights = await runCli([
      'merge',
      '--adapter',
      a,
      '--weight',
      '1',
      '--weight',
      '2',
      '--out',
      path.join(tempDir(), 'x'),
    ]);
    assert.match(weights.err, /1 --adapter but 2 --weight/);
    const help = await runCli(['merge', '--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /--max-shard-size/);
    assert.match(help.out, /NOT Σ wᵢ·ΔWᵢ/);
  });

  it('a failed check exits 1 and writes nothing; with --force it writes and exits 3', async () => {
    const a = saved(llamaAdapter(STORIES, 24));
    const out = path.join(tempDir(), 'strict');
    const refused = await runCli(['merge', '--adapter', a, '--out', out, '--tolerance', '0']);
    assert.equal(refused.code, 1);
    assert.match(refused.err, /error: .*merge check failed.*--force/s);
    assert.ok(!fs.existsSync(out));
    const forced = await runCli(['merge', '--adapter', a, '--out', out, '--tolerance', '0', '--force']);
    assert.equal(forced.code, 3);
    assert.match(forced.out, /FAILED/);
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  });
});
