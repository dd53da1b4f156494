// `loraplus chat` driven as a pipe drives it: lines on stdin, answers on stdout, notices and --show-prompt on stderr.
// The prompts are checked against the template's rendering (the model's own ChatML for tiny-random-qwen3, the
// built-in 'plain' for stories260k), with the history kept, /system, /reset, and --compare's labelled answers.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { saveAdapter } from '../../src/adapters/peft';
import { Columns, wrap } from '../../src/cli/chat-columns';
import { runCli } from '../helpers/cli';
import { SHARED, STORIES, tempDir } from '../helpers/shared';
import { llamaAdapter } from '../engine/merge/fixtures';

const MAIN = path.resolve(__dirname, '..', '..', 'src', 'cli', 'main.ts');
const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');

function chat(args: string[], lines: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'chat', ...args, '--device', 'wasm'], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, LORAPLUS_WASM_THREADS: '1' },
  });
  let [out, err] = ['', ''];
  child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (err += d.toString('utf8')));
  child.stdin.end(lines.map((l) => `${l}\n`).join(''));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err })));
}

/** The --show-prompt blocks of stderr: side and text. */
function prompts(err: string): { side: string; text: string }[] {
  return [...err.matchAll(/--- prompt \((\w+), \d+ tokens\) ---\n([\s\S]*?)\n---\n/g)].map((m) => ({
    side: m[1],
    text: m[2],
  }));
}

const turn = (user: string) => `<|im_start|>user\n${user}<|im_end|>\n<|im_start|>assistant\n`;

describe('loraplus chat', () => {
  let adapter = '';
  before(() => {
    adapter = path.join(tempDir(), 'adapter');
    saveAdapter(adapter, llamaAdapter(STORIES, 11));
  });

  it("renders with the model's template, keeps the history, and /system and /reset change what the model sees", async () => {
    const r = await chat(
      [QWEN3, '--max-new-tokens', '6', '--show-prompt'],
      ['Hello', 'Tell me more', '/reset', '/system Be brief.', 'Again', '/exit', 'never read'],
    );
    assert.equal(r.code, 0, r.err);
    assert.match(
      r.err,
      /^chat with .*tiny-random-qwen3 \(qwen3\) · wasm · greedy · up to 6 new tokens · 128 positions/m,
    );
    assert.match(r.err, /template: .*tokenizer_config\.json/);
    const p = prompts(r.err);
    assert.deepEqual(
      p.map((x) => x.side),
      ['base', 'base', 'base'],
      'one prompt per message; commands are not messages',
    );
    assert.equal(p[0].text, turn('Hello'));
    // The second prompt holds the first exchange: the first answer, as stdout printed it, closed by <|im_end|>.
    assert.ok(p[1].text.startsWith(turn('Hello')) && p[1].text.endsWith(`<|im_end|>\n${turn('Tell me more')}`));
    const first = p[1].text.slice(turn('Hello').length, -`<|im_end|>\n${turn('Tell me more')}`.length);
    assert.ok(r.out.includes(first), `${JSON.stringify(first)} in stdout`);
    assert.equal(p[2].text, `<|im_start|>system\nBe brief.<|im_end|>\n${turn('Again')}`, 'reset, with the system');
    assert.match(r.err, /\(conversation cleared\)/);
    assert.doesNotMatch(r.out, /never read/);
  });

  it("--compare with --chat-template plain: both answers, labelled, each side's own prompt", async () => {
    const r = await chat(
      [
        STORIES,
        '--adapter',
        adapter,
        '--compare',
        '--chat-template',
        'plain',
        '--max-new-tokens',
        '8',
        '--show-prompt',
      ],
      ['Once upon a time', 'What next?'],
    );
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /template: built-in 'plain'/);
    const labels = r.out
      .split('\n')
      .filter((l) => /^\[(adapter|base)\] /.test(l))
      .map((l) => l.slice(0, l.indexOf(']') + 1));
    assert.deepEqual(labels, ['[adapter]', '[base]', '[adapter]', '[base]']);
    const p = prompts(r.err);
    assert.deepEqual(
      p.map((x) => x.side),
      ['adapter', 'base', 'adapter', 'base'],
    );
    const instruction = (q: string) => `### Instruction:\n${q}\n\n### Response:\n`;
    assert.equal(p[0].text, instruction('Once upon a time'));
    assert.equal(p[1].text, instruction('Once upon a time'));
    // Each side's second prompt continues with its own first answer.
    const answerOf = (side: string) => {
      const line = r.out.split('\n').find((l) => l.startsWith(`[${side}] `))!;
      return line.slice(side.length + 3);
    };
    for (const [i, side] of [
      [2, 'adapter'],
      [3, 'base'],
    ] as const) {
      assert.ok(
        p[i].text.startsWith(`${instruction('Once upon a time')}${answerOf(side)}`),
        `${side}: ${JSON.stringify(p[i].text)}`,
      );
      assert.ok(p[i].text.endsWith(instruction('What next?')));
    }
  });

  it('refuses --compare without an adapter, with the usage', async () => {
    const r = await runCli(['chat', STORIES, '--compare']);
    assert.equal(r.code, 1);
    assert.match(r.err, /--compare needs an adapter/);
  });
});

describe('side-by-side answers (a wide terminal)', () => {
  it('wraps at spaces, keeps line breaks, cuts words longer than a line', () => {
    assert.deepEqual(wrap('the quick brown fox jumps', 10), ['the quick', 'brown fox', 'jumps']);
    assert.deepEqual(wrap('a\nb', 10), ['a', 'b']);
    assert.deepEqual(wrap('abcdefghijklmno', 10), ['abcdefghij', 'klmno']);
  });

  it('redraws the block in place as the answers grow, and draws it whole when it outgrows the screen', () => {
    let out = '';
    const screen = { write: (s: string) => (out += s), columns: 43, rows: 10 };
    const c = new Columns(screen, ['adapter', 'base model']);
    c.add(0, 'Once upon');
    c.add(1, 'There was');
    c.finish();
    const frames = out.split(/\x1b\[\d+F\x1b\[J/);
    assert.deepEqual(frames.at(-1)!.split('\n'), [
      'adapter              │ base model',
      '──────────────────── │ ────────────────────',
      'Once upon            │ There was',
      '',
    ]);
    out = '';
    const tall = new Columns(screen, ['a', 'b']);
    tall.add(0, 'word '.repeat(60));
    assert.match(out, /longer than the screen/);
    tall.finish();
    assert.ok(out.split('\n').length > 10, 'the whole block at the end');
  });
});
