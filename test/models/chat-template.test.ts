// Where a model's chat template is found (src/models/chat-template.ts), as transformers' tokenizer loader looks:
// chat_template.jinja first, then additional_chat_templates/default.jinja, then tokenizer_config.json's
// chat_template (a string, or a list of {name, template} whose `default` is used).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadChatTemplate } from '../../src/models/chat-template';
import { SHARED, STORIES, tempDir } from '../helpers/shared';

function folder(files: Record<string, string | object>): string {
  const dir = tempDir();
  for (const [name, content] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

describe('loadChatTemplate', () => {
  it('shared models: in tokenizer_config.json (qwen3), in chat_template.jinja (gemma3), or none', () => {
    const qwen3 = loadChatTemplate(path.join(SHARED, 'models', 'tiny-random-qwen3'));
    assert.match(qwen3!, /^\{%- for message in messages %\}\{\{ '<\|im_start\|>'/);
    const gemma3 = path.join(SHARED, 'models', 'tiny-random-gemma3');
    assert.equal(loadChatTemplate(gemma3), fs.readFileSync(path.join(gemma3, 'chat_template.jinja'), 'utf8'));
    assert.equal(loadChatTemplate(STORIES), null);
  });

  it('a list of {name, template} gives the default one; only named templates give none', () => {
    const list = [
      { name: 'tool_use', template: 'TOOLS' },
      { name: 'default', template: 'DEFAULT' },
    ];
    assert.equal(loadChatTemplate(folder({ 'tokenizer_config.json': { chat_template: list } })), 'DEFAULT');
    const named = { chat_template: [{ name: 'tool_use', template: 'TOOLS' }] };
    assert.equal(loadChatTemplate(folder({ 'tokenizer_config.json': named })), null);
  });

  it('template files win over tokenizer_config.json, as in transformers', () => {
    const config = { chat_template: 'IN CONFIG' };
    assert.equal(
      loadChatTemplate(folder({ 'tokenizer_config.json': config, 'chat_template.jinja': 'IN FILE' })),
      'IN FILE',
    );
    const extra = { 'tokenizer_config.json': config, 'additional_chat_templates/default.jinja': 'EXTRA DEFAULT' };
    assert.equal(loadChatTemplate(folder(extra)), 'EXTRA DEFAULT');
    // Named files without a default replace the config's template: transformers then has no default.
    const named = { 'tokenizer_config.json': config, 'additional_chat_templates/tool_use.jinja': 'TOOLS' };
    assert.equal(loadChatTemplate(folder(named)), null);
    assert.equal(loadChatTemplate(folder({ 'tokenizer_config.json': {} })), null);
    assert.equal(loadChatTemplate(folder({})), null);
  });

  it('a damaged tokenizer_config.json or a chat_template of another type is an error naming the file', () => {
    assert.throws(
      () => loadChatTemplate(folder({ 'tokenizer_config.json': '{"chat_template": ' })),
      (e: Error & { code?: string }) => e.code === 'model/bad-tokenizer' && /tokenizer_config\.json/.test(e.message),
    );
    assert.throws(
      () => loadChatTemplate(folder({ 'tokenizer_config.json': { chat_template: 42 } })),
      /neither a string nor a list of \{name, template\}/,
    );
  });
});
