// Tokenizers from Hugging Face model folders: exact ids against references made with transformers in Python.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { Tokenizer } from '@huggingface/tokenizers';
import { loadTokenizer, MAX_WORD_CHARS, truncateLongestFirst } from '../../src/models/tokenizer';
import { LoraPlusError } from '../../src/protocol/errors';
import { writeByteLevelTokenizer } from '../helpers/byte-level';
import { readJson, SHARED, STORIES, tempDir } from '../helpers/shared';

const BERT = path.join(SHARED, 'models', 'tiny-random-bert');

describe('tokenizer: Llama BPE with byte fallback (stories260k)', () => {
  const tok = loadTokenizer(STORIES, readJson(path.join(STORIES, 'config.json')));
  const reference = readJson<{ text: string; ids_without_bos: number[] }[]>(
    path.join(STORIES, 'tokenizer_reference.json'),
  );

  it('gives the reference ids for all 7 strings', () => {
    assert.equal(reference.length, 7);
    for (const r of reference)
      assert.deepEqual(tok.encode(r.text, { addSpecialTokens: false }).ids, r.ids_without_bos, r.text);
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
    assert.deepEqual(
      tok.encode("It 's a charming JOURNEY", { addSpecialTokens: false }).ids,
      [143, 9, 51, 33, 422, 724],
    );
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
    const cases: [string, string?][] = [
      ["it 's a charming and often affecting journey .", undefined],
      ['Unflinchingly BLEAK, naïve café 東京!', 'and desperate'],
      ['ÉLAN, déjà-vu… (Ångström) "quoted" — 50% off?!', undefined], // accents, punctuation, digits
      ['zzqx ' + 'a'.repeat(101) + ' \u0000\ufffd tab\there', 'it is'], // unknown words, a word over 100 chars, control chars
      ['', 'an empty first text'],
    ];
    for (const [a, b] of cases) {
      assert.deepEqual(fromVocab.encode(a, { pair: b }), tok.encode(a, { pair: b }), `${a} | ${b}`);
      assert.deepEqual(fromVocab.encode(a, { pair: b, maxLength: 9 }), tok.encode(a, { pair: b, maxLength: 9 }));
    }
    assert.equal(fromVocab.padId, 0);
    assert.equal(fromVocab.vocabSize, 1000);
  });

  it("follows BERT's BasicTokenizer: lowercase, accents stripped, punctuation split, [UNK] past 100 characters", () => {
    const core = (text: string) => tok.encode(text, { addSpecialTokens: false }).ids;
    assert.deepEqual(core('NAÏVE Café'), core('naive cafe'));
    assert.deepEqual(core('good,bad!'), ['good', ',', 'bad', '!'].map(id));
    assert.ok(core('a'.repeat(100)).length > 1, 'a 100-character word is split into pieces');
    assert.deepEqual(core('a'.repeat(101)), [id('[UNK]')]);
    assert.deepEqual(core('東京'), [id('[UNK]'), id('[UNK]')], 'CJK characters are words of their own');
  });

  it('truncates a pair to max_length by longest_first, special tokens kept', () => {
    const e = tok.encode('a charming journey', { pair: 'it is bleak', maxLength: 7 });
    assert.deepEqual(e.ids, ['[CLS]', 'a', 'charming', '[SEP]', 'it', 'is', '[SEP]'].map(id));
    assert.deepEqual(e.typeIds, [0, 0, 0, 0, 1, 1, 1]);
    assert.deepEqual(
      tok.encode("it 's a charming journey", { maxLength: 4 }).ids,
      ['[CLS]', 'it', "'", '[SEP]'].map(id),
    );
    assert.deepEqual(tok.encode('a charming journey', { maxLength: 64 }), tok.encode('a charming journey'));
  });
});

describe('tokenizer: longest_first truncation (HF tokenizers utils/truncation.rs)', () => {
  it("gives the Rust library's lengths for every pair of its test table (max 7)", () => {
    const seq = (n: number) => Array.from({ length: n }, (_, i) => i);
    // [len A, len B] → [kept A, kept B], from truncate_encodings_longest_first.
    const table: [number, number, number, number][] = [
      [0, 0, 0, 0],
      [0, 2, 0, 2],
      [0, 4, 0, 4],
      [0, 8, 0, 7],
      [2, 0, 2, 0],
      [2, 2, 2, 2],
      [2, 4, 2, 4],
      [2, 8, 2, 5],
      [4, 0, 4, 0],
      [4, 2, 4, 2],
      [4, 4, 3, 4],
      [4, 8, 3, 4],
      [8, 0, 7, 0],
      [8, 2, 5, 2],
      [8, 4, 4, 3],
      [8, 8, 3, 4],
    ];
    for (const [a, b, ka, kb] of table) {
      const [ta, tb] = truncateLongestFirst(seq(a), seq(b), 7);
      assert.deepEqual([ta.length, tb?.length], [ka, kb], `${a}, ${b}`);
      assert.deepEqual(ta, seq(ka), 'cut from the end');
    }
    assert.deepEqual(truncateLongestFirst(seq(5), seq(5), 0), [[], []]);
    assert.deepEqual(truncateLongestFirst(seq(5), null, 3), [[0, 1, 2], null]);
  });
});

describe('tokenizer: byte-level BPE (GPT-2 and RoBERTa tokenizer.json layouts)', () => {
  const gpt2 = writeByteLevelTokenizer('gpt2');
  const roberta = writeByteLevelTokenizer('roberta');
  const ids = (vocab: Record<string, number>, tokens: string[]) => tokens.map((t) => vocab[t]);

  it('GPT-2: merges by rank over byte symbols (space → Ġ, é → Ã©), no special tokens, decodes back', () => {
    const tok = loadTokenizer(gpt2.dir);
    assert.deepEqual(tok.encode('Hello world').ids, ids(gpt2.vocab, ['Hello', 'Ġworld']));
    const e = tok.encode('the café!');
    assert.deepEqual(e.ids, ids(gpt2.vocab, ['t', 'he', 'Ġ', 'c', 'a', 'f', 'Ã', '©', '!']));
    assert.equal(tok.decode(e.ids), 'the café!');
    assert.deepEqual(tok.encode('Hello<|endoftext|> world').ids, ids(gpt2.vocab, ['Hello', '<|endoftext|>', 'Ġworld']));
    assert.deepEqual([tok.eosId, tok.padId], [gpt2.vocab['<|endoftext|>'], null]);
  });

  it('GPT-2: a pair is the two texts back to back, type ids 0 then 1 (the JS port alone drops the second)', () => {
    const e = loadTokenizer(gpt2.dir).encode('Hello world', { pair: 'the' });
    assert.deepEqual(e.ids, ids(gpt2.vocab, ['Hello', 'Ġworld', 't', 'he']));
    assert.deepEqual(e.typeIds, [0, 0, 1, 1]);
  });

  it('RoBERTa: <s> A </s> and <s> A </s></s> B </s>, type ids all 0 (as the Rust RobertaProcessing)', () => {
    const tok = loadTokenizer(roberta.dir);
    assert.deepEqual(tok.encode('Hello world').ids, ids(roberta.vocab, ['<s>', 'Hello', 'Ġworld', '</s>']));
    const e = tok.encode('Hello world', { pair: 'the café' });
    assert.deepEqual(
      e.ids,
      ids(roberta.vocab, ['<s>', 'Hello', 'Ġworld', '</s>', '</s>', 't', 'he', 'Ġ', 'c', 'a', 'f', 'Ã', '©', '</s>']),
    );
    assert.deepEqual(
      e.typeIds,
      e.ids.map(() => 0),
    );
    assert.deepEqual(
      tok.encode('Hello world', { pair: 'the', addSpecialTokens: false }).ids,
      ids(roberta.vocab, ['Hello', 'Ġworld', 't', 'he']),
    );
    // 2 + 9 text tokens into 8 − 4 specials: both cut to 2.
    assert.deepEqual(
      tok.encode('Hello world', { pair: 'the café', maxLength: 8 }).ids,
      ids(roberta.vocab, ['<s>', 'Hello', 'Ġworld', '</s>', '</s>', 't', 'he', '</s>']),
    );
    assert.deepEqual([tok.bosId, tok.eosId, tok.padId], [0, 2, 1]);
  });
});

describe('tokenizer: errors', () => {
  it('says what to do when tokenizer.json is missing', () => {
    const dir = tempDir();
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => {
        assert.ok(e instanceof LoraPlusError);
        assert.equal(e.code, 'model/no-tokenizer');
        assert.equal(e.info.file, dir);
        assert.match(e.message, /has no tokenizer\.json/);
        assert.match(e.info.hint ?? '', /Copy tokenizer\.json from the model's Hub repository/);
        return true;
      },
    );
  });

  it('names the file when tokenizer.json is not JSON', () => {
    const dir = tempDir();
    fs.writeFileSync(path.join(dir, 'tokenizer.json'), '{"version": ');
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) =>
        e instanceof LoraPlusError &&
        e.code === 'model/bad-tokenizer' &&
        e.info.file === path.join(dir, 'tokenizer.json'),
    );
  });
});

describe('tokenizer: long words', () => {
  // The library as it is, for the ids long words must keep: loadTokenizer cuts them before encoding.
  const library = (dir: string) =>
    new Tokenizer(
      readJson<Record<string, unknown>>(path.join(dir, 'tokenizer.json')),
      readJson<Record<string, unknown>>(path.join(dir, 'tokenizer_config.json')),
    );
  const sst2 = fs
    .readFileSync(path.join(SHARED, 'data', 'glue-sst2', 'dev.tsv'), 'utf8')
    .split('\n')
    .slice(1, 400)
    .map((l) => l.split('\t')[0])
    .join(' ');
  let seed = 7;
  const random = (chars: string, n: number) =>
    Array.from({ length: n }, () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return [...chars][seed % [...chars].length];
    }).join('');
  const texts = [
    sst2, // about 40,000 characters in one line
    random('abcdefghijklmnopqrstuvwxyz', 20_000), // no spaces at all
    random('ab ▁▁  .,!?0123456789', 5_000), // runs of spaces, literal ▁, digits and punctuation
    random('aéÅ東京😀🇫🇷 \u0301\t\u0000', 5_000), // accents, CJK, emoji (surrogate pairs), byte fallback
  ];

  for (const model of [
    'stories260k',
    'tiny-random-llama3',
    'tiny-random-gpt2',
    'tiny-random-gemma3',
    'tiny-random-qwen3',
  ]) {
    it(`${model}: the same ids as the library for long lines`, () => {
      const dir = path.join(SHARED, 'models', model);
      const ours = loadTokenizer(dir);
      const theirs = library(dir);
      for (const t of texts) {
        const want = theirs.encode(t, { add_special_tokens: false }).ids;
        assert.deepEqual(ours.encode(t, { addSpecialTokens: false }).ids, want, t.slice(0, 40));
      }
    });
  }

  it(`refuses a word of more than ${MAX_WORD_CHARS.toLocaleString('en-US')} characters it cannot split`, () => {
    const tok = loadTokenizer(STORIES);
    const started = Date.now();
    assert.throws(
      () => tok.encode('a'.repeat(MAX_WORD_CHARS + 1)),
      (e: unknown) => e instanceof LoraPlusError && e.code === 'data/word-too-long',
    );
    assert.ok(Date.now() - started < 5000);
    assert.equal(tok.encode('a'.repeat(MAX_WORD_CHARS - 1), { addSpecialTokens: false }).ids.length > 0, true);
  });
});
