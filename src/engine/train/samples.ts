// Eval samples for sft (eval.generate): the first N eval rows become prompts, which the model answers at each eval
// with the adapter as it is then (greedy, generate.ts), beside the data's answers. Seeing the answers change is
// what tells whether instruction tuning works; for short-label data (every reference at most 3 words, e.g.
// sentiment labels) the share of exact answers is a number to chart too.
//   prompt     the conversation up to its last assistant turn, rendered with the generation prompt, as the model
//              was trained to continue it (prompt/completion rows: the prompt)
//   reference  that assistant turn's text (or the completion)
//   output     the generated tokens up to eos or the template's end of turn, special tokens left out
import type { TrainConfig } from '../../config/schema';
import { chatTemplateSource, templateTokens } from '../../models/chat-template';
import type { TextTokenizer } from '../../models/tokenizer';
import type { Adapters, Model } from '../../models/types';
import { sameAnswer, type Sample } from '../../protocol/events';
import { detectFormat, toChatExample, type ChatExample, type Message } from '../data/chat';
import { chatTemplate, type ChatTemplate } from '../data/chat-render';
import { readRows, splitEval, type Row } from '../data/datasets';
import { generateGreedy } from './generate';
import type { ModelFolder } from './inputs';

/** References of at most this many words are labels: exact match is then a fair score of the answers. */
export const SHORT_ANSWER_WORDS = 3;

export interface SamplePrompt {
  prompt: string; // the text the model continues
  ids: number[]; // its tokens
  reference: string;
}

export interface SamplesResult {
  samples: Sample[];
  exact_match?: number;
}

export class Sampler {
  private constructor(
    readonly prompts: SamplePrompt[],
    readonly stopIds: number[],
    private readonly tok: TextTokenizer,
    private readonly maxNewTokens: number,
    private readonly padId: number,
  ) {}

  /**
   * The sampler of an sft run with eval.generate set (`count` overrides it), or null: generation off, or (`warn`
   * says which) another task, data without answers, or no eval row whose prompt fits.
   */
  static open(
    config: TrainConfig,
    folder: ModelFolder,
    o: { padId: number; maxPositions: number; count?: number; warn?: (message: string) => void },
  ): Sampler | null {
    const n = o.count ?? config.eval.generate ?? 0;
    if (n <= 0) return null;
    if (config.task !== 'sft') {
      o.warn?.(`eval.generate is ignored: it answers the prompts of sft data, and this run's task is ${config.task}`);
      return null;
    }
    const rows = evalRows(config);
    const d = config.data;
    const format = d.format === 'auto' ? detectFormat(rows[0]) : d.format;
    if (!format || format === 'text') {
      o.warn?.(`eval.generate is ignored: ${format ?? 'this'} data has no prompts and answers to compare`);
      return null;
    }
    const { tokens, special } = templateTokens(config.model);
    const model = { template: folder.chatTemplate, source: chatTemplateSource(config.model) };
    const template = chatTemplate(d.chat_template, model, tokens);
    // A prompt that fills max_length has its answer cut off in training too: such rows are skipped.
    const room = Math.min(d.max_length, o.maxPositions);
    const prompts: SamplePrompt[] = [];
    for (const row of rows) {
      if (prompts.length >= n) break;
      const p = promptOf(toChatExample(row, format, evalFile(config), d.text_field), template, folder.tokenizer);
      if (p && p.ids.length < room) prompts.push(p);
    }
    if (!prompts.length) {
      o.warn?.(`eval.generate is ignored: no eval row has a prompt shorter than max_length (${room}) and an answer`);
      return null;
    }
    const stopIds = [folder.tokenizer.eosId, template && endOfTurnId(template, folder.tokenizer, special)];
    const stops = [...new Set(stopIds.filter((id): id is number => typeof id === 'number'))];
    return new Sampler(prompts, stops, folder.tokenizer, config.eval.max_new_tokens, o.padId);
  }

  /** The model's answers with `adapters` (no dropout), and their exact match when the references are labels. */
  async answer(model: Model, adapters: Adapters): Promise<SamplesResult> {
    const ids = await generateGreedy(
      model,
      this.prompts.map((p) => p.ids),
      {
        maxNewTokens: this.maxNewTokens,
        stopIds: this.stopIds,
        padId: this.padId,
        adapters: { lora: adapters.lora, trainable: adapters.trainable, dropoutSeed: null },
      },
    );
    const samples = this.prompts.map((p, i) => ({
      prompt: p.prompt,
      reference: p.reference,
      output: this.tok.decode(ids[i], { skipSpecialTokens: true }),
    }));
    const em = exactMatch(samples);
    return em === undefined ? { samples } : { samples, exact_match: em };
  }
}

/** The prompt and reference answer of one row; null for plain text or a conversation without an answer. */
export function promptOf(ex: ChatExample, template: ChatTemplate | null, tok: TextTokenizer): SamplePrompt | null {
  const rendered = (messages: Message[], reference: string): SamplePrompt | null => {
    if (!template) return null; // conversational rows without a template fail at loading already
    const prompt = template.render(messages, true).text;
    const ids = prompt ? tok.encode(prompt, { addSpecialTokens: false }).ids : []; // the template writes them
    return { prompt, ids, reference };
  };
  switch (ex.kind) {
    case 'messages': {
      const last = ex.messages.map((m) => m.role).lastIndexOf('assistant');
      return last > 0 ? rendered(ex.messages.slice(0, last), ex.messages[last].content) : null;
    }
    case 'prompt_completion': {
      const answers = ex.completion.filter((m) => m.role === 'assistant');
      return rendered(ex.prompt, (answers.length ? answers : ex.completion).map((m) => m.content).join('\n'));
    }
    case 'prompt_completion_text': // as sft.ts tokenizes it: with the tokenizer's special tokens
      return {
        prompt: ex.prompt,
        ids: tok.encode(ex.prompt, { addSpecialTokens: true }).ids,
        reference: ex.completion,
      };
    case 'text':
      return null;
  }
}

/**
 * The special token the template closes an assistant turn with (ChatML's <|im_end|>, Llama 3's <|eot_id|>, ...), found
 * by rendering a probe conversation: the first special token right after the answer. Null when there is none.
 */
export function endOfTurnId(template: ChatTemplate, tok: TextTokenizer, special: readonly string[]): number | null {
  const answer = 'probe answer 7361';
  let text: string;
  try {
    text = template.render(
      [
        { role: 'user', content: 'probe question' },
        { role: 'assistant', content: answer },
      ],
      false,
    ).text;
  } catch {
    return null; // a template that wants another conversation shape: eos alone stops the answers
  }
  const at = text.lastIndexOf(answer);
  if (at < 0) return null;
  const rest = text.slice(at + answer.length);
  const token = special.filter((s) => s && rest.startsWith(s)).sort((a, b) => b.length - a.length)[0];
  const ids = token ? tok.encode(token, { addSpecialTokens: false }).ids : [];
  return ids.length === 1 ? ids[0] : null;
}

/** The share of answers equal to their reference (trimmed, any case), when every reference is a short label. */
export function exactMatch(samples: readonly Pick<Sample, 'reference' | 'output'>[]): number | undefined {
  const words = (s: string) => s.trim().split(/\s+/).filter(Boolean).length;
  if (!samples.length || !samples.every((s) => words(s.reference) >= 1 && words(s.reference) <= SHORT_ANSWER_WORDS))
    return undefined;
  return samples.filter((s) => sameAnswer(s.output, s.reference)).length / samples.length;
}

// ---- the eval rows, as inputs.ts reads them ---------------------------------------------------------------------

const evalFile = (config: TrainConfig): string => config.data.eval ?? config.data.train;

/** data.eval, or the rows eval_fraction holds out of data.train (the same split training makes), cut as configured. */
function evalRows(config: TrainConfig): Row[] {
  const d = config.data;
  const rows = d.eval
    ? readRows(d.eval)
    : d.eval_fraction > 0
      ? splitEval(readRows(d.train), d.eval_fraction, config.training.seed).eval
      : [];
  return d.max_eval_samples ? rows.slice(0, d.max_eval_samples) : rows;
}
