// A tiny byte-level BPE tokenizer in the exact file layout the Hub's `gpt2` and `roberta-base` folders use
// (tokenizer.json + tokenizer_config.json), written to a temp folder: the 256 byte symbols of GPT-2's bytes_to_unicode,
// a handful of merges, and each model's special tokens and post-processor. ../shared's tiny-random-gpt2 and
// tiny-random-roberta ship the stories260k SentencePiece tokenizer instead, so this is what checks byte-level BPE.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTokenizer, type TextTokenizer } from '../../src/models/tokenizer';
import { tempDir } from './shared';

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards (space → Ġ). */
export function byteSymbols(): string[] {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const order: number[] = [];
  for (let b = 0; b < 256; b++) if (printable(b)) order.push(b);
  const symbols: string[] = order.map((b) => String.fromCharCode(b));
  let n = 0;
  for (let b = 0; b < 256; b++) if (!printable(b)) symbols.push(String.fromCharCode(256 + n++));
  return symbols; // in vocabulary order, as GPT-2's encoder.json lists them
}

/** Merges in rank order: "Hello", " world" and " the" become single tokens. */
export const MERGES = ['Ġ t', 'h e', 'Ġt he', 'l l', 'o r', 'Ġ w', 'Ġw or', 'l d', 'Ġwor ld', 'H e', 'He ll', 'Hell o'];

export type ByteLevelKind = 'gpt2' | 'roberta';

/** Writes the folder and returns it with its vocabulary (token → id). */
export function writeByteLevelTokenizer(kind: ByteLevelKind): { dir: string; vocab: Record<string, number> } {
  const specials = kind === 'roberta' ? ['<s>', '<pad>', '</s>', '<unk>'] : [];
  const tokens = [...specials, ...byteSymbols(), ...MERGES.map((m) => m.replace(' ', ''))];
  if (kind === 'roberta') tokens.push('<mask>');
  else tokens.push('<|endoftext|>');
  const vocab: Record<string, number> = Object.fromEntries(tokens.map((t, id) => [t, id]));
  const added = (content: string, extra: Record<string, unknown> = {}) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
    ...extra,
  });
  const byteLevel = { add_prefix_space: false, trim_offsets: true, use_regex: true };
  const spec = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens:
      kind === 'roberta'
        ? [...specials.map((t) => added(t)), added('<mask>', { lstrip: true })]
        : [added('<|endoftext|>', { normalized: true })],
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', ...byteLevel },
    post_processor:
      kind === 'roberta'
        ? { type: 'RobertaProcessing', sep: ['</s>', 2], cls: ['<s>', 0], trim_offsets: true, add_prefix_space: false }
        : { type: 'ByteLevel', ...byteLevel, trim_offsets: false },
    decoder: { type: 'ByteLevel', ...byteLevel },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: MERGES,
    },
  };
  const config =
    kind === 'roberta'
      ? {
          tokenizer_class: 'RobertaTokenizer',
          bos_token: '<s>',
          eos_token: '</s>',
          sep_token: '</s>',
          cls_token: '<s>',
          unk_token: '<unk>',
          pad_token: '<pad>',
          mask_token: '<mask>',
          add_prefix_space: false,
          model_max_length: 512,
        }
      : {
          tokenizer_class: 'GPT2Tokenizer',
          bos_token: '<|endoftext|>',
          eos_token: '<|endoftext|>',
          unk_token: '<|endoftext|>',
          add_prefix_space: false,
          model_max_length: 1024,
        };
  const dir = tempDir(`loraplus-${kind}-tokenizer-`);
  fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(spec));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(config));
  return { dir, vocab };
}

export function byteLevelTokenizer(kind: ByteLevelKind): TextTokenizer {
  return loadTokenizer(writeByteLevelTokenizer(kind).dir);
}
