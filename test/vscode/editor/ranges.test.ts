// The editor's side of a config's problems (src/vscode/editor/ranges.ts): which files are configs, what a problem
// links to (the model's config.json, the data file), and the quick fixes as edits that clear their problem.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { applyEdits } from '../../../src/config/fixes';
import { parseConfigText } from '../../../src/config/load';
import { checkConfigText } from '../../../src/engine/checks/config';
import {
  addMissingKeysEdit,
  configFiles,
  fixActions,
  hasConfigMarker,
  isConfigDocument,
  isConfigFileName,
  minimalEdit,
  relatedFiles,
} from '../../../src/vscode/editor/ranges';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const doc = (fileName: string, text: string, languageId = 'yaml') => ({ fileName, languageId, getText: () => text });

/** A config in a temp folder that names the shared stories260k and SST-2 by absolute path. */
function config(extra: string, model = STORIES): string {
  return `model: ${model}\ndata:\n  train: ${path.join(SST2, 'train.tsv')}\n  text_field: sentence\n${extra}`;
}

describe('which documents are configs', () => {
  test('the three file names, or any YAML with a top-level loraplus: 1', () => {
    for (const name of ['/w/sst2.lora.yaml', 'C:\\w\\x.loraplus.yaml', '/w/loraplus.yaml'])
      assert.ok(isConfigFileName(name), name);
    for (const name of [
      '/w/lora.yaml',
      '/w/loraplus.yml',
      '/w/x.lora.yaml.bak',
      '/w/config.yaml',
      '/w/myloraplus.yaml',
    ])
      assert.ok(!isConfigFileName(name), name);
    assert.ok(hasConfigMarker('# run\nloraplus: 1   # marker\nmodel: m\n'));
    assert.ok(hasConfigMarker('model: m\r\nloraplus: 1\r\n'));
    for (const text of ['data:\n  loraplus: 1\n', 'loraplus: 2\n', '# loraplus: 1\n', 'loraplus_lr_ratio: 1\n'])
      assert.ok(!hasConfigMarker(text), text);
    assert.ok(isConfigDocument(doc('/w/train.yaml', 'loraplus: 1\n')));
    assert.ok(!isConfigDocument(doc('/w/train.json', 'loraplus: 1\n', 'json')));
    assert.ok(!isConfigDocument(doc('/w/docker-compose.yaml', 'services: {}\n')));
  });

  test('the files a half-typed config names, resolved against its folder', () => {
    const files = configFiles('model: ../models/m\ndata:\n  train: d/train.tsv\n  eval: [\n', '/w/configs');
    assert.deepEqual(files, { model: path.resolve('/w/models/m'), train: path.resolve('/w/configs/d/train.tsv') });
  });
});

describe('related information', () => {
  test('a target_modules typo links to the model config.json at its model_type line', () => {
    const dir = tempDir();
    const text = config('lora:\n  target_modules: [q_proj, v_prj]\n');
    const p = checkConfigText(text, dir).problems.find((q) => q.code === 'config/unknown-module')!;
    assert.ok(p, 'the typo is found');
    const [r] = relatedFiles(p, configFiles(text, dir));
    const lines = fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8').split('\n');
    assert.equal(r.file, path.join(STORIES, 'config.json'));
    assert.match(lines[r.line], /"model_type"/);
    assert.equal(r.message, '"model_type": "llama"');
  });

  test('max_length past GPT-2 positions links to n_positions; a missing column to the data file header', () => {
    const dir = tempDir();
    const gpt2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
    const text = config('  max_length: 128\n', gpt2).replace('text_field: sentence', 'text_field: sentense');
    const problems = checkConfigText(text, dir).problems;
    const files = configFiles(text, dir);
    const positions = problems.find((q) => q.code === 'config/max-length-beyond-positions')!;
    const [r] = relatedFiles(positions, files);
    assert.match(fs.readFileSync(r.file, 'utf8').split('\n')[r.line], /"n_positions": 64/);
    const column = problems.find((q) => q.code === 'config/missing-column')!;
    assert.deepEqual(relatedFiles(column, files), [
      { file: path.join(SST2, 'train.tsv'), line: 0, message: 'the header: its columns' },
    ]);
    // A problem about the config text alone links nowhere.
    const typo = parseConfigText('model: m\nmodle: x\n', dir).problems.find((q) => q.code === 'config/unknown-key')!;
    assert.deepEqual(relatedFiles(typo, files), []);
  });
});

describe('quick fixes', () => {
  test('an unknown key: one preferred rename that clears the problem', () => {
    const dir = tempDir();
    const text = config('training:\n  loraplus_lr_raito: 16\n');
    const p = checkConfigText(text, dir).problems.find((q) => q.code === 'config/unknown-key')!;
    assert.match(p.message, /loraplus_lr_ratio/);
    const actions = fixActions(text, p);
    assert.deepEqual(
      actions.map((a) => [a.title, a.preferred]),
      [['Rename to loraplus_lr_ratio', true]],
    );
    const fixed = applyEdits(text, actions[0].edits);
    assert.match(fixed, /\n {2}loraplus_lr_ratio: 16\n/);
    assert.deepEqual(
      checkConfigText(fixed, dir).problems.filter((q) => q.severity === 'error'),
      [],
    );
  });

  test('λ below 1 offers "set to 16"; an enum typo offers its match first and every other value', () => {
    const dir = tempDir();
    const ratio = config('training:\n  loraplus_lr_ratio: 0.5\n');
    const p = checkConfigText(ratio, dir).problems.find((q) => q.code === 'config/loraplus-ratio-below-1')!;
    const [set] = fixActions(ratio, p);
    assert.equal(set.title, 'Set loraplus_lr_ratio to 16');
    assert.match(applyEdits(ratio, set.edits), /loraplus_lr_ratio: 16\n/);

    const text = config('task: sequence-classificaton # typo\n');
    const enumProblem = checkConfigText(text, dir).problems.find((q) => q.code === 'config/enum')!;
    const actions = fixActions(text, enumProblem);
    assert.deepEqual(
      actions.map((a) => [a.title, a.preferred]),
      [
        ['Change to sequence-classification', true],
        ['Change to causal-lm', false],
        ['Change to sft', false],
      ],
    );
    for (const a of actions) {
      const fixed = applyEdits(text, a.edits);
      assert.match(fixed, /\ntask: (sequence-classification|causal-lm|sft) # typo\n/);
      assert.ok(!parseConfigText(fixed, dir).problems.some((q) => q.code === 'config/enum'));
    }
  });

  test('every missing required key at once, in one edit that leaves none missing', () => {
    const dir = tempDir();
    for (const text of ['', 'task: causal-lm\n', '# my run\ntraining:\n  max_steps: 10\n']) {
      const all = addMissingKeysEdit(text, dir)!;
      assert.equal(all.title, 'Add the 2 missing required keys');
      assert.equal(all.edits.length, 1);
      const fixed = applyEdits(text, all.edits);
      assert.deepEqual(
        parseConfigText(fixed, dir).problems.filter((q) => q.code === 'config/missing-key'),
        [],
        fixed,
      );
      for (const line of text.split('\n')) assert.ok(fixed.split('\n').includes(line), `'${line}' stays`);
    }
    assert.equal(addMissingKeysEdit('model: m\n', dir), undefined); // one missing: its own fix does it
  });

  test('minimalEdit replaces only what differs', () => {
    const e = minimalEdit('a: 1\nb: 2\n', 'a: 1\nc: 3\nb: 2\n');
    assert.deepEqual([e.offset, e.endOffset, e.newText, e.line, e.col], [5, 5, 'c: 3\n', 2, 1]);
    assert.equal(applyEdits('a: 1\nb: 2\n', [e]), 'a: 1\nc: 3\nb: 2\n');
  });
});
