// Completion and hover in a config buffer (src/vscode/editor/suggest.ts): keys with snippets, enum values, the
// selected model's module names, the data's columns and paths, against the real shared models and SST-2.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { applyEdits } from '../../../src/config/fixes';
import { hoverAt, snippetOf, suggestionsAt } from '../../../src/vscode/editor/suggest';
import type { Suggestion } from '../../../src/vscode/editor/suggest';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const DATA_DIR = path.join(SHARED, 'data'); // the config's folder in these tests: paths are written relative to it

/** The text without its `|`, and the offset where the `|` was. */
function cursor(textWithBar: string): [string, number] {
  const at = textWithBar.indexOf('|');
  return [textWithBar.slice(0, at) + textWithBar.slice(at + 1), at];
}

function suggest(textWithBar: string, trigger?: string, dir = DATA_DIR): { text: string; items: Suggestion[] } {
  const [text, offset] = cursor(textWithBar);
  return { text, items: suggestionsAt(text, offset, dir, trigger) };
}

/** The text after accepting `s` (snippet placeholders reduced to their defaults). */
function accept(text: string, s: Suggestion): string {
  const insert = s.snippet ? s.insertText.replace(/\$\{\d+:([^}]*)\}/g, '$1').replace(/\$0/g, '') : s.insertText;
  return applyEdits(text, [{ offset: s.start, endOffset: s.end, newText: insert }]);
}

const CONFIG = `model: ../models/stories260k\ndata:\n  train: glue-sst2/train.tsv\n`;

describe('completing keys and values', () => {
  test('a key being typed: snippet with the default, replacing the word; only the name when the colon is there', () => {
    const { text, items } = suggest(`${CONFIG}training:\n  batch_size: 8\n  loraplus_|\n`);
    const ratio = items.find((s) => s.label === 'loraplus_lr_ratio')!;
    assert.equal(ratio.insertText, 'loraplus_lr_ratio: ${1:16}');
    assert.ok(ratio.snippet && /λ/.test(ratio.documentation!));
    assert.ok(!items.some((s) => s.label === 'batch_size'), 'keys already there are not offered');
    assert.match(accept(text, ratio), /\n {2}loraplus_lr_ratio: 16\n$/);
    const only = suggest(`training:\n  loraplus_lr_r|: 4\n`).items.find((s) => s.label === 'loraplus_lr_ratio')!;
    assert.deepEqual([only.insertText, only.snippet], ['loraplus_lr_ratio', false]);
    // Spaces of indentation open nothing.
    assert.deepEqual(suggest('training:\n  |', ' ').items, []);
  });

  test('enum values after the colon, the default preselected; a space is added right after the colon', () => {
    const { text, items } = suggest('training:\n  lr_scheduler:|', ':');
    assert.deepEqual(
      items.map((s) => [s.label, s.preselect ?? false]),
      [
        ['linear', true],
        ['constant', false],
        ['cosine', false],
      ],
    );
    assert.equal(accept(text, items[2]), 'training:\n  lr_scheduler: cosine');
    const typed = suggest('device: we|bgpu # backend\n');
    assert.equal(
      accept(
        typed.text,
        typed.items.find((s) => s.label === 'cpu')!,
      ),
      'device: cpu # backend\n',
    );
  });

  test('snippets escape $ and } and give a bare section a line to type on', () => {
    assert.equal(snippetOf('run_name: a$b}'), 'run_name: ${1:a\\$b\\}}');
    assert.equal(snippetOf('data:\n  train: path/to/train.jsonl'), 'data:\n  train: ${1:path/to/train.jsonl}');
    assert.equal(snippetOf('lora:'), 'lora:\n  $0');
  });
});

describe('completing from the model and the data', () => {
  test('target_modules items: the model Linear suffixes, its defaults first, those listed left out', () => {
    const { items } = suggest(`${CONFIG}lora:\n  target_modules:\n    - q_proj\n    - |\n`, ' ');
    const labels = items.map((s) => s.label);
    for (const m of ['v_proj', 'k_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])
      assert.ok(labels.includes(m), m);
    assert.ok(!labels.includes('q_proj'));
    const v = items.find((s) => s.label === 'v_proj')!;
    assert.ok(v.preselect && v.sortText!.startsWith('0'));
    assert.match(v.detail, /^5 Linears 32×64 · llama default$/); // stories260k: 5 layers, dim 64, 4 kv heads of 8
    assert.match(v.documentation!, /model\.layers\.0\.self_attn\.v_proj/);
  });

  test('target_modules of a qwen3 model: its Linears with the qwen3 defaults, not its q_norm/k_norm', () => {
    const qwen3 = 'model: ../models/tiny-random-qwen3\ndata:\n  train: glue-sst2/train.tsv\n';
    const { items } = suggest(`${qwen3}lora:\n  target_modules: [|]\n`, '[');
    const labels = items.map((s) => s.label);
    for (const m of ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'])
      assert.ok(labels.includes(m), m);
    assert.ok(!labels.some((l) => /norm/.test(l)));
    assert.match(items.find((s) => s.label === 'q_proj')!.detail, /^2 Linears 64×32 · qwen3 default$/);
    const dflt = suggest(`${qwen3}lora:\n  target_modules: |\n`).items;
    assert.ok(dflt.some((s) => s.label === '[q_proj, v_proj]'));
  });

  test('a flow list after [ or a comma; the default list right after target_modules:', () => {
    const flow = suggest(`${CONFIG}lora:\n  target_modules: [q_proj, |]\n`, ' ');
    assert.ok(flow.items.every((s) => s.kind === 'module') && flow.items.some((s) => s.label === 'v_proj'));
    const { text, items } = suggest(`${CONFIG}lora:\n  target_modules: |\n`);
    const dflt = items.find((s) => s.label === '[q_proj, v_proj]')!;
    assert.equal(accept(text, dflt), `${CONFIG}lora:\n  target_modules: [q_proj, v_proj]\n`);
    assert.ok(items.some((s) => s.label === 'all-linear'));
    // No model folder: nothing to list, and no error.
    assert.deepEqual(suggest('model: nowhere\nlora:\n  target_modules: [|]\n', '[').items, []);
  });

  test('text_field and label_field: the training file columns, the likely one first', () => {
    const text = suggest(`${CONFIG}  text_field: |\n`).items.filter((s) => s.kind === 'field');
    assert.deepEqual(
      text.map((s) => [s.label, s.preselect ?? false]),
      [
        ['sentence', true],
        ['label', false],
      ],
    );
    const label = suggest(`${CONFIG}  label_field: |\n`).items.filter((s) => s.kind === 'field');
    assert.equal(label[0].label, 'label');
  });

  test('paths relative to the config folder: model folders end the path, other folders lead on, data files listed', () => {
    const models = suggest('model: ../models/|\n', '/');
    const stories = models.items.find((s) => s.label === 'stories260k/')!;
    assert.deepEqual(
      [stories.insertText, stories.detail, stories.retrigger ?? false],
      ['stories260k', 'model folder (llama)', false],
    );
    assert.equal(accept(models.text, stories), 'model: ../models/stories260k\n');
    const top = suggest('data:\n  train: |');
    const folder = top.items.find((s) => s.label === 'glue-sst2/')!;
    assert.deepEqual([folder.insertText, folder.retrigger], ['glue-sst2/', true]);
    assert.ok(top.items.some((s) => s.label === '../'));
    const files = suggest('data:\n  train: glue-sst2/tr|');
    assert.deepEqual(
      files.items.map((s) => s.label),
      ['dev.tsv', 'test.tsv', 'train.tsv'],
    );
    assert.equal(accept(files.text, files.items[2]), 'data:\n  train: glue-sst2/train.tsv');
    // A folder for model: no data files offered.
    assert.ok(suggest(`model: ${SST2}/|`, '/').items.every((s) => s.kind === 'folder'));
  });
});

describe('hover', () => {
  test('loraplus_lr_ratio: what λ does and where to start, over the key', () => {
    const [text, offset] = cursor('training:\n  loraplus_lr_r|atio: 16 # λ\n');
    const h = hoverAt(text, offset, DATA_DIR)!;
    assert.match(h.markdown, /\*\*training\.loraplus_lr_ratio\*\*/);
    assert.match(h.markdown, /λ = 2\^4 = 16 is the usual start/);
    assert.match(h.markdown, /Default: `16`/);
    assert.equal(text.slice(h.start, h.end), 'loraplus_lr_ratio');
    assert.equal(hoverAt(text, text.indexOf('# λ') + 2, DATA_DIR), undefined); // the comment
  });

  test('learning_rate and loraplus_lr_ratio: both rates as the config stands, following each edit', () => {
    const at = (training: string, key: string) => {
      const text = `training:\n${training}`;
      return hoverAt(text, text.indexOf(key) + 2, DATA_DIR)!.markdown;
    };
    const both = '  learning_rate: 2.0e-4\n  loraplus_lr_ratio: 16\n';
    assert.match(at(both, 'loraplus_lr_ratio'), /lora_A trains at η = 0\.0002, lora_B .* = \*\*0\.0032\*\*/);
    assert.match(at(both, 'learning_rate'), /\*\*0\.0032\*\*/);
    const edited = at('  learning_rate: 5.0e-4\n  loraplus_lr_ratio: 1\n', 'loraplus_lr_ratio');
    assert.match(edited, /= \*\*0\.0005\*\* \(λ = 1: plain LoRA/);
    assert.match(at('  learning_rate: 1.0e-3\n', 'learning_rate'), /× 16 = \*\*0\.016\*\*/, 'λ by default');
    const riemannian = at('  optimizer: riemannian\n  learning_rate: 1.0e-3\n', 'learning_rate');
    assert.match(riemannian, /every tensor trains at η = 0\.001 \(no λ\)/);
    assert.match(at('  learning_rate: auto\n', 'learning_rate'), /a tune picks/);
  });

  test('model and data files: what they hold', () => {
    const [text, offset] = cursor(`mo|del: ../models/stories260k\ndata:\n  train: glue-sst2/train.tsv\n`);
    assert.match(
      hoverAt(text, offset, DATA_DIR)!.markdown,
      /\*\*stories260k\*\*: `llama` \(llama family\)[^]*default targets `q_proj`, `v_proj`[^]*512 positions \(rotary\)/,
    );
    const train = hoverAt(text, text.indexOf('train'), DATA_DIR)!;
    assert.match(train.markdown, /\*\*train\.tsv\*\*: \d+ rows · columns `sentence`, `label`/);
    assert.ok(STORIES.endsWith('stories260k'));
  });
});

describe('task sft: data.format and data.chat_template', () => {
  const QWEN = 'model: ../models/tiny-random-qwen3\ntask: sft\ndata:\n  train: sst2-chat/messages.train.jsonl\n';

  test('data.format: the formats with what a row of each looks like, auto first', () => {
    const { items } = suggest(`${QWEN}  format: |\n`);
    assert.deepEqual(
      items.map((s) => s.label),
      ['auto', 'messages', 'prompt_completion', 'alpaca', 'sharegpt', 'text'],
    );
    assert.ok(items[0].preselect);
    assert.match(items.find((s) => s.label === 'messages')!.detail, /\{"messages": \[\{"role": "user", "content"/);
    assert.match(items.find((s) => s.label === 'sharegpt')!.detail, /"conversations": \[\{"from": "human"/);
    assert.match(items.find((s) => s.label === 'alpaca')!.documentation!, /^`alpaca`: \{"instruction"/);
  });

  test('data.chat_template: the built-ins (null: the model’s own) and the .jinja files beside the config', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'mine.jinja'), '{{ messages[0].content }}');
    fs.writeFileSync(path.join(dir, 'train.jsonl'), '{"text": "x"}\n');
    const { items } = suggest('task: sft\ndata:\n  chat_template: |\n', ':', dir);
    assert.deepEqual(
      items.filter((s) => s.kind === 'value').map((s) => s.label),
      ['null', 'chatml', 'llama3', 'gemma', 'phi3', 'plain'],
    );
    assert.match(items.find((s) => s.label === 'plain')!.detail, /### Instruction/);
    assert.match(items.find((s) => s.label === 'null')!.detail, /the model's own/);
    const files = items.filter((s) => s.kind === 'file');
    assert.deepEqual(
      files.map((s) => [s.label, s.detail]),
      [['mine.jinja', 'chat template']],
    );
  });

  test('hover on data.format: the format of the training file’s first row', () => {
    const [text, offset] = cursor(`${QWEN}  for|mat: auto\n`);
    const h = hoverAt(text, offset, DATA_DIR)!.markdown;
    assert.match(h, /\*\*data\.format\*\*/);
    assert.match(
      h,
      /\*\*messages\.train\.jsonl\*\*: the first row \(line 1\) is `messages`\. (\d+) of the first \1 rows have an assistant turn/,
    );
    const tsv = cursor('task: sft\ndata:\n  train: glue-sst2/train.tsv\n  for|mat: auto\n');
    assert.match(
      hoverAt(tsv[0], tsv[1], DATA_DIR)!.markdown,
      /has none of the chat formats' fields \(its fields: sentence, label\)/,
    );
  });

  test("hover on data.chat_template: the model's own template, and the first row rendered with the loss marked", () => {
    const [text, offset] = cursor(`${QWEN}  chat_tem|plate: null\n`);
    const h = hoverAt(text, offset, DATA_DIR)!.markdown;
    assert.match(h, /The model's own template: `\.\.\/models\/tiny-random-qwen3\/tokenizer_config\.json`\./);
    assert.match(
      h,
      /messages\.train\.jsonl:1 rendered with tokenizer_config\.json; the text that carries loss is between ⟦ and ⟧/,
    );
    assert.match(h, /```text\n<\|im_start\|>system\nYou label movie reviews\.<\|im_end\|>/);
    assert.match(h, /<\|im_start\|>assistant\n(<think>\n\n<\/think>\n\n)?⟦positive<\|im_end\|>⟧/);
    // prompt/completion: the completion carries the loss (completion_only_loss), after the prompt's rendering.
    const pc =
      'model: ../models/tiny-random-phi3\ntask: sft\ndata:\n  train: sst2-chat/prompt_completion.train.jsonl\n';
    const [pcText, pcOffset] = cursor(`${pc}  chat_tem|plate: null\n`);
    const phi3 = hoverAt(pcText, pcOffset, DATA_DIR)!.markdown;
    assert.match(phi3, /The model's own template: `\.\.\/models\/tiny-random-phi3\/chat_template\.jinja`/);
    assert.match(phi3, /<\|assistant\|>\n⟦positive<\|end\|>/);
  });

  test('hover on data.chat_template of a model without one: what to set, and the built-in rendered', () => {
    const base = 'model: ../models/stories260k\ntask: sft\ndata:\n  train: sst2-chat/alpaca.train.json\n';
    const none = cursor(`${base}  chat_tem|plate: null\n`);
    assert.match(
      hoverAt(none[0], none[1], DATA_DIR)!.markdown,
      /stories260k has no chat template of its own \(no chat_template\.jinja, none in tokenizer_config\.json\): set `chat_template: plain`/,
    );
    const plain = cursor(`${base}  chat_tem|plate: plain\n`);
    const h = hoverAt(plain[0], plain[1], DATA_DIR)!.markdown;
    assert.match(h, /alpaca\.train\.json:2 rendered with built-in 'plain'/);
    assert.match(h, /### Instruction:\nClassify the sentiment of this movie review\.\nReview: that the rich promise/);
    assert.match(h, /### Response:\n⟦positive<\/s>⟧/);
  });
});
