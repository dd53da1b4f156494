// Hugging Face tokenizers: `tokenizer.json` (+ tokenizer_config.json) through @huggingface/tokenizers, a pure-JS
// port of the Rust library, so ids match what transformers' fast tokenizers give in Python. A BERT folder that
// ships only vocab.txt gets the same WordPiece tokenizer.json built in memory.
// The library splits texts into ids; the special tokens (the post-processor's template) and truncation are applied
// here, as the Rust library does them: the JS port drops the second text under a ByteLevel post-processor (GPT-2),
// gives RoBERTa's second text type id 1 (Rust: 0), and does not truncate.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { LoraPlusError } from '../protocol/errors';

export interface TextTokenizer {
  /**
   * Ids and token type ids (as the template says: BERT 0 for the first text, 1 for `pair`; RoBERTa all 0). Special
   * tokens are added unless addSpecialTokens is false. With maxLength, the texts are cut so that the whole fits,
   * special tokens included, by HF's `longest_first` (transformers' truncation=True with a fast tokenizer).
   */
  encode(
    text: string,
    opts?: { addSpecialTokens?: boolean; pair?: string; maxLength?: number },
  ): { ids: number[]; typeIds: number[] };
  decode(ids: number[], opts?: { skipSpecialTokens?: boolean }): string;
  /** One more than the largest id the tokenizer can produce (added tokens included). */
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** The pad token's id, or null when the model has none (the caller picks eos or 0, as transformers does). */
  readonly padId: number | null;
}

/** The special-token ids config.json may carry; `eos_token_id` is a list in some models (Llama 3). */
export interface SpecialTokenIds {
  bos_token_id?: number | number[] | null;
  eos_token_id?: number | number[] | null;
  pad_token_id?: number | number[] | null;
}

type Json = Record<string, unknown>;

export function loadTokenizer(modelDir: string, modelConfig?: SpecialTokenIds): TextTokenizer {
  const config = readJsonIfExists(path.join(modelDir, 'tokenizer_config.json')) ?? {};
  const specialMap = readJsonIfExists(path.join(modelDir, 'special_tokens_map.json')) ?? {};
  const jsonFile = path.join(modelDir, 'tokenizer.json');
  let spec: Json;
  if (fs.existsSync(jsonFile)) spec = readJsonIfExists(jsonFile) as Json;
  else if (fs.existsSync(path.join(modelDir, 'vocab.txt')))
    spec = wordPieceFromVocab(path.join(modelDir, 'vocab.txt'), config);
  else {
    throw new LoraPlusError({
      code: 'model/no-tokenizer',
      message: `${modelDir} has no tokenizer.json`,
      file: modelDir,
      hint:
        "Copy tokenizer.json from the model's Hub repository into this folder (for a model that only ships " +
        'tokenizer.model, run `AutoTokenizer.from_pretrained(dir).save_pretrained(dir)` in Python once to write it).',
    });
  }
  applyLlamaSpecialFlags(spec, config);

  let tok: Tokenizer;
  try {
    tok = new Tokenizer(spec, config);
  } catch (err) {
    throw new LoraPlusError(
      {
        code: 'model/bad-tokenizer',
        message: `could not build the tokenizer (${(err as Error).message})`,
        file: jsonFile,
        hint:
          'Re-download tokenizer.json from the Hub; ' +
          'this tokenizer type may not be supported by @huggingface/tokenizers.',
      },
      { cause: err },
    );
  }

  boundLongWords(tok);
  const template = templateOf(spec.post_processor, jsonFile);
  const vocab = tok.get_vocab(true);
  let vocabSize = 0;
  for (const id of vocab.values()) vocabSize = Math.max(vocabSize, id + 1);
  // The token strings in the tokenizer files name the ids; config.json's ids are the fallback.
  const special = (key: 'bos' | 'eos' | 'pad'): number | null => {
    const name = tokenName(config[`${key}_token`]) ?? tokenName(specialMap[`${key}_token`]);
    const id = name === null ? undefined : tok.token_to_id(name);
    if (id !== undefined) return id;
    const fromConfig = modelConfig?.[`${key}_token_id` as const];
    const first = Array.isArray(fromConfig) ? fromConfig[0] : fromConfig;
    return typeof first === 'number' ? first : null;
  };

  return {
    vocabSize,
    bosId: special('bos'),
    eosId: special('eos'),
    padId: special('pad'),
    encode(text, opts = {}) {
      const addSpecial = opts.addSpecialTokens ?? true;
      const pieces = opts.pair === undefined ? template.single : template.pair;
      // Each text on its own, as Rust does.
      const core = (s: string) => tok.encode(s, { add_special_tokens: false }).ids;
      let a = core(text);
      let b = opts.pair === undefined ? null : core(opts.pair);
      if (opts.maxLength !== undefined) {
        const specials = addSpecial ? pieces.reduce((n, p) => n + ('ids' in p ? p.ids.length : 0), 0) : 0;
        [a, b] = truncateLongestFirst(a, b, opts.maxLength - specials);
      }
      return assemble(pieces, a, b, addSpecial);
    },
    decode(ids, opts = {}) {
      return tok.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
    },
  };
}

// ---- long words ---------------------------------------------------------------------------------------------------

/** A word (what the pre-tokenizer hands the model) longer than this is refused: it is not text (a 10 MB blob). */
export const MAX_WORD_CHARS = 1_000_000;
/** Words up to this long go to the library's BPE whole; longer ones are cut at safe boundaries first. */
const SPLIT_ABOVE = 256;
const CACHE_SIZE = 50_000;

interface BpeModel {
  bpe(word: string): string[];
  merges: [string, string][];
  end_of_word_suffix?: string | null;
  continuing_subword_suffix?: string | null;
}

/**
 * Llama-2-style tokenizers have no pre-tokenizer, so a whole line is one BPE word, and the library's BPE (a heap
 * over one node per character, caching only words under 256 characters) took 80 s and 2.7 GB for a 10 MB line.
 * A character that no merge's right part starts with (SentencePiece's ▁, which only ever begins a token) is always
 * the start of a token: no merge can join it to what comes before. Cutting a word before such characters and
 * encoding the pieces gives exactly the same tokens, and the short pieces are cached: 10 MB now take about 5 s.
 * A piece still longer than MAX_WORD_CHARS is an error instead of minutes of work.
 */
function boundLongWords(tok: Tokenizer): void {
  const model = tok.model as unknown as Partial<BpeModel> | null;
  if (!model || typeof model.bpe !== 'function' || !Array.isArray(model.merges)) return;
  const whole = model.bpe.bind(model);
  // A suffix is added per word (to its last token or all but it), so pieces of a word would get it wrongly.
  const splittable = !model.end_of_word_suffix && !model.continuing_subword_suffix;
  const joins = new Set<number>(); // first code points of the merges' right parts
  for (const m of model.merges) if (Array.isArray(m) && typeof m[1] === 'string') joins.add(m[1].codePointAt(0) ?? -1);
  // The library's LRU cache moves an entry on every hit (a Map delete + set): half the time of a long line. A plain
  // Map, emptied when full, is read first.
  const cache = new Map<string, string[]>();
  const short = (piece: string): string[] => {
    let tokens = cache.get(piece);
    if (!tokens) {
      tokens = whole(piece);
      if (cache.size >= CACHE_SIZE) cache.clear();
      cache.set(piece, tokens);
    }
    return tokens;
  };
  model.bpe = (word: string): string[] => {
    if (word.length <= SPLIT_ABOVE) return short(word);
    const out: string[] = [];
    const piece = (from: number, to: number) => {
      if (to - from > MAX_WORD_CHARS) throw wordTooLong(to - from);
      const tokens = to - from <= SPLIT_ABOVE ? short(word.slice(from, to)) : whole(word.slice(from, to));
      for (const t of tokens) out.push(t);
    };
    if (!splittable) piece(0, word.length);
    else {
      let start = 0;
      for (let i = 1; i < word.length; i++) {
        const c = word.charCodeAt(i);
        if (c >= 0xdc00 && c <= 0xdfff) continue; // the second half of a surrogate pair is not a boundary
        if (!joins.has(word.codePointAt(i)!)) {
          piece(start, i);
          start = i;
        }
      }
      piece(start, word.length);
    }
    return out;
  };
}

function wordTooLong(chars: number): LoraPlusError {
  return new LoraPlusError({
    code: 'data/word-too-long',
    message:
      `the text holds a run of ${chars.toLocaleString('en-US')} characters that the tokenizer cannot split ` +
      `(more than ${MAX_WORD_CHARS.toLocaleString('en-US')})`,
    hint: 'This is not text a model can learn from (a blob, a minified file, a corrupted line): remove or split it.',
  });
}

// ---- special tokens and truncation, as the Rust library applies them ----------------------------------------------

/** One piece of a post-processor template: a text (A or B) or special-token ids, each with its token type id. */
type Piece = { seq: 'A' | 'B'; typeId: number } | { ids: number[]; typeId: number };
interface Template {
  single: Piece[];
  pair: Piece[];
}

/**
 * The template of tokenizer.json's post_processor: TemplateProcessing as written; BertProcessing `[CLS] A [SEP] B
 * [SEP]` (types 0/1); RobertaProcessing `<s> A </s></s> B </s>` (types all 0); ByteLevel or none: A B (types 0/1).
 * A Sequence (e.g. ByteLevel + TemplateProcessing, Llama 3) takes its last processor that adds tokens.
 */
function templateOf(pp: unknown, file: string): Template {
  const plain: Template = {
    single: [{ seq: 'A', typeId: 0 }],
    pair: [
      { seq: 'A', typeId: 0 },
      { seq: 'B', typeId: 1 },
    ],
  };
  if (!isJson(pp)) return plain;
  const bad = (what: string) =>
    new LoraPlusError({
      code: 'model/bad-tokenizer',
      message: `post_processor: ${what}`,
      file,
      hint: "Re-download tokenizer.json from the model's Hub repository.",
    });
  const tokenId = (v: unknown, key: string): number => {
    if (Array.isArray(v) && typeof v[1] === 'number') return v[1]; // [token, id]
    throw bad(`${pp.type} has no [token, id] for '${key}'`);
  };
  switch (pp.type) {
    case 'Sequence': {
      const adding = (Array.isArray(pp.processors) ? pp.processors : []).filter(
        (p) => isJson(p) && p.type !== 'ByteLevel',
      );
      return adding.length ? templateOf(adding[adding.length - 1], file) : plain;
    }
    case 'ByteLevel':
      return plain;
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const cls = (typeId: number): Piece => ({ ids: [tokenId(pp.cls, 'cls')], typeId });
      const sep = (typeId: number): Piece => ({ ids: [tokenId(pp.sep, 'sep')], typeId });
      const single: Piece[] = [cls(0), { seq: 'A', typeId: 0 }, sep(0)];
      if (pp.type === 'RobertaProcessing')
        return { single, pair: [...single, sep(0), { seq: 'B', typeId: 0 }, sep(0)] };
      return { single, pair: [...single, { seq: 'B', typeId: 1 }, sep(1)] };
    }
    case 'TemplateProcessing': {
      const specials = isJson(pp.special_tokens) ? pp.special_tokens : {};
      const pieces = (items: unknown): Piece[] =>
        (Array.isArray(items) ? items : []).map((item: unknown): Piece => {
          const special = isJson(item) && isJson(item.SpecialToken) ? item.SpecialToken : null;
          const sequence = isJson(item) && isJson(item.Sequence) ? item.Sequence : null;
          const typeId = Number((special ?? sequence)?.type_id ?? 0);
          if (sequence) return { seq: sequence.id === 'B' ? 'B' : 'A', typeId };
          const entry = special ? specials[String(special.id)] : undefined;
          if (!isJson(entry) || !Array.isArray(entry.ids))
            throw bad(`template token ${JSON.stringify(special?.id ?? item)} has no ids in special_tokens`);
          return { ids: entry.ids.map(Number), typeId };
        });
      return { single: pieces(pp.single), pair: pieces(pp.pair) };
    }
    default:
      throw bad(`type '${String(pp.type)}' is not supported`);
  }
}

function assemble(
  pieces: Piece[],
  a: number[],
  b: number[] | null,
  addSpecial: boolean,
): { ids: number[]; typeIds: number[] } {
  const ids: number[] = [];
  const typeIds: number[] = [];
  for (const p of pieces) {
    const part = 'ids' in p ? (addSpecial ? p.ids : []) : p.seq === 'A' ? a : (b ?? []);
    for (const id of part) {
      ids.push(id);
      typeIds.push(p.typeId);
    }
  }
  return { ids, typeIds };
}

/**
 * HF tokenizers' `longest_first` truncation (utils/truncation.rs) of the texts' ids to `budget` ids in all: a single
 * text keeps its first `budget`; of a pair, the shorter stays whole if the longer can take the rest, else both are
 * cut to half (the longer one, or the second if they are as long, gets the odd id). Tokens are removed from the end
 * (direction right).
 */
export function truncateLongestFirst(a: number[], b: number[] | null, budget: number): [number[], number[] | null] {
  const max = Math.max(0, budget);
  if (b === null) return [a.slice(0, max), null];
  if (a.length + b.length <= max) return [a, b];
  const swap = a.length > b.length;
  let n1 = Math.min(a.length, b.length); // the shorter text
  let n2 = n1 > max ? n1 : Math.max(n1, max - n1);
  if (n1 + n2 > max) {
    n1 = Math.floor(max / 2);
    n2 = n1 + (max % 2);
  }
  return swap ? [a.slice(0, n2), b.slice(0, n1)] : [a.slice(0, n1), b.slice(0, n2)];
}

function isJson(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readJsonIfExists(file: string): Json | null {
  if (!fs.existsSync(file)) return null;
  try {
    const v: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
    if (v && typeof v === 'object' && !Array.isArray(v)) return v as Json;
    throw new Error('expected a JSON object');
  } catch (err) {
    throw new LoraPlusError(
      {
        code: 'model/bad-tokenizer',
        message: `${path.basename(file)} is not a valid JSON object (${(err as Error).message})`,
        file,
        hint: "Re-download it from the model's Hub repository.",
      },
      { cause: err },
    );
  }
}

/** A special token in tokenizer_config.json is a string or an AddedToken object `{ content: ... }`. */
function tokenName(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return null;
}

/**
 * transformers' LlamaTokenizerFast rebuilds its post-processor from add_bos_token / add_eos_token at load time, so
 * those flags win over the template stored in tokenizer.json. Do the same, or `add_eos_token: true` would be lost.
 */
function applyLlamaSpecialFlags(spec: Json, config: Json): void {
  if (!/^(Llama|CodeLlama|Gemma)Tokenizer/.test(String(config.tokenizer_class ?? ''))) return;
  const addBos = config.add_bos_token !== false; // both default as in LlamaTokenizerFast: bos on, eos off
  const addEos = config.add_eos_token === true;
  const bos = tokenName(config.bos_token);
  const eos = tokenName(config.eos_token);
  const added = Array.isArray(spec.added_tokens) ? (spec.added_tokens as Json[]) : [];
  const idOf = (name: string | null) => added.find((t) => t.content === name)?.id;
  const bosId = idOf(bos);
  const eosId = idOf(eos);
  if ((addBos && bosId === undefined) || (addEos && eosId === undefined)) return; // leave tokenizer.json as it is
  const special = (name: string, typeId: number) => ({ SpecialToken: { id: name, type_id: typeId } });
  const seq = (id: 'A' | 'B', typeId: number) => [
    ...(addBos ? [special(bos as string, typeId)] : []),
    { Sequence: { id, type_id: typeId } },
    ...(addEos ? [special(eos as string, typeId)] : []),
  ];
  const specialTokens: Json = {};
  if (addBos) specialTokens[bos as string] = { id: bos, ids: [bosId], tokens: [bos] };
  if (addEos) specialTokens[eos as string] = { id: eos, ids: [eosId], tokens: [eos] };
  spec.post_processor = {
    type: 'TemplateProcessing',
    single: seq('A', 0),
    pair: [...seq('A', 0), ...seq('B', 1)],
    special_tokens: specialTokens,
  };
}

/** The tokenizer.json that transformers' BertTokenizerFast converter writes for a vocab.txt. */
function wordPieceFromVocab(vocabFile: string, config: Json): Json {
  const vocab: Record<string, number> = {};
  fs.readFileSync(vocabFile, 'utf8')
    .split(/\r?\n/)
    .forEach((token, id) => {
      if (token !== '' && !(token in vocab)) vocab[token] = id;
    });
  const name = (key: string, fallback: string) => tokenName(config[key]) ?? fallback;
  const [cls, sep, unk] = [name('cls_token', '[CLS]'), name('sep_token', '[SEP]'), name('unk_token', '[UNK]')];
  for (const token of [cls, sep, unk]) {
    if (!(token in vocab)) {
      throw new LoraPlusError({
        code: 'model/bad-tokenizer',
        message: `vocab.txt has no '${token}' token, so it cannot be read as a BERT WordPiece vocabulary`,
        file: vocabFile,
        hint: "Copy tokenizer.json from the model's Hub repository into the folder.",
      });
    }
  }
  const specials = [name('pad_token', '[PAD]'), unk, cls, sep, name('mask_token', '[MASK]')].filter((t) => t in vocab);
  const added = specials.map((content) => ({
    id: vocab[content],
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const special = (id: string, typeId: number) => ({ SpecialToken: { id, type_id: typeId } });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: 'BertNormalizer',
      clean_text: true,
      handle_chinese_chars: true,
      strip_accents: config.strip_accents ?? null,
      lowercase: config.do_lower_case !== false,
    },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [special(cls, 0), { Sequence: { id: 'A', type_id: 0 } }, special(sep, 0)],
      pair: [
        special(cls, 0),
        { Sequence: { id: 'A', type_id: 0 } },
        special(sep, 0),
        { Sequence: { id: 'B', type_id: 1 } },
        special(sep, 1),
      ],
      special_tokens: {
        [cls]: { id: cls, ids: [vocab[cls]], tokens: [cls] },
        [sep]: { id: sep, ids: [vocab[sep]], tokens: [sep] },
      },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: unk, continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}
