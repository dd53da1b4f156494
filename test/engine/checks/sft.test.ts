// Task sft's config checks (engine/checks/sft.ts, sft-template.ts) against the shared chat data and models: what a
// run would stop on while building its data set (a format the rows are not, no chat template, a template that does
// not parse or fails on a row, assistant_only_loss with nothing to learn) is an error at the key to change, found
// from the first rows; keys the rows' format ignores are warnings. inspectData reports the detected chat format.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { LocatedProblem } from '../../../src/config/load';
import { checkConfigText } from '../../../src/engine/checks/config';
import { inspectData } from '../../../src/engine/checks/inspect';
import { PACKING_UNSUPPORTED } from '../../../src/engine/checks/sft';
import { lackingNames } from '../../../src/engine/checks/sft-template';
import { SHARED, tempDir } from '../../helpers/shared';

const CHAT = path.join(SHARED, 'data', 'sst2-chat');
const model = (name: string): string => path.join(SHARED, 'models', name);
const skip = !fs.existsSync(CHAT) && 'needs ../shared (sst2-chat and the tiny models)';

let dir: string;
before(() => {
  dir = tempDir('loraplus-sft-check-');
  const write = (name: string, text: string) => fs.writeFileSync(path.join(dir, name), text);
  const msg = (...turns: [string, string][]) =>
    JSON.stringify({ messages: turns.map(([role, content]) => ({ role, content })) });
  write('no-answers.jsonl', `${msg(['user', 'hi'], ['user', 'again'])}\n${msg(['system', 's'], ['user', 'x'])}\n`);
  write('some.jsonl', `${msg(['user', 'hi'], ['assistant', 'yo'])}\n${msg(['user', 'x'])}\n{"messages": "oops"}\n`);
  write('text.jsonl', '{"text": "hello world"}\n');
  write('pc.jsonl', '{"prompt": "Q", "completion": "A"}\n');
  write('sentences.jsonl', '{"sentence": "a fine film", "label": 1}\n');
  write('broken.jinja', '{% for m in messages %}\n{{ m.role }}: {{ m.content }\n{% endfor %}\n');
  write('named.jinja', "{% for message in messages %}{{ message['name'] + ': ' + message.content }}{% endfor %}");
  write('tools.jinja', '{% for t in tools %}{{ t }}{% endfor %}{% for m in messages %}{{ m.content }}{% endfor %}');
  write(
    'drops.jinja',
    "{% for m in messages %}{% if m.role == 'assistant' %}OK{% else %}{{ m.content }}{% endif %}{% endfor %}",
  );
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

/** The problems of an sft config for `modelName` (relative paths from the temp folder). */
function check(modelName: string, data: string, extra = ''): LocatedProblem[] {
  const text = `model: ${model(modelName)}\ntask: sft\ndata:\n${data}${extra}`;
  return checkConfigText(text, dir).problems;
}
const brief = (ps: LocatedProblem[]) => ps.map((p) => [p.severity, p.code, p.yamlPath]);
const train = (f: string) => `  train: ${f}\n`;

describe('inspectData: the chat format of the first row', { skip }, () => {
  it('each shared format is detected, with how many sampled rows have an assistant turn', () => {
    for (const [file, format] of [
      ['messages.train.jsonl', 'messages'],
      ['prompt_completion.train.jsonl', 'prompt_completion'],
      ['sharegpt.train.jsonl', 'sharegpt'],
      ['alpaca.train.json', 'alpaca'],
    ]) {
      const r = inspectData(path.join(CHAT, file));
      assert.ok(r.ok && r.value.chat, file);
      const { chat } = r.value;
      assert.equal(chat.format, format, file);
      assert.ok(chat.turns?.conversational && chat.turns.rows === chat.sample.length, file);
      assert.equal(chat.turns.withAssistant, chat.turns.rows, file);
      assert.equal(chat.sample[0].line, file.endsWith('.json') ? 2 : 1, file); // a .json array starts on line 2
    }
    const tsv = inspectData(path.join(SHARED, 'data', 'glue-sst2', 'dev.tsv'));
    assert.ok(tsv.ok && tsv.value.chat);
    assert.equal(tsv.value.chat.format, null); // sentence, label: none of the chat formats
  });

  it('rows without an assistant turn are counted; the first is named', () => {
    const r = inspectData(path.join(dir, 'some.jsonl'));
    assert.ok(r.ok && r.value.chat?.turns);
    const t = r.value.chat.turns;
    assert.deepEqual([t.rows, t.withAssistant, t.without?.line, t.bad?.at.line], [2, 1, 2, 3]);
  });
});

describe('the rows: format and loss switches', { skip }, () => {
  it('every shared model with a causal-LM head checks clean on every shared format', () => {
    const plain = ['stories260k', 'tiny-random-gpt2']; // no chat template of their own
    const models = ['stories260k', 'tiny-random-gpt2', 'tiny-random-llama3', 'tiny-random-qwen3', 'tiny-random-phi3'];
    for (const m of [...models, 'tiny-random-gemma3'])
      for (const f of [
        'messages.train.jsonl',
        'prompt_completion.train.jsonl',
        'sharegpt.train.jsonl',
        'alpaca.train.json',
      ]) {
        const t = plain.includes(m) ? '  chat_template: plain\n' : '';
        assert.deepEqual(brief(check(m, train(path.join(CHAT, f)), `${t}  max_length: 64\n`)), [], `${m} ${f}`);
      }
  });

  it('data.format the first row is not: an error at data.format, with the fix to the detected format', () => {
    const [p] = check('tiny-random-qwen3', train(path.join(CHAT, 'messages.train.jsonl')), '  format: sharegpt\n');
    assert.deepEqual(
      [p.severity, p.code, p.yamlPath, p.at],
      ['error', 'data/chat-format-mismatch', 'data.format', 'value'],
    );
    assert.match(
      p.message,
      /messages\.train\.jsonl:1: data\.format is sharegpt, but the first row is not \(its fields: messages\): it is/,
    );
    assert.deepEqual(p.fix, { kind: 'setValue', title: 'Set format to messages', value: 'messages' });
  });

  it('rows of no chat format: an error that says how to name a text column', () => {
    const [p] = check('tiny-random-qwen3', train('sentences.jsonl'), '  text_field: sentence\n');
    assert.deepEqual([p.code, p.yamlPath], ['data/unknown-format', 'data.format']);
    assert.match(
      p.message,
      /sentences\.jsonl:1: the first row of the training data has none of the fields of a chat format \(its/,
    );
    assert.deepEqual(p.fix, {
      kind: 'addKey',
      title: 'Set format: text',
      path: ['data', 'format'],
      value: 'text',
      text: 'format: text',
    });
    assert.deepEqual(
      brief(check('tiny-random-qwen3', train('sentences.jsonl'), '  format: text\n  text_field: sentence\n')),
      [],
    );
  });

  it('a later row that is not of the format: an error at data.train with its line', () => {
    const ps = check('tiny-random-qwen3', train('some.jsonl'));
    const bad = ps.find((p) => p.code === 'data/bad-chat-row')!;
    assert.deepEqual([bad.severity, bad.yamlPath], ['error', 'data.train']);
    assert.match(bad.message, /some\.jsonl:3: this messages row has no list of messages/);
    const without = ps.find((p) => p.code === 'data/rows-without-assistant')!;
    assert.equal(without.severity, 'info');
    assert.match(
      without.message,
      /some\.jsonl:2: this row of the first 2 rows has no assistant turn: it carries no loss and is dropped/,
    );
  });

  it('no assistant turn in any row: an error at assistant_only_loss (on by default), fixed by training on all', () => {
    const [p] = check('tiny-random-qwen3', train('no-answers.jsonl'));
    assert.deepEqual(
      [p.severity, p.code, p.yamlPath, p.at],
      ['error', 'data/no-assistant-turns', 'data.assistant_only_loss', 'parent'],
    );
    assert.match(
      p.message,
      /none of the first 2 rows of .*no-answers\.jsonl has an assistant turn \(roles: user, system\)/,
    );
    assert.match(p.message, /on by default for conversations/);
    assert.equal(p.fix?.kind === 'addKey' && p.fix.text, 'assistant_only_loss: false');
    assert.deepEqual(
      brief(check('tiny-random-qwen3', train('no-answers.jsonl'), '  assistant_only_loss: false\n')),
      [],
    );
  });

  it('assistant_only_loss on plain text or prompt/completion strings is an error, as TRL refuses it', () => {
    for (const f of ['text.jsonl', 'pc.jsonl']) {
      const [p] = check('tiny-random-qwen3', train(f), '  assistant_only_loss: true\n');
      assert.deepEqual(
        [p.severity, p.code, p.yamlPath],
        ['error', 'config/assistant-only-loss-not-conversational', 'data.assistant_only_loss'],
        f,
      );
      assert.match(p.message, /TRL's SFTTrainer refuses this too/);
      assert.deepEqual(p.fix, { kind: 'removeKey', title: 'Delete assistant_only_loss' });
    }
  });

  it("keys the rows' format ignores are warnings at the key: completion_only_loss, chat_template, text_field", () => {
    const ps = check(
      'tiny-random-qwen3',
      train('text.jsonl'),
      '  chat_template: chatml\n  completion_only_loss: true\n',
    );
    assert.deepEqual(
      ps.map((p) => [p.severity, p.code, p.yamlPath, p.message]),
      [
        [
          'warning',
          'config/ignored-for-format',
          'data.chat_template',
          'chat_template is ignored for plain text rows: only conversations are rendered with a chat template',
        ],
        [
          'warning',
          'config/ignored-for-format',
          'data.completion_only_loss',
          'completion_only_loss is ignored for plain text rows: it picks the completion of prompt/completion rows',
        ],
      ],
    );
    const [t] = check('tiny-random-qwen3', train(path.join(CHAT, 'messages.train.jsonl')), '  text_field: sentence\n');
    assert.deepEqual([t.code, t.yamlPath], ['config/ignored-for-format', 'data.text_field']);
  });

  it('the evaluation file is checked too', () => {
    const ps = check('tiny-random-qwen3', train(path.join(CHAT, 'messages.train.jsonl')), `  eval: sentences.jsonl\n`);
    assert.deepEqual(brief(ps), [['error', 'data/unknown-format', 'data.eval']]);
  });
});

describe('the chat template', { skip }, () => {
  const messages = train(path.join(CHAT, 'messages.train.jsonl'));

  it('conversations with a model without a template: an error at data.chat_template naming the fix', () => {
    const [p] = check('stories260k', messages);
    assert.deepEqual(
      [p.severity, p.code, p.yamlPath, p.at],
      ['error', 'config/no-chat-template', 'data.chat_template', 'parent'],
    );
    assert.match(p.message, /but stories260k has no chat template to render them/);
    assert.match(p.hint!, /^Set data\.chat_template: plain\/chatml\/llama3\/gemma\/phi3, or a \.jinja file/);
    assert.deepEqual(p.fix, {
      kind: 'addKey',
      title: 'Set chat_template to plain',
      path: ['data', 'chat_template'],
      value: 'plain',
      text: 'chat_template: plain',
    });
    // Prompt/completion strings need no template.
    assert.deepEqual(brief(check('stories260k', train('pc.jsonl'))), []);
  });

  it("a template file that does not parse: an error with the template's line", () => {
    const [p] = check('tiny-random-qwen3', messages, '  chat_template: broken.jinja\n');
    assert.deepEqual(
      [p.severity, p.code, p.yamlPath, p.at],
      ['error', 'config/chat-template', 'data.chat_template', 'value'],
    );
    assert.match(p.message, /broken\.jinja:2: the chat template does not parse/);
  });

  it('a template that reads what the rows lack: the error at data.chat_template with the row and the names', () => {
    for (const [file, names] of [
      ['named.jinja', "message['name']"],
      ['tools.jinja', '`tools`'],
    ]) {
      const [p] = check('tiny-random-qwen3', messages, `  chat_template: ${file}\n`);
      assert.deepEqual(
        [p.severity, p.code, p.yamlPath],
        ['error', 'data/chat-template-row', 'data.chat_template'],
        file,
      );
      assert.match(
        p.message,
        new RegExp(`messages\\.train\\.jsonl:1: the chat template \\(${file.replace('.', '\\.')}\\) fails on this row`),
      );
      assert.ok(p.hint!.startsWith(`The template reads ${names}, which the rows do not have`), p.hint);
    }
  });

  it('a template that rewrites the answers: a warning (with assistant_only_loss they carry no loss)', () => {
    const [p] = check('tiny-random-qwen3', messages, '  chat_template: drops.jinja\n');
    assert.deepEqual([p.severity, p.code], ['warning', 'data/chat-template-drops-answers']);
  });

  it('a built-in template whose markers the tokenizer lacks: an info that names the one that suits', () => {
    const [p] = check('stories260k', messages, '  chat_template: chatml\n');
    assert.deepEqual([p.severity, p.code], ['info', 'config/chat-template-tokens']);
    assert.match(p.message, /writes <\|im_start\|> <\|im_end\|>, which stories260k's tokenizer does not have/);
    assert.equal(p.hint, 'plain suits this tokenizer.');
  });

  it('lackingNames: message keys the loop reads and optional context names', () => {
    const t =
      "{% for m in messages %}{{ m['role'] }}{{ m.name }}{{ m.content.strip() }}{% endfor %}{% if tools %}{% endif %}";
    assert.deepEqual(lackingNames(t, [{ role: 'user', content: 'x' }]), ["message['name']", '`tools`']);
  });
});

describe('packing', { skip }, () => {
  it('packing with a family that cannot pack is an error at data.packing; every family packs today', () => {
    const data = `${train(path.join(CHAT, 'messages.train.jsonl'))}  packing: true\n`;
    assert.deepEqual(brief(check('tiny-random-qwen3', data)), []);
    PACKING_UNSUPPORTED.qwen3 = 'its attention takes no segment ids';
    try {
      const [p] = check('tiny-random-qwen3', data);
      assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/packing-unsupported', 'data.packing']);
      assert.equal(p.message, 'the qwen3 family cannot pack rows: its attention takes no segment ids');
    } finally {
      delete PACKING_UNSUPPORTED.qwen3;
    }
  });
});
