// Tokenizers from Hugging Face model folders: exact ids against references made with transformers in Python.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { loadTokenizer } from '../../src/models/tokenizer';
import { LoraPlusError } from '../../src/protocol/errors';
import { readJson, SHARED, STORIES, tempDir } from '../helpers/shared';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');

describe('tokenizer: Llama BPE with byte fallback (stories260k)', () => {
  const tok = loadTokenizer(STORIES, readJson(path.join(STORIES, 'config.json')));
  const reference = readJson<{ text: string; ids_without_bos: number[] }[]>(path.join(STORIES, 'tokenizer_reference.json'));

  it('gives the reference ids for all 7 strings', () => {
    assert.equal(reference.length, 7);
    for (const r of reference) assert.deepEqual(tok.encode(r.text, { addSpecialTokens: false }).ids, r.ids_without_bos, r.text);
  });

  it('prepends BOS (1) with special tokens, and that is the default', () => {
    for (const r of reference) {
      assert.deepEqual(tok.encode(r.text, { addSpecialTokens: true }).ids, [1, ...r.ids_without_bos]);
      assert.deepEqual(tok.encode(r.text).ids, [1, ...r.ids_without_bos]);
    }
  });

  it('knows its special ids and vocabulary size', () => {
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.vocabSize], [1, 2, null, 512]);
  });

  it('decodes back to the text, unicode and byte fallback included', () => {
    for (const r of reference) assert.equal(tok.decode(r.ids_without_bos), r.text);
    const ids = tok.encode('Once upon a time, there was a little girl named Lily.').ids;
    assert.equal(tok.decode(ids, { skipSpecialTokens: true }), 'Once upon a time, there was a little girl named Lily.');
    assert.equal(tok.decode([1, 403, 407, 2]), '<s> Once upon</s>');
    assert.equal(tok.decode([1, 403, 407, 2], { skipSpecialTokens: true }), 'Once upon');
  });

  it('gives type ids 0 for one text and 0/1 for a pair', () => {
    assert.deepEqual(tok.encode('Hello').typeIds, [0, 0, 0, 0]);
    const pair = tok.encode('Hello', { pair: 'world' });
    assert.deepEqual(pair.ids, [1, 346, 306, 414, 1, 263, 304, 341]);
    assert.deepEqual(pair.typeIds, [0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('reads the same tokenizer from the gpt2 and roberta folders, with their pad tokens', () => {
    const gpt2 = loadTokenizer(path.join(SHARED, 'models', 'tiny-random-gpt2'));
    const roberta = loadTokenizer(path.join(SHARED, 'models', 'tiny-random-roberta'));
    for (const r of reference) {
      assert.deepEqual(gpt2.encode(r.text, { addSpecialTokens: false }).ids, r.ids_without_bos);
      assert.deepEqual(roberta.encode(r.text, { addSpecialTokens: false }).ids, r.ids_without_bos);
    }
    assert.equal(gpt2.padId, null);
    assert.equal(roberta.padId, 0); // pad_token '<unk>' in its tokenizer_config.json
  });

  it('follows add_eos_token in tokenizer_config.json, as LlamaTokenizerFast does', () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(STORIES, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const config = readJson<Record<string, unknown>>(path.join(STORIES, 'tokenizer_config.json'));
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, add_eos_token: true }));
    assert.deepEqual(loadTokenizer(dir).encode('Hello').ids, [1, 346, 306, 414, 2]);
    fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ ...config, add_bos_token: false }));
    assert.deepEqual(loadTokenizer(dir).encode('Hello').ids, [346, 306, 414]);
  });

  it('takes special ids from config.json when the tokenizer files do not name them', () => {
    const dir = tempDir();
    fs.copyFileSync(path.join(STORIES, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
    const tok2 = loadTokenizer(dir, { bos_token_id: 1, eos_token_id: [2, 0], pad_token_id: 0 });
    assert.deepEqual([tok2.bosId, tok2.eosId, tok2.padId], [1, 2, 0]);
    assert.deepEqual([loadTokenizer(dir).bosId, loadTokenizer(dir).eosId], [null, null]);
  });
});

describe('tokenizer: BERT WordPiece (tiny-random-bert)', () => {
  const tok = loadTokenizer(BERT, readJson(path.join(BERT, 'config.json')));
  const vocab = fs.readFileSync(path.join(BERT, 'vocab.txt'), 'utf8').split('\n');
  const id = (token: string) => vocab.indexOf(token);

  it('gives [CLS] … [SEP] with ids from vocab.txt, lowercased', () => {
    const e = tok.encode("It 's a charming JOURNEY");
    assert.deepEqual(e.ids, [2, 143, 9, 51, 33, 422, 724, 3]);
    assert.deepEqual(e.ids, ['[CLS]', 'it', "'", 's', 'a', 'charming', 'journey', '[SEP]'].map(id));
    assert.deepEqual(e.typeIds, [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(tok.encode("It 's a charming JOURNEY", { addSpecialTokens: false }).ids, [143, 9, 51, 33, 422, 724]);
  });

  it('gives [CLS] A [SEP] B [SEP] with type ids 0 then 1 for a pair', () => {
    const e = tok.encode('a charming journey', { pair: 'it is' });
    assert.deepEqual(e.ids, ['[CLS]', 'a', 'charming', 'journey', '[SEP]', 'it', 'is', '[SEP]'].map(id));
    assert.deepEqual(e.typeIds, [0, 0, 0, 0, 0, 1, 1, 1]);
  });

  it('splits unknown words into ## pieces and decodes them back', () => {
    const e = tok.encode('unflinchingly');
    assert.deepEqual(e.ids.slice(0, 3), [2, id('u'), id('##n')]);
    assert.equal(tok.decode(e.ids, { skipSpecialTokens: true }), 'unflinchingly');
  });

  it('knows its special ids', () => {
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId, tok.vocabSize], [null, null, 0, 1000]);
  });

  it('builds the same tokenizer from vocab.txt when tokenizer.json is missing', () => {
    const dir = tempDir();
    for (const f of ['vocab.txt', 'tokenizer_config.json']) fs.copyFileSync(path.join(BERT, f), path.join(dir, f));
    const fromVocab = loadTokenizer(dir);
    for (const [a, b] of [["it 's a charming and often affecting journey .", undefined], ['Unflinchingly BLEAK, naïve café 東京!', 'and desperate']]) {
      assert.deepEqual(fromVocab.encode(a as string, { pair: b }), tok.encode(a as string, { pair: b }));
    }
    assert.equal(fromVocab.padId, 0);
    assert.equal(fromVocab.vocabSize, 1000);
  });
});

describe('tokenizer: errors', () => {
  it('says what to do when tokenizer.json is missing', () => {
    const dir = tempDir();
    assert.throws(() => loadTokenizer(dir), (e: unknown) => {
      assert.ok(e instanceof LoraPlusError);
      assert.equal(e.code, 'model/no-tokenizer');
      assert.equal(e.info.file, dir);
      assert.match(e.message, /has no tokenizer\.json/);
      assert.match(e.info.hint ?? '', /Copy tokenizer\.json from the model's Hub repository/);
      return true;
    });
  });

  it('names the file when tokenizer.json is not JSON', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"version": ');
    assert.throws(() => loadTokenizer(dir), (e: unknown) => e instanceof LoraPlusError && e.code === 'model/bad-tokenizer' && e.info.file === path.join(dir, 'tokenizer.json'));
  });
});
