// What "LoRA+: New Training Config" offers (src/vscode/editor/new-config-plan.ts): the model folders and data files near
// the workspace, what each model is, and guesses for columns and the evaluation split.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { inspectData } from '../../../src/engine/checks/inspect';
import {
  chatDataOf,
  chatTemplateChoice,
  defaultConfigName,
  describeModel,
  findModelsAndData,
  guessEvalFile,
  modelDescription,
  offeredTasks,
  orderColumns,
} from '../../../src/vscode/editor/new-config-plan';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

const MODELS = ['stories260k', 'tiny-random-bert', 'tiny-random-gpt2', 'tiny-random-roberta'].map((m) =>
  path.join(SHARED, 'models', m),
);

describe('finding models and data', () => {
  test('from a workspace beside ../shared: every shared model folder and SST-2, not the files inside model folders', async () => {
    const workspace = path.join(tempDir(), 'project');
    fs.mkdirSync(workspace);
    // The workspace's parent is scanned less deeply; here the parent is a temp folder, so point a root at SHARED's parent.
    const found = await findModelsAndData([
      { dir: workspace, depth: 4 },
      { dir: path.dirname(SHARED), depth: 3 },
    ]);
    for (const m of MODELS) assert.ok(found.models.includes(m), m);
    for (const f of ['train.tsv', 'dev.tsv', 'test.tsv']) assert.ok(found.data.includes(path.join(SST2, f)), f);
    assert.ok(isBefore(found.data, path.join(SST2, 'train.tsv'), path.join(SST2, 'dev.tsv')), 'training files first');
    assert.ok(!found.data.some((f) => f.startsWith(STORIES)), 'tokenizer.json, greedy_reference.json are not data');
    assert.ok(!found.data.some((f) => /vocab\.txt$/.test(f)));
  });

  test('in a project: data files yes; package.json, configs, run logs and node_modules no', async () => {
    const dir = tempDir();
    const write = (rel: string, text: string): void => {
      fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
      fs.writeFileSync(path.join(dir, rel), text);
    };
    write('data/reviews.jsonl', '{"text": "good", "label": 1}\n');
    write('data/rows.json', '[{"text": "good"}]');
    write('package.json', '{"name": "x"}');
    write('settings/labels.json', '{"a": 1}');
    write('runs/r1/metrics.jsonl', '{"type": "run_start"}\n');
    write('node_modules/pkg/data.csv', 'a,b\n');
    write('.hidden/train.csv', 'a,b\n');
    const found = await findModelsAndData([{ dir, depth: 4 }]);
    assert.deepEqual(found.data, [path.join(dir, 'data', 'reviews.jsonl'), path.join(dir, 'data', 'rows.json')]);
    assert.deepEqual(found.models, []);
  });

  test('the folder budget bounds the walk', async () => {
    const found = await findModelsAndData([{ dir: SHARED, depth: 3 }], 2);
    assert.deepEqual(found.models, []); // SHARED and one child visited: no model folder reached
  });
});

describe('what a model folder is', () => {
  test('family, tasks, default targets and positions, from config.json and the weight headers', () => {
    const gpt2 = describeModel(MODELS[2]);
    assert.ok(gpt2.ok);
    assert.deepEqual(
      [gpt2.value.modelType, gpt2.value.targets, gpt2.value.maxPositions, gpt2.value.r],
      ['gpt2', ['c_attn'], 64, 8],
    );
    assert.equal(modelDescription(gpt2.value), 'gpt2 · causal-lm, sequence-classification · targets c_attn');
    const roberta = describeModel(MODELS[3]);
    assert.ok(roberta.ok);
    assert.equal(modelDescription(roberta.value), 'roberta (bert) · sequence-classification · targets query, value');
    const notModel = describeModel(SST2);
    assert.ok(!notModel.ok);
  });

  test('qwen3: its own family and defaults; module names from the headers (q_norm/k_norm are no Linears)', () => {
    const qwen3 = describeModel(path.join(SHARED, 'models', 'tiny-random-qwen3'));
    assert.ok(qwen3.ok);
    assert.deepEqual(
      [qwen3.value.modelType, qwen3.value.targets, qwen3.value.maxPositions, qwen3.value.r],
      ['qwen3', ['q_proj', 'v_proj'], 128, 8],
    );
    assert.equal(modelDescription(qwen3.value), 'qwen3 · causal-lm, sequence-classification · targets q_proj, v_proj');
    const suffixes = new Set([...qwen3.value.summary.linears.keys()].map((n) => n.split('.').pop()));
    assert.deepEqual([...suffixes].sort(), [
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
    assert.deepEqual(qwen3.value.summary.linears.get('model.layers.1.self_attn.q_proj'), [64, 32]); // head_dim 16 · 4
  });

  test('column order: the likely text and label columns first; the dev split beside train', () => {
    assert.deepEqual(orderColumns(['idx', 'label', 'sentence'], 'text'), ['sentence', 'idx', 'label']); // the rest in file order
    assert.deepEqual(orderColumns(['sentence', 'Label'], 'label'), ['Label', 'sentence']);
    const files = ['/d/a/train.tsv', '/d/a/test.tsv', '/d/a/dev.tsv', '/d/b/dev.tsv', '/d/a/dev.jsonl'];
    assert.equal(guessEvalFile('/d/a/train.tsv', files), '/d/a/dev.tsv');
    assert.equal(guessEvalFile('/d/a/train.jsonl', ['/d/a/validation.jsonl']), '/d/a/validation.jsonl');
    assert.equal(guessEvalFile('/d/a/train.tsv', ['/d/a/devices.tsv']), undefined);
  });

  test("beside several formats' splits, the eval file is the training file's own (messages.dev for messages.train)", () => {
    const files = ['/d/c/alpaca.dev.json', '/d/c/messages.dev.jsonl', '/d/c/prompt_completion.dev.jsonl'];
    assert.equal(guessEvalFile('/d/c/messages.train.jsonl', files), '/d/c/messages.dev.jsonl');
    assert.equal(guessEvalFile('/d/c/prompt_completion.train.jsonl', files), '/d/c/prompt_completion.dev.jsonl');
    assert.equal(guessEvalFile('/d/c/other.train.jsonl', files), '/d/c/messages.dev.jsonl'); // none of its own: the first
  });

  test('the default file name never names an existing file', () => {
    const dir = tempDir();
    const m = describeModel(STORIES);
    assert.ok(m.ok);
    assert.equal(defaultConfigName(dir, m.value), 'stories260k.lora.yaml');
    fs.writeFileSync(path.join(dir, 'stories260k.lora.yaml'), '');
    assert.equal(defaultConfigName(dir, m.value), 'stories260k-2.lora.yaml');
  });
});

describe('chat data: task sft', () => {
  const CHAT = path.join(SHARED, 'data', 'sst2-chat');
  const model = (name: string) => {
    const m = describeModel(path.join(SHARED, 'models', name));
    assert.ok(m.ok);
    return m.value;
  };
  const data = (file: string) => {
    const r = inspectData(file);
    assert.ok(r.ok);
    return r.value;
  };

  test('chat data (messages, prompt/completion, sharegpt, alpaca) is detected from the first row', () => {
    for (const [file, format] of [
      ['messages.train.jsonl', 'messages'],
      ['prompt_completion.train.jsonl', 'prompt_completion'],
      ['sharegpt.train.jsonl', 'sharegpt'],
      ['alpaca.train.json', 'alpaca'],
    ])
      assert.deepEqual(chatDataOf(data(path.join(CHAT, file))), { format, conversational: true }, file);
    assert.equal(chatDataOf(data(path.join(SST2, 'train.tsv'))), null);
  });

  test('sft is offered for chat data when the family has a causal-LM head; otherwise the family decides', () => {
    const messages = data(path.join(CHAT, 'messages.train.jsonl'));
    const sst2 = data(path.join(SST2, 'train.tsv'));
    assert.deepEqual(offeredTasks(model('stories260k'), messages), ['sft']);
    assert.deepEqual(offeredTasks(model('tiny-random-gpt2'), messages), ['sft']);
    assert.deepEqual(offeredTasks(model('stories260k'), sst2), ['causal-lm', 'sequence-classification']);
    assert.deepEqual(offeredTasks(model('tiny-random-bert'), messages), ['sequence-classification']); // no LM head
  });

  test('whether the model has a chat template, and the built-in written when it has none', () => {
    assert.equal(model('stories260k').chatTemplate, null);
    assert.deepEqual(chatTemplateChoice(model('stories260k')), {
      template: 'plain',
      why:
        'stories260k has no chat template (a base model): plain writes ### Instruction / ### Response ' +
        'and eos after each answer',
    });
    const qwen3 = model('tiny-random-qwen3');
    assert.equal(qwen3.chatTemplate, path.join(qwen3.dir, 'tokenizer_config.json'));
    assert.deepEqual(chatTemplateChoice(qwen3), {
      template: null,
      why: "the model's own chat template (tokenizer_config.json)",
    });
  });
});

function isBefore(list: string[], a: string, b: string): boolean {
  return list.indexOf(a) >= 0 && list.indexOf(a) < list.indexOf(b);
}
