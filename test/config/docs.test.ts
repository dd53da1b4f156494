// What completion and hover will show: docs for each key from schema.ts, the keys and values to offer at a cursor.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { completionsAt, cursorAt, docsAt, docsFor, keyCompletions, valueCompletions } from '../../src/config/docs';
import { configKeys } from '../../src/config/keys';

/** The text without its `|`, and the offset where the `|` was. */
function cursor(textWithBar: string): [string, number] {
  const at = textWithBar.indexOf('|');
  return [textWithBar.slice(0, at) + textWithBar.slice(at + 1), at];
}

describe('docs for a key', () => {
  test('every key has a description, its type in words, and a default unless it is required', () => {
    for (const k of configKeys()) {
      const d = docsFor(k.segments)!;
      assert.ok(d.description.length > 20, k.path);
      assert.ok(d.markdown.startsWith(`**${k.path}**: ${d.type}`), k.path);
      if (k.spec.kind !== 'object' && k.spec.kind !== 'marker')
        assert.ok(d.required || 'default' in d, `${k.path} needs a default`);
    }
    assert.equal(docsFor(['training', 'no_such_key']), undefined);
    assert.equal(docsFor([]), undefined);
  });

  test("loraplus_lr_ratio explains LoRA+: λ = lr_B / lr_A, 2^4 to start, the paper's gains", () => {
    const d = docsFor(['training', 'loraplus_lr_ratio'])!;
    assert.equal(d.type, 'a number > 0');
    assert.equal(d.defaultText, '16');
    assert.match(d.markdown, /λ = lr_B \/ lr_A/);
    assert.match(d.markdown, /2\^4 = 16 is the usual start/);
    assert.match(d.markdown, /up to 2× faster fine-tuning and 1–2% better accuracy/);
    assert.match(d.markdown, /Also known as: `lr_ratio`/);
    assert.match(docsFor(['training', 'loraplus_lr_embedding'])!.markdown, /embedding layer/);
  });

  test("enums list their values; required keys say so; list items get their list's docs", () => {
    assert.deepEqual(docsFor(['task'])!.values, ['causal-lm', 'sequence-classification', 'sft']);
    assert.equal(docsFor(['model'])!.required, true);
    assert.match(docsFor(['model'])!.markdown, /Required\./);
    assert.equal(docsFor(['lora', 'target_modules', 3])!.path, 'lora.target_modules');
    assert.deepEqual(docsFor(['lora', 'use_rslora'])!.values, ['true', 'false']);
  });
});

describe('completions', () => {
  test('keys of a section, less those present; sections bring their required keys', () => {
    const top = keyCompletions([], ['model']);
    assert.deepEqual(
      top.map((c) => c.label),
      ['loraplus', 'task', 'device', 'output_dir', 'run_name', 'data', 'lora', 'training', 'eval'],
    );
    assert.equal(top.find((c) => c.label === 'data')!.insertText, 'data:\n  train: path/to/train.jsonl');
    assert.equal(top.find((c) => c.label === 'data')!.kind, 'section');
    const lr = keyCompletions(['training']).find((c) => c.label === 'learning_rate')!;
    assert.deepEqual([lr.insertText, lr.detail], ['learning_rate: 0.0002', 'a number > 0 · default 0.0002']);
    assert.deepEqual(keyCompletions(['model']), []); // not a section
  });

  test('values: the default first and preselected', () => {
    const v = valueCompletions(['training', 'lr_scheduler']);
    assert.deepEqual(
      v.map((c) => [c.label, c.preselect ?? false]),
      [
        ['linear', true],
        ['constant', false],
        ['cosine', false],
      ],
    );
    assert.deepEqual(valueCompletions(['training', 'learning_rate']), []);
  });

  test('at a cursor: the section it is in, keys or values, and what is already there', () => {
    const text =
      'model: m\n' +
      'task: \n' +
      'data:\n' +
      '  train: t\n' +
      '  \n' +
      'lora:\n' +
      '  target_modules:\n' +
      '  - q_proj\n' +
      '  - \n' +
      'training:\n' +
      '  lr_scheduler: c\n';
    const at = (line: number, col: number): number =>
      text
        .split('\n')
        .slice(0, line - 1)
        .join('\n').length +
      1 +
      col -
      1;
    assert.deepEqual(cursorAt(text, at(5, 3)), { path: ['data'], position: 'key', present: ['train'] });
    assert.deepEqual(cursorAt(text, at(2, 7)), {
      path: [],
      key: 'task',
      position: 'value',
      present: ['model', 'data', 'lora', 'training'],
    });
    assert.deepEqual(cursorAt(text, at(9, 5)), {
      path: ['lora'],
      key: 'target_modules',
      position: 'item',
      present: [],
    });
    assert.deepEqual(
      completionsAt(text, at(2, 7)).map((c) => c.label),
      ['causal-lm', 'sequence-classification', 'sft'],
    );
    assert.ok(completionsAt(text, at(5, 3)).some((c) => c.label === 'text_field'));
    assert.ok(!completionsAt(text, at(5, 3)).some((c) => c.label === 'train'));
    assert.deepEqual(
      completionsAt(text, at(11, 17)).map((c) => c.label),
      ['linear', 'constant', 'cosine'],
    );
    assert.deepEqual(completionsAt(text, at(9, 5)), []); // module names come from the model (the engine's inspectModel)
  });

  test('typing a new key in a section, deeper than its parent; a buffer that is not valid YAML yet', () => {
    const [text, offset] = cursor('model: m\ntraining:\n  batch_size: 8\n  loraplus_|\n');
    assert.deepEqual(cursorAt(text, offset), { path: ['training'], position: 'key', present: ['batch_size'] });
    assert.ok(completionsAt(text, offset).some((c) => c.label === 'loraplus_lr_ratio'));
    const [broken, o2] = cursor('training:\n  seed: [1,\n  |');
    assert.equal(cursorAt(broken, o2).path[0], 'training');
  });

  test("hover: the docs of the key on the cursor's line", () => {
    const [text, offset] = cursor('model: m\ntraining:\n  lorapl|us_lr_ratio: 16\n');
    assert.equal(docsAt(text, offset)?.path, 'training.loraplus_lr_ratio');
    const [t2, o2] = cursor('model: m\ntraining:\n  loraplus_lr_ratio: 1|6\n');
    assert.equal(docsAt(t2, o2)?.path, 'training.loraplus_lr_ratio');
    const [t3, o3] = cursor('model: m\n|\n');
    assert.equal(docsAt(t3, o3), undefined);
  });
});
