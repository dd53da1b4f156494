// SFT examples against TRL 1.13 itself (../shared/reference/sft_tokenized.json: what SFTTrainer makes of the first six
// rows of sst2-chat's messages (assistant-only loss) and prompt_completion (completion-only loss) files with the
// qwen3 and gemma3 tokenizers): the same ids and the same loss tokens. And the masks found without generation tags
// (the templates stripped of them, as most Hub templates are) equal those with them, for all four chat models.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { detectFormat, toChatExample, type ChatExample } from '../../../src/engine/data/chat';
import { chatTemplate, compile } from '../../../src/engine/data/chat-render';
import { readRows } from '../../../src/engine/data/rows';
import { tokenizeSft, type SftOptions } from '../../../src/engine/data/sft';
import { chatTemplateSource, loadChatTemplate, templateTokens } from '../../../src/models/chat-template';
import { loadTokenizer } from '../../../src/models/tokenizer';
import { readJson, REFERENCE, SHARED } from '../../helpers/shared';

interface Case {
  input_ids: number[];
  labels: number[];
}
const REF = readJson<{ cases: Record<string, Record<string, Case[]>> }>(path.join(REFERENCE, 'sft_tokenized.json'));
const DATA = path.join(SHARED, 'data', 'sst2-chat');
const model = (kind: string) => path.join(SHARED, 'models', `tiny-random-${kind}`);

function setup(kind: string) {
  const dir = model(kind);
  const tok = loadTokenizer(dir);
  const { tokens, special } = templateTokens(dir);
  const template = chatTemplate(null, { template: loadChatTemplate(dir), source: chatTemplateSource(dir) }, tokens)!;
  const o: SftOptions = {
    assistantOnlyLoss: true,
    completionOnlyLoss: true,
    maxLength: 1024,
    eosToken: tokens.eos_token ?? null,
    specialTokens: special,
  };
  return { dir, tok, tokens, special, template, o };
}

function examples(format: 'messages' | 'prompt_completion', n: number): ChatExample[] {
  const file = path.join(DATA, `${format}.train.jsonl`);
  const rows = readRows(file).slice(0, n);
  const f = detectFormat(rows[0])!;
  return rows.map((r) => toChatExample(r, f, file));
}

describe('SFT examples as TRL makes them', () => {
  for (const kind of ['qwen3', 'gemma3']) {
    for (const format of ['messages', 'prompt_completion'] as const) {
      it(`${kind}, ${format}: the same input_ids and loss tokens as TRL`, () => {
        const { tok, template, o: defaults } = setup(kind);
        const o = { ...defaults, assistantOnlyLoss: format === 'messages' }; // TRL: completion-only for p/c
        const want = REF.cases[kind][format];
        const got = examples(format, want.length).map((ex) => tokenizeSft(ex, tok, template, o));
        assert.deepEqual(
          got.map((g) => g.ids),
          want.map((w) => w.input_ids),
        );
        assert.deepEqual(
          got.map((g) => g.ids.map((id, i) => (g.loss[i] ? id : -100))),
          want.map((w) => w.labels),
        );
      });
    }
  }

  for (const kind of ['qwen3', 'gemma3', 'phi3', 'llama3']) {
    it(`${kind}: without {% generation %} tags the assistant masks are the same`, () => {
      const { dir, tok, tokens, template, o } = setup(kind);
      assert.ok(template.hasGenerationTags);
      const stripped = compile(
        loadChatTemplate(dir)!.replace(/\{%-?\s*(end)?generation\s*-?%\}/g, ''),
        'stripped',
        tokens,
      );
      assert.equal(stripped.hasGenerationTags, false);
      const rows = [
        ...examples('messages', 12),
        {
          kind: 'messages' as const,
          messages: [
            { role: 'user', content: 'Classify: good' },
            { role: 'assistant', content: 'positive' },
            { role: 'user', content: 'And: dull' },
            { role: 'assistant', content: ' negative ' },
          ],
        },
      ];
      for (const ex of rows) {
        const tagged = tokenizeSft(ex, tok, template, o);
        const found = tokenizeSft(ex, tok, stripped, o);
        assert.deepEqual(found.ids, tagged.ids);
        assert.deepEqual([...found.loss], [...tagged.loss], JSON.stringify(ex));
        assert.ok(tagged.loss.includes(1));
      }
    });
  }
});
