// The config "LoRA+: New Training Config" writes: for every shared model family it must validate with every check
// (model folder, targets, positions, data columns) and no errors or warnings, with paths relative to its folder.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import { parse } from 'yaml';
import { configTemplate, relativePath } from '../../src/config/template';
import { checkConfigFile, checkConfigText } from '../../src/engine/checks/config';
import { inspectData } from '../../src/engine/checks/inspect';
import {
  chatDataOf,
  chatTemplateChoice,
  describeModel,
  guessEvalFile,
  planConfig,
} from '../../src/vscode/editor/new-config-plan';
import type { DataChoices } from '../../src/vscode/editor/new-config-plan';
import { SHARED, SST2, tempDir } from '../helpers/shared';

const TRAIN = path.join(SST2, 'train.tsv');
const DEV = path.join(SST2, 'dev.tsv');

function model(name: string) {
  const m = describeModel(path.join(SHARED, 'models', name));
  assert.ok(m.ok, `${name}: ${m.ok ? '' : m.problem.message}`);
  return m.value;
}

const CASES: [string, 'causal-lm' | 'sequence-classification'][] = [
  ['stories260k', 'causal-lm'],
  ['stories260k', 'sequence-classification'],
  ['tiny-random-gpt2', 'causal-lm'],
  ['tiny-random-bert', 'sequence-classification'],
  ['tiny-random-roberta', 'sequence-classification'],
  ['tiny-random-qwen3', 'causal-lm'],
  ['tiny-random-qwen3', 'sequence-classification'],
];

describe('config template', () => {
  for (const [name, task] of CASES) {
    test(`${name} ${task}: validates with no errors or warnings against the real model and SST-2`, () => {
      const dir = tempDir();
      const m = model(name);
      const data: DataChoices = {
        train: TRAIN,
        eval: DEV,
        evalFraction: 0,
        textField: 'sentence',
        labelField: 'label',
      };
      const text = configTemplate(planConfig(dir, m, task, data));
      const { config, problems } = checkConfigText(text, dir);
      assert.deepEqual(
        problems
          .filter((p) => p.severity === 'error' || p.severity === 'warning')
          .map((p) => `${p.line}: ${p.message}`),
        [],
        text,
      );
      assert.ok(config);
      assert.equal(config.model, m.dir);
      assert.equal(config.task, task);
      assert.deepEqual(config.lora.target_modules, m.summary.family.defaultTargets);
      assert.equal(config.training.loraplus_lr_ratio, 16);
      assert.ok(config.data.max_length <= (m.maxPositions ?? Infinity), 'max_length fits the model');
      // Written relative to the config's folder, so the folder can move with its data.
      const raw = parse(text) as { model: string; data: { train: string } };
      assert.equal(raw.model, relativePath(dir, m.dir));
      assert.ok(!path.isAbsolute(raw.model) && raw.data.train.endsWith('glue-sst2/train.tsv'));
      if (task === 'causal-lm') assert.ok(!/label_field/.test(text), 'no label for a causal LM');
    });
  }

  test('explains λ next to loraplus_lr_ratio, and every written line parses back as the config it says', () => {
    const dir = tempDir();
    const text = configTemplate(
      planConfig(dir, model('stories260k'), 'causal-lm', {
        train: TRAIN,
        eval: null,
        evalFraction: 0,
        textField: 'sentence',
      }),
    );
    const lines = text.split('\n');
    const ratio = lines.findIndex((l) => l.trim().startsWith('loraplus_lr_ratio: 16'));
    assert.ok(ratio > 0);
    assert.match(lines.slice(ratio - 2, ratio + 1).join('\n'), /λ = 2\^4 = 16 is the usual/);
    // No computed rate in a comment: it would go stale when η or λ changes (the hover computes it).
    assert.match(lines[ratio], /# λ \(hover it for both learning rates/);
    assert.doesNotMatch(text, /learning rate is [0-9]/);
    // No evaluation data: no eval_every (it would warn), and the file as written on disk checks clean too.
    assert.ok(!/eval_every/.test(text));
    const file = path.join(dir, 'stories260k.lora.yaml');
    fs.writeFileSync(file, text);
    assert.deepEqual(
      checkConfigFile(file).problems.filter((p) => p.severity !== 'hint' && p.severity !== 'info'),
      [],
    );
  });

  test('eval_fraction when there is no eval file; max_length capped at the model positions', () => {
    const dir = tempDir();
    const gpt2 = model('tiny-random-gpt2');
    const text = configTemplate(
      planConfig(dir, gpt2, 'causal-lm', { train: TRAIN, eval: null, evalFraction: 0.05, textField: 'sentence' }),
    );
    const { config, problems } = checkConfigText(text, dir);
    assert.deepEqual(
      problems.filter((p) => p.severity === 'error' || p.severity === 'warning'),
      [],
    );
    assert.equal(config!.data.eval_fraction, 0.05);
    assert.equal(config!.training.eval_every, 100);
    assert.equal(config!.data.max_length, gpt2.maxPositions); // n_positions 64 < the usual 128
  });
});

describe('config template: sft on chat data', () => {
  const CHAT = path.join(SHARED, 'data', 'sst2-chat');
  const causalLMs = fs
    .readdirSync(path.join(SHARED, 'models'))
    .map((name) => describeModel(path.join(SHARED, 'models', name)))
    .flatMap((m) => (m.ok && m.value.summary.family.tasks.includes('causal-lm') ? [m.value] : []));

  test('the shared models with a causal-LM head: all of them are covered', () => {
    const names = causalLMs.map((m) => m.name);
    for (const n of ['stories260k', 'tiny-random-gpt2', 'tiny-random-llama3', 'tiny-random-qwen3'])
      assert.ok(names.includes(n), n);
  });

  for (const name of [
    'stories260k',
    'tiny-random-gemma3',
    'tiny-random-gpt2',
    'tiny-random-llama3',
    'tiny-random-phi3',
    'tiny-random-qwen3',
  ]) {
    test(`${name} sft on messages.train.jsonl: zero problems; the model's chat template or a fallback`, (t) => {
      const m = causalLMs.find((c) => c.name === name);
      if (!m) return t.skip(`${name} is not in ../shared/models`);
      const dir = tempDir();
      const train = path.join(CHAT, 'messages.train.jsonl');
      const summary = inspectData(train);
      assert.ok(summary.ok);
      const chat = chatDataOf(summary.value);
      assert.deepEqual(chat, { format: 'messages', conversational: true });
      const data: DataChoices = {
        train,
        eval:
          guessEvalFile(
            train,
            fs.readdirSync(CHAT).map((f) => path.join(CHAT, f)),
          ) ?? null,
        evalFraction: 0,
        textField: null,
        chat: chat!,
      };
      assert.equal(data.eval, path.join(CHAT, 'messages.dev.jsonl'));
      const text = configTemplate(planConfig(dir, m, 'sft', data));
      const { config, problems } = checkConfigText(text, dir);
      assert.deepEqual(
        problems.map((p) => `${p.line}: ${p.severity} ${p.code}: ${p.message}`),
        [],
        text,
      );
      assert.ok(config);
      assert.equal(config.task, 'sft');
      assert.equal(config.data.format, 'messages');
      const own = m.chatTemplate !== null;
      // A base model without a template gets plain (chatml where the tokenizer has ChatML's tokens), with why.
      assert.equal(config.data.chat_template, own ? null : 'plain', text);
      assert.match(
        text,
        own
          ? /# chat_template is not set: the model's own chat template \(/
          : /# .* has no chat template \(a base model\): plain writes/,
      );
      assert.ok(!/text_field|label_field/.test(text), 'sft rows name their own fields');
      assert.match(text, /# Loss on the assistant's answers only/);
    });
  }

  test('prompt/completion strings: no chat template; a ChatML tokenizer without a template gets chatml', () => {
    const dir = tempDir();
    const m = causalLMs.find((c) => c.name === 'stories260k')!;
    const pc = path.join(dir, 'pc.jsonl');
    fs.writeFileSync(pc, '{"prompt": "2 + 2 =", "completion": " 4"}\n');
    const summary = inspectData(pc);
    assert.ok(summary.ok);
    const chat = chatDataOf(summary.value)!;
    assert.deepEqual(chat, { format: 'prompt_completion', conversational: false });
    const text = configTemplate(
      planConfig(dir, m, 'sft', { train: pc, eval: null, evalFraction: 0, textField: null, chat }),
    );
    assert.deepEqual(
      checkConfigText(text, dir).problems.map((p) => p.message),
      [],
      text,
    );
    assert.ok(!/chat_template/.test(text));
    assert.match(text, /# Loss on the completion only/);
    // A model folder without a template whose tokenizer has <|im_start|>/<|im_end|>: chatml.
    const qwen = causalLMs.find((c) => c.name === 'tiny-random-qwen3');
    if (qwen) {
      const copy = path.join(dir, 'qwen-base');
      fs.mkdirSync(copy);
      for (const f of ['config.json', 'model.safetensors', 'tokenizer.json'])
        fs.copyFileSync(path.join(qwen.dir, f), path.join(copy, f));
      const base = describeModel(copy);
      assert.ok(base.ok && base.value.chatTemplate === null);
      assert.deepEqual(chatTemplateChoice(base.value).template, 'chatml');
    }
  });
});
