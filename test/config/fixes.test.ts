// Quick fixes: each problem's machine-readable `fix`, and the text edits that carry it out in the file. Every case
// applies the edits, checks the exact new text, and validates it again to see the problem gone.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { applyEdits } from '../../src/config/fixes';
import { parseConfigText } from '../../src/config/load';
import type { LocatedProblem } from '../../src/config/load';
import type { Fix } from '../../src/config/problem';

const root = mkdtempSync(join(tmpdir(), 'loraplus-fixes-'));
mkdirSync(join(root, 'model'));
writeFileSync(join(root, 'model', 'config.json'), '{}');
writeFileSync(join(root, 'train.jsonl'), '{"text": "hello"}\n');
after(() => rmSync(root, { recursive: true, force: true }));

const BASE = 'model: ./model\ndata:\n  train: train.jsonl\n';
const problems = (text: string): LocatedProblem[] => parseConfigText(text, root).problems;

/** The one problem with `code`, its fix, and the text after its edits (which must clear it). */
function fixOf(text: string, code: string): { p: LocatedProblem; fix: Fix | undefined; fixed: string | undefined } {
  const found = problems(text).filter((p) => p.code === code);
  assert.equal(found.length, 1, `expected one ${code} in ${JSON.stringify(problems(text).map((p) => p.code))}`);
  const p = found[0];
  const fixed = p.edits ? applyEdits(text, p.edits) : undefined;
  if (fixed !== undefined)
    assert.deepEqual(
      problems(fixed).filter((q) => q.code === code && q.yamlPath === p.yamlPath),
      [],
      `still there after the fix:\n${fixed}`,
    );
  return { p, fix: p.fix, fixed };
}

describe('fixes carry data the editor needs', () => {
  test('an unknown key: replace it with the suggestion', () => {
    const { p, fix, fixed } = fixOf(`${BASE}training:\n  loraplus_lr_raito: 16  # λ\n`, 'config/unknown-key');
    assert.deepEqual(fix, { kind: 'replaceKey', title: 'Rename to loraplus_lr_ratio', with: 'loraplus_lr_ratio' });
    assert.deepEqual(
      p.edits?.map((e) => [e.line, e.col, e.endLine, e.endCol, e.newText]),
      [[5, 3, 5, 20, 'loraplus_lr_ratio']],
    );
    assert.equal(fixed, `${BASE}training:\n  loraplus_lr_ratio: 16  # λ\n`);
  });

  test('a key at the wrong level: move it into its section, creating the section when missing', () => {
    const { fix, fixed } = fixOf(`${BASE}learning_rate: 1e-4\n`, 'config/wrong-level');
    assert.deepEqual(fix, {
      kind: 'moveKey',
      title: 'Move to training.learning_rate',
      to: ['training', 'learning_rate'],
    });
    assert.equal(fixed, `${BASE}training:\n  learning_rate: 1e-4\n`);
    const into = fixOf(`learning_rate: 1e-4\n${BASE}training:\n  seed: 1\n`, 'config/wrong-level').fixed;
    assert.equal(into, `${BASE}training:\n  learning_rate: 1e-4\n  seed: 1\n`); // in schema order: before seed
    assert.equal(
      fixOf(`${BASE}lora:\n  epochs: 2\n`, 'config/wrong-level').fixed,
      `${BASE}lora:\ntraining:\n  epochs: 2\n`,
    );
  });

  test('a missing required key: add it with a placeholder, creating its section; in an empty file too', () => {
    const { p, fix, fixed } = fixOf('model: ./model\ndata:\n  text_field: sentence\n', 'config/missing-key');
    assert.deepEqual(fix, {
      kind: 'addKey',
      title: 'Add train',
      path: ['data', 'train'],
      value: 'path/to/train.jsonl',
      text: 'train: path/to/train.jsonl',
    });
    // Schema order: train first.
    assert.equal(fixed, 'model: ./model\ndata:\n  train: path/to/train.jsonl\n  text_field: sentence\n');
    assert.equal(p.yamlPath, 'data.train');
    const noSection = fixOf('# my run\nmodel: ./model\ntask: causal-lm\nlora:\n  r: 4\n', 'config/missing-key').fixed;
    assert.equal(
      noSection,
      '# my run\nmodel: ./model\ntask: causal-lm\ndata:\n  train: path/to/train.jsonl\nlora:\n  r: 4\n',
    );
    const empty = problems('').filter((q) => q.code === 'config/missing-key');
    assert.deepEqual(
      empty.map((q) => applyEdits('', q.edits ?? [])),
      ['model: path/to/model-folder\n', 'data:\n  train: path/to/train.jsonl\n'],
    );
  });

  test("the file's own indentation is kept", () => {
    const fixed = fixOf(
      'model: ./model\ndata:\n    text_field: sentence\nlora:\n    r: 4\n',
      'config/missing-key',
    ).fixed;
    assert.equal(
      fixed,
      'model: ./model\ndata:\n    train: path/to/train.jsonl\n    text_field: sentence\nlora:\n    r: 4\n',
    );
  });

  test('a misspelt enum value: the closest value', () => {
    const { fix, fixed } = fixOf(`${BASE}training:\n  lr_scheduler: cosin\n`, 'config/enum');
    assert.deepEqual(fix, { kind: 'setValue', title: 'Change to cosine', value: 'cosine' });
    assert.equal(fixed, `${BASE}training:\n  lr_scheduler: cosine\n`);
  });

  test('λ below 1 and λ = 1: set the ratio to 16', () => {
    const low = fixOf(`${BASE}training:\n  loraplus_lr_ratio: 0.5\n`, 'config/loraplus-ratio-below-1');
    assert.deepEqual(low.fix, { kind: 'setValue', title: 'Set loraplus_lr_ratio to 16', value: 16 });
    assert.equal(low.fixed, `${BASE}training:\n  loraplus_lr_ratio: 16\n`);
    const plain = fixOf(`${BASE}training:\n  loraplus_lr_ratio: 1\n`, 'config/plain-lora');
    assert.equal(plain.fix?.title, 'Use LoRA+: set loraplus_lr_ratio to 16');
    assert.equal(plain.fixed, `${BASE}training:\n  loraplus_lr_ratio: 16\n`);
  });

  test('values YAML reads differently than meant: yes, a single name, an empty value', () => {
    assert.equal(fixOf(`${BASE}lora:\n  use_rslora: yes\n`, 'config/type').fixed, `${BASE}lora:\n  use_rslora: true\n`);
    assert.equal(
      fixOf(`${BASE}lora:\n  target_modules: q_proj\n`, 'config/type').fixed,
      `${BASE}lora:\n  target_modules: [q_proj]\n`,
    );
    const empty = fixOf(`${BASE}lora:\n  r:\n  lora_alpha: 8\n`, 'config/type');
    assert.deepEqual(empty.fix, { kind: 'removeKey', title: 'Delete r to use the default (8)' });
    assert.equal(empty.fixed, `${BASE}lora:\n  lora_alpha: 8\n`);
  });

  test('out of range: the nearest allowed value at an inclusive bound, none at an open one', () => {
    assert.equal(fixOf(`${BASE}lora:\n  r: 0\n`, 'config/range').fixed, `${BASE}lora:\n  r: 1\n`);
    assert.equal(fixOf(`${BASE}  eval_fraction: 0.9\n`, 'config/range').fixed, `${BASE}  eval_fraction: 0.5\n`);
    assert.equal(fixOf(`${BASE}training:\n  learning_rate: 0\n`, 'config/range').fix, undefined);
    assert.equal(
      fixOf(`${BASE}lora:\n  target_modules: [q_proj, q_proj]\n`, 'config/duplicate').fixed,
      `${BASE}lora:\n  target_modules: [q_proj]\n`,
    );
  });

  test('a setting that is ignored: delete its line (and its comment)', () => {
    const { fix, fixed } = fixOf(
      `${BASE}training:\n  max_steps: 10\n  epochs: 3   # old\n  seed: 1\n`,
      'config/epochs-ignored',
    );
    assert.deepEqual(fix, { kind: 'removeKey', title: 'Delete epochs' });
    assert.equal(fixed, `${BASE}training:\n  max_steps: 10\n  seed: 1\n`);
  });

  test('rules add the key they need: eval data for eval_every, lora_alpha for an odd scale', () => {
    assert.equal(
      fixOf(`${BASE}training:\n  eval_every: 50\n`, 'config/no-eval-data').fixed,
      `${BASE}  eval_fraction: 0.05\ntraining:\n  eval_every: 50\n`,
    );
    assert.equal(
      fixOf(`${BASE}lora:\n  r: 256\n`, 'config/adapter-scale-unusual').fixed,
      `${BASE}lora:\n  r: 256\n  lora_alpha: 512\n`,
    );
    assert.equal(
      fixOf(`${BASE}lora:\n  r: 4\n  lora_alpha: 128\n`, 'config/adapter-scale-unusual').fixed,
      `${BASE}lora:\n  r: 4\n  lora_alpha: 8\n`,
    );
  });

  test('a flow mapping gets the fix but no edits (the editor offers none)', () => {
    const { fix, fixed } = fixOf('model: ./model\ndata: {train: train.jsonl, eval_fraction: 0.9}\n', 'config/range');
    assert.equal(fix?.kind, 'setValue');
    // A value can still be replaced.
    assert.equal(fixed, 'model: ./model\ndata: {train: train.jsonl, eval_fraction: 0.5}\n');
    const missing = fixOf('model: ./model\ndata: {text_field: x}\n', 'config/missing-key');
    assert.equal(missing.fix?.kind, 'addKey');
    assert.equal(missing.p.edits, undefined);
  });

  test('ranges come as line/col and as offsets that agree', () => {
    const text = `${BASE}training:\n  lr_scheduler: cosin\n`;
    const [p] = problems(text);
    assert.equal(text.slice(p.offset, p.endOffset), 'cosin');
    assert.deepEqual([p.line, p.col, p.endLine, p.endCol], [5, 17, 5, 22]);
  });
});
