// The config corpus: each file in corpus/ ends with the problems `loraplus validate` must report for it, one
// `# expect LINE:COL-ENDLINE:ENDCOL severity code: message` line each (`{dir}` is the corpus folder); a file with no
// such line must be clean. The checks run against the real checkpoints and SST-2 in ../shared, with paths written
// relative to each file, and the CLI must print exactly these lines and exit 1 only when one is an error.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { checkConfigFile } from '../../src/engine/checks/config';
import { SHARED } from '../helpers/shared';
import { runCli } from '../helpers/cli';

const CORPUS = path.join(__dirname, 'corpus');
const files = fs
  .readdirSync(CORPUS)
  .filter((f) => f.endsWith('.yaml'))
  .sort();
const skip = !fs.existsSync(path.join(SHARED, 'models', 'stories260k')) && 'needs ../shared (checkpoints and SST-2)';

function expected(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/^# expect (.*)$/gm)].map((m) => m[1].replaceAll('{dir}', CORPUS));
}

async function validate(file: string): Promise<{ code: number; lines: string[] }> {
  const { code, out } = await runCli(['validate', file]);
  return { code, lines: out.split('\n') };
}

describe('config corpus', { skip }, () => {
  it('has good and bad files', () => {
    assert.ok(files.filter((f) => f.startsWith('good-')).length >= 3);
    assert.ok(files.filter((f) => f.startsWith('bad-')).length >= 5);
  });

  for (const name of files) {
    const file = path.join(CORPUS, name);
    it(`${name}: problems, severities and ranges`, () => {
      const got = checkConfigFile(file).problems.map(
        (p) => `${p.line}:${p.col}-${p.endLine}:${p.endCol} ${p.severity} ${p.code}: ${p.message}`,
      );
      assert.deepEqual(got, expected(file));
      if (name.startsWith('good-')) assert.deepEqual(got, []);
    });

    it(`${name}: loraplus validate prints file:line:col: severity: message and exits 1 only on errors`, async () => {
      const want = expected(file).map((e) => /^(\d+):(\d+)-\S+ (\w+) \S+: (.*)$/.exec(e)!);
      const r = await validate(file);
      const printed = r.lines.slice(0, -1); // the last line is the summary
      assert.equal(printed.length, want.length, r.lines.join('\n'));
      printed.forEach((line, i) => {
        const [, l, c, severity, message] = want[i];
        assert.ok(
          line.startsWith(`${file}:${l}:${c}: ${severity}: ${message}`),
          `${line}\n  should start with ${file}:${l}:${c}: ${severity}: ${message}`,
        );
      });
      const errors = want.filter((m) => m[3] === 'error').length;
      assert.equal(r.code, errors ? 1 : 0);
      assert.match(r.lines.at(-1)!, errors ? new RegExp(`^${errors} errors?`) : /: ok( \(.*\))?$/);
    });
  }
});
