// A chat with a causal LM, with or without a LoRA adapter: the model loaded once, a conversation per side (the
// adapter's and, to compare, the base model's: the same weights with the adapter switched off), and answers decoded
// token by token and handed out as they come. The CLI (src/cli/chat.ts) and the engine process (chat-serve.ts,
// for the VS Code panel) both drive this. No KV cache: each token reruns the sequence, as generate.ts does, which the
// small models this runs on afford; each step's tensors are freed before the next, so nothing grows across turns
// (but the model's RoPE tables per sequence length: see runLength).
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter } from '../../adapters/peft';
import { chatTemplateSource, templateTokens } from '../../models/chat-template';
import { NO_ADAPTERS, type Adapters, type Model } from '../../models/types';
import type { ChatEnd, ChatInfo, ChatRequest, ChatSide, SamplingOptions } from '../../protocol/chat';
import { LoraPlusError } from '../../protocol/errors';
import { selectBackend } from '../backend/select';
import type { Message } from '../data/chat';
import { chatTemplate, type ChatTemplate } from '../data/chat-render';
import {
  AnswerText,
  chatStops,
  checkSampling,
  Conversation,
  eosIdsOf,
  pickToken,
  samplingDefaults,
  type Stops,
} from '../data/conversation';
import { Rng } from '../data/rng';
import { resolveModel } from '../hub/cache';
import { resolveAdapterDir, runOf } from '../runs/adapter-dirs';
import { buildModel, openModelFolder, padId, type ModelFolder } from './inputs';
import { Trainables } from './trainables';

export interface Answer {
  text: string; // as kept in the history
  reason: ChatEnd;
  tokens: number;
  promptTokens: number;
  dropped: number; // exchanges dropped from this side's history before it answered
}

export interface SayOptions {
  compare?: boolean; // the base model answers too (needs an adapter)
  /** 'sequential': each side answers in full, the adapter first; 'interleaved': a token of each in turn. */
  order?: 'sequential' | 'interleaved';
  signal?: AbortSignal; // ends the answers where they are (kept, with reason 'stopped')
  onStart?: (side: ChatSide, p: { promptTokens: number; dropped: number; prompt: string }) => void;
  onToken?: (side: ChatSide, text: string) => void;
}

/**
 * The length a sequence of n tokens runs at (the extra positions are padding, masked, after the last token, so they
 * change nothing before it): a multiple of 8, as wasm's batched-matmul kernel wants, from a short geometric ladder
 * (steps of at most ~19%). The model families cache RoPE tables per sequence length and keep them until disposed;
 * a chat that ran at every length would pile up tables (Qwen3-0.6B: 25 KB per position per length), the ladder keeps
 * them to a few dozen lengths.
 */
export function runLength(n: number, maxPositions: number): number {
  let t = 8;
  while (t < n) t = Math.max(t + 8, Math.ceil((t * 1.19) / 8) * 8);
  return Math.min(t, Math.max(n, maxPositions));
}

export class ChatSession {
  private readonly conversations: Record<ChatSide, Conversation>;
  private readonly rng: Rng;
  private disposed = false;

  private constructor(
    readonly info: ChatInfo,
    private readonly folder: ModelFolder,
    private readonly model: Model,
    private readonly weights: Trainables | null,
    private readonly template: ChatTemplate,
    private readonly stops: Stops,
    system: string | null,
  ) {
    this.conversations = { adapter: new Conversation(system), base: new Conversation(system) };
    this.rng = new Rng(info.options.seed);
  }

  /** Loads the model (a folder or cached Hub id, relative to `baseDir`) and the adapter; picks the template. */
  static async open(req: ChatRequest, o: { baseDir?: string; flag?: (k: keyof SamplingOptions) => string } = {}) {
    const baseDir = o.baseDir ?? process.cwd();
    const backend = req.device ? (await selectBackend(req.device)).backend : tf.getBackend();
    const folder = openModelFolder(resolveModel(req.model, { baseDir }));
    if (!folder.family.tasks.includes('causal-lm')) {
      throw new LoraPlusError({
        code: 'chat/not-a-decoder',
        message: `${folder.config.model_type} is an encoder with no language-model head: it cannot chat`,
        file: folder.dir,
        hint: 'Chat with a causal LM (a llama, qwen3, gemma3, phi3 or gpt2 folder).',
      });
    }
    const adapterDir = req.adapter ? resolveAdapterDir(path.resolve(baseDir, req.adapter)) : null;
    const adapter = adapterDir ? loadAdapter(adapterDir) : null; // before the model: a bad folder fails fast
    const options = checkSampling(
      { ...samplingDefaults(folder.dir), ...definedOnly(req.options ?? {}) },
      o.flag ?? ((k) => k),
    );
    const { template, note } = pickTemplate(req.template ?? null, folder, adapterDir, baseDir);
    const { tokens, special } = templateTokens(folder.dir);
    const stops = chatStops(
      template,
      folder.tokenizer,
      [...special, ...(tokens.eos_token ? [tokens.eos_token] : [])],
      eosIdsOf(folder.dir, folder.tokenizer.eosId),
    );
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    let weights: Trainables | null = null;
    try {
      weights = adapter ? Trainables.fromAdapter(model, folder.family, adapter) : null;
    } catch (err) {
      model.dispose();
      throw err;
    }
    const info: ChatInfo = {
      model: folder.dir,
      modelType: String(folder.config.model_type),
      adapter: adapterDir,
      template: template.source,
      templateNote: note,
      maxPositions: model.maxPositions,
      backend,
      options,
      stops: stops.names,
    };
    return new ChatSession(info, folder, model, weights, template, stops, req.system ?? null);
  }

  /** The side that answers when not comparing. */
  get primary(): ChatSide {
    return this.weights ? 'adapter' : 'base';
  }

  get system(): string | null {
    return this.conversations.adapter.system;
  }

  setSystem(text: string | null): void {
    for (const c of Object.values(this.conversations)) c.system = text || null;
  }

  reset(): void {
    for (const c of Object.values(this.conversations)) c.reset();
  }

  /** The messages of a side's history (system first). */
  history(side: ChatSide = this.primary): Message[] {
    return this.conversations[side].messages();
  }

  /** The prompt the model sees for `user` next, as rendered (without dropping anything). */
  renderPrompt(user: string, side: ChatSide = this.primary): string {
    return this.template.render(this.conversations[side].messages(user), true).text;
  }

  /**
   * Answers `user` on one side, or on both with `compare`; each answer joins its side's history. A side that does not
   * answer records the answer shown, so that a later comparison continues the conversation as it was seen.
   */
  async say(user: string, o: SayOptions = {}): Promise<Partial<Record<ChatSide, Answer>>> {
    if (this.disposed) throw new LoraPlusError({ code: 'chat/closed', message: 'this chat has ended' });
    if (o.compare && !this.weights) {
      throw new LoraPlusError({
        code: 'chat/no-adapter',
        message: 'there is no adapter to compare with the base model',
        hint: 'Give an adapter (--adapter DIR) to compare its answers with the base model’s.',
      });
    }
    const sides: ChatSide[] = o.compare ? ['adapter', 'base'] : [this.primary];
    const positions = this.model.maxPositions;
    // Leave room for the answer: max_new_tokens, but at most half the positions (else long chats never fit).
    const budget = positions - Math.min(this.info.options.maxNewTokens, Math.floor(positions / 2));
    const encode = (text: string) => (text ? this.folder.tokenizer.encode(text, { addSpecialTokens: false }).ids : []);
    const runs = sides.map((side) => {
      const p = this.conversations[side].prompt(user, this.template, encode, budget);
      const adapters = side === 'adapter' ? this.weights! : NO_ADAPTERS;
      return {
        side,
        p,
        decoding: new Decoding(
          p.ids,
          this.decoder((ids) => this.nextLogits(ids, adapters)),
        ),
      };
    });
    const answers: Partial<Record<ChatSide, Answer>> = {};
    const start = (r: (typeof runs)[number]) =>
      o.onStart?.(r.side, { promptTokens: r.p.ids.length, dropped: r.p.dropped, prompt: r.p.text });
    const step = async (r: (typeof runs)[number]) => {
      const text = await r.decoding.step(o.signal);
      if (text) o.onToken?.(r.side, text);
    };
    if (o.order === 'interleaved') {
      runs.forEach(start);
      while (runs.some((r) => !r.decoding.reason)) for (const r of runs) if (!r.decoding.reason) await step(r);
    } else {
      for (const r of runs) {
        start(r);
        while (!r.decoding.reason) await step(r);
      }
    }
    for (const r of runs) {
      const text = r.decoding.answer.text.trim();
      answers[r.side] = {
        text,
        reason: r.decoding.reason!,
        tokens: r.decoding.answer.tokens,
        promptTokens: r.p.ids.length,
        dropped: r.p.dropped,
      };
      this.conversations[r.side].add(user, text);
    }
    if (!o.compare) {
      const other: ChatSide = this.primary === 'adapter' ? 'base' : 'adapter';
      this.conversations[other].add(user, answers[this.primary]!.text);
    }
    return answers;
  }

  /** The logits of the next token after `ids` ([vocab], on the host). */
  async nextLogits(ids: number[], adapters: Adapters): Promise<Float32Array> {
    const n = ids.length;
    const seq = runLength(n, this.model.maxPositions);
    const last = tf.tidy(() => {
      const input = new Int32Array(seq).fill(padId(this.folder));
      input.set(ids);
      const mask = new Int32Array(seq).fill(1, 0, n);
      const x = tf.tensor2d(input, [1, seq], 'int32');
      const m = tf.tensor2d(mask, [1, seq], 'int32');
      const logits = this.model.logits({ inputIds: x, attentionMask: m, typeIds: null, labels: null }, adapters);
      return tf.reshape(tf.slice(logits, [0, n - 1, 0], [1, 1, -1]), [-1]);
    });
    try {
      return (await last.data()) as Float32Array;
    } finally {
      last.dispose();
    }
  }

  private decoder(logits: (ids: number[]) => Promise<Float32Array>): Decoder {
    const tok = this.folder.tokenizer;
    return {
      logits,
      stops: this.stops,
      options: this.info.options,
      rng: this.rng,
      maxPositions: this.model.maxPositions,
      decode: (ids) => tok.decode(ids, { skipSpecialTokens: true }),
    };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.weights?.dispose();
    this.model.dispose();
  }
}

/** What a Decoding needs of its session. */
interface Decoder {
  logits: (ids: number[]) => Promise<Float32Array>;
  stops: Stops;
  options: SamplingOptions;
  rng: Rng;
  maxPositions: number;
  decode: (ids: number[]) => string;
}

/** One side's answer being written: a token per step until a stop, the token limit or the model's positions. */
class Decoding {
  readonly answer: AnswerText;
  reason: ChatEnd | null = null;
  private readonly ids: number[];

  constructor(
    prompt: number[],
    private readonly d: Decoder,
  ) {
    this.ids = [...prompt];
    this.answer = new AnswerText(d.decode, d.stops.texts);
  }

  /** One more token; returns the text it adds (maybe none yet), or the rest of the text once the answer ended. */
  async step(signal?: AbortSignal): Promise<string> {
    const { stops, options, rng } = this.d;
    const end = (reason: ChatEnd) => {
      this.reason = reason;
      return this.answer.finish();
    };
    if (signal?.aborted) return end('stopped');
    if (this.answer.tokens >= options.maxNewTokens) return end('length');
    if (this.ids.length >= this.d.maxPositions) return end('positions');
    // Let what waits for the event loop run between tokens: a cancel over IPC, Ctrl-C, a stop.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (signal?.aborted) return end('stopped');
    const next = pickToken(await this.d.logits(this.ids), options, rng);
    if (stops.ids.has(next)) return end('eos');
    this.ids.push(next);
    const text = this.answer.push(next);
    return this.answer.stopped ? text + end('eos') : text;
  }
}

/**
 * The template: the one asked for; else the one the adapter's run trained with (its config.yaml's
 * data.chat_template); else the model's own; else the built-in 'plain' (### Instruction / ### Response).
 */
function pickTemplate(
  spec: string | null,
  folder: ModelFolder,
  adapterDir: string | null,
  baseDir: string,
): { template: ChatTemplate; note: string | null } {
  const { tokens } = templateTokens(folder.dir);
  const own = { template: folder.chatTemplate, source: chatTemplateSource(folder.dir) };
  if (spec) return { template: chatTemplate(spec, own, tokens, baseDir)!, note: null };
  const run = adapterDir ? runOf(adapterDir) : null;
  const data = run?.config.data as Record<string, unknown> | undefined;
  const trained = typeof data?.chat_template === 'string' ? data.chat_template : null;
  if (run && trained) {
    return {
      template: chatTemplate(trained, own, tokens, run.dir)!,
      note: `the template the adapter was trained with (data.chat_template of ${path.join(run.dir, 'config.yaml')})`,
    };
  }
  const template = chatTemplate(null, own, tokens);
  if (template) return { template, note: null };
  return {
    template: chatTemplate('plain', own, tokens)!,
    note: "the model has no chat template; 'plain' writes ### Instruction: / ### Response:",
  };
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as Partial<T>;
}
