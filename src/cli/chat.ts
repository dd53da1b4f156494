// `loraplus chat MODEL`: a terminal chat with a model, with or without a LoRA adapter. The conversation is rendered
// with the chat template (src/engine/train/chat-session.ts picks it) and grows turn by turn; answers stream as they
// are generated. `--compare` asks the base model too (the adapter switched off), each side with its own history:
// one answer after the other, labelled, or side by side on a wide terminal.
// Without a TTY (piped stdin) it reads one message or command per line and prints only the answers on stdout
// (`[adapter] …` and `[base] …` lines with --compare); notices and --show-prompt go to stderr.
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { BUILT_IN_TEMPLATES } from '../engine/data/chat-render';
import { ChatSession, type Answer } from '../engine/train/chat-session';
import type { ChatSide, SamplingOptions } from '../protocol/chat';
import { formatError, LoraPlusError, toErrorInfo } from '../protocol/errors';
import type { Device } from '../protocol/merge';
import { Columns } from './chat-columns';

export const CHAT_USAGE =
  '  loraplus chat MODEL [--adapter DIR] [--compare] [--system TEXT] [--chat-template NAME|FILE]\n' +
  '        [--temperature T] [--top-k K] [--top-p P] [--max-new-tokens N] [--seed S] [--show-prompt]\n' +
  '                                                       chat in the terminal (/reset, /system TEXT, /exit)';

const HELP = `/reset          clear the conversation (the system message stays)
/system TEXT    set the system message (/system alone removes it)
/exit           leave (or Ctrl-D); Ctrl-C stops an answer`;

const FLAGS: Record<keyof SamplingOptions, string> = {
  maxNewTokens: '--max-new-tokens',
  temperature: '--temperature',
  topK: '--top-k',
  topP: '--top-p',
  seed: '--seed',
};

const LABEL: Record<ChatSide, string> = { adapter: 'adapter', base: 'base' };
/** Side by side needs this many columns; narrower terminals get one answer after the other. */
const SIDE_BY_SIDE_COLUMNS = 100;

export interface ChatIO {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; rows?: number };
  error: NodeJS.WritableStream;
}

const STD_IO: ChatIO = { input: process.stdin, output: process.stdout, error: process.stderr };

export async function cmdChat(argv: string[], io: ChatIO = STD_IO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      adapter: { type: 'string' },
      compare: { type: 'boolean' },
      system: { type: 'string' },
      'chat-template': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'max-new-tokens': { type: 'string' },
      seed: { type: 'string' },
      device: { type: 'string', default: 'auto' },
      'show-prompt': { type: 'boolean' },
    },
  });
  if (positionals.length !== 1) {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: `expected a model folder or Hub id, got ${positionals.length} arguments`,
      hint: `Usage:\n${CHAT_USAGE}`,
    });
  }
  if (values.compare && !values.adapter) {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: '--compare needs an adapter to compare with the base model',
      hint: 'Add --adapter DIR (an adapter, checkpoint or run folder).',
    });
  }
  const num = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (v.trim() === '' || !Number.isFinite(n))
      throw new LoraPlusError({ code: 'cli/usage', message: `${flag} takes a number, not '${v}'` });
    return n;
  };
  const session = await ChatSession.open(
    {
      model: positionals[0],
      adapter: values.adapter ?? null,
      template: values['chat-template'] ?? null,
      system: values.system ?? null,
      device: values.device as Device,
      options: {
        temperature: num(values.temperature, FLAGS.temperature),
        topK: num(values['top-k'], FLAGS.topK),
        topP: num(values['top-p'], FLAGS.topP),
        maxNewTokens: num(values['max-new-tokens'], FLAGS.maxNewTokens),
        seed: num(values.seed, FLAGS.seed),
      },
    },
    { flag: (k) => FLAGS[k] },
  );
  try {
    return await new TerminalChat(session, io, Boolean(values.compare), Boolean(values['show-prompt'])).run();
  } finally {
    session.dispose();
  }
}

class TerminalChat {
  private readonly tty: boolean;
  private answering: AbortController | null = null;

  constructor(
    private readonly session: ChatSession,
    private readonly io: ChatIO,
    private readonly compare: boolean,
    private readonly showPrompt: boolean,
  ) {
    this.tty = Boolean(io.output.isTTY && (io.input as { isTTY?: boolean }).isTTY);
  }

  private out(s: string): void {
    this.io.output.write(s);
  }

  private note(s: string): void {
    this.io.error.write(this.tty ? `\x1b[2m${s}\x1b[0m\n` : `${s}\n`);
  }

  async run(): Promise<number> {
    const i = this.session.info;
    const o = i.options;
    const sampling = o.temperature
      ? `temperature ${o.temperature}${o.topK ? `, top-k ${o.topK}` : ''}${o.topP < 1 ? `, top-p ${o.topP}` : ''}`
      : 'greedy';
    this.note(
      `chat with ${i.model} (${i.modelType})${i.adapter ? ` + adapter ${i.adapter}` : ''} · ${i.backend} · ` +
        `${sampling} · up to ${o.maxNewTokens} new tokens · ${i.maxPositions} positions`,
    );
    const other = `; --chat-template picks another: ${Object.keys(BUILT_IN_TEMPLATES).join(', ')} or a .jinja file`;
    this.note(`template: ${i.template}${i.templateNote ? ` (${i.templateNote}${other})` : ''}`);
    if (this.tty) this.note('/reset clears, /system TEXT sets the system message, /exit or Ctrl-D leaves');

    const rl = readline.createInterface({
      input: this.io.input,
      output: this.tty ? this.io.output : undefined,
      terminal: this.tty,
      prompt: 'you › ',
    });
    const onInterrupt = () => {
      if (this.answering) this.answering.abort();
      else rl.close();
    };
    rl.on('SIGINT', onInterrupt); // a TTY's Ctrl-C: stop the answer, or leave at the prompt
    process.on('SIGINT', onInterrupt);
    try {
      if (this.tty) rl.prompt();
      for await (const line of rl) {
        if (!(await this.handle(line))) break;
        if (this.tty) rl.prompt();
      }
    } finally {
      process.off('SIGINT', onInterrupt);
      rl.close();
    }
    if (this.tty) this.out('\n');
    return 0;
  }

  /** One line: a command or a message. False: leave. */
  private async handle(raw: string): Promise<boolean> {
    const line = raw.trim();
    if (!line) return true;
    const cmd = line.split(/\s+/)[0];
    if (line.startsWith('/') && !line.startsWith('//')) {
      const arg = line.slice(cmd.length).trim();
      switch (cmd) {
        case '/exit':
        case '/quit':
          return false;
        case '/reset':
          this.session.reset();
          this.note('(conversation cleared)');
          return true;
        case '/system':
          this.session.setSystem(arg || null);
          this.note(arg ? `(system message: ${arg})` : '(no system message)');
          return true;
        case '/help':
          this.note(HELP);
          return true;
        default:
          this.note(`unknown command ${cmd} (/help lists them; begin a message with // to send a '/')`);
          return true;
      }
    }
    await this.answer(line.startsWith('//') ? line.slice(1) : line);
    return true;
  }

  private async answer(text: string): Promise<void> {
    const controller = new AbortController();
    this.answering = controller;
    const wide = this.compare && this.tty && (this.io.output.columns ?? 0) >= SIDE_BY_SIDE_COLUMNS;
    const columns = wide
      ? new Columns(
          {
            write: (s) => this.out(s),
            columns: this.io.output.columns ?? SIDE_BY_SIDE_COLUMNS,
            rows: this.io.output.rows ?? 24,
          },
          [`${LABEL.adapter} (${path.basename(this.session.info.adapter ?? '')})`, 'base model'],
        )
      : null;
    let open: ChatSide | null = null; // the side whose answer is being written
    try {
      const answers = await this.session.say(text, {
        compare: this.compare,
        order: columns ? 'interleaved' : 'sequential',
        signal: controller.signal,
        onStart: (side, p) => {
          if (this.showPrompt)
            this.io.error.write(`--- prompt (${side}, ${p.promptTokens} tokens) ---\n${p.prompt}\n---\n`);
          if (p.dropped)
            this.note(
              `(dropped the oldest ${p.dropped === 1 ? 'exchange' : `${p.dropped} exchanges`}` +
                `${this.compare ? ` of the ${side} conversation` : ''}: ` +
                `the conversation outgrew the model's ${this.session.info.maxPositions} positions)`,
            );
          if (columns) return;
          if (open) this.out('\n'); // the answer before this one
          open = side;
          this.out(this.label(side));
        },
        onToken: (side, t) => (columns ? columns.add(side === 'adapter' ? 0 : 1, t) : this.out(t)),
      });
      columns?.finish();
      if (open) this.out('\n');
      open = null;
      for (const side of ['adapter', 'base'] as const) {
        const a = answers[side];
        if (!a) continue;
        const why = ending(a, this.session.info.maxPositions);
        if (why) this.note(this.compare ? `(${side}: ${why})` : `(${why})`);
      }
    } catch (err) {
      if (open) this.out('\n');
      this.note(`error: ${formatError(toErrorInfo(err))}`);
    } finally {
      this.answering = null;
    }
  }

  private label(side: ChatSide): string {
    if (!this.compare) return this.tty ? '\x1b[1massistant ›\x1b[0m ' : '';
    return this.tty ? `\x1b[1m${LABEL[side]} ›\x1b[0m ` : `[${LABEL[side]}] `;
  }
}

/** Why an answer ended, when it is worth saying (not at the end of its turn). */
function ending(a: Answer, positions: number): string | null {
  switch (a.reason) {
    case 'length':
      return `cut at ${a.tokens} new tokens: --max-new-tokens`;
    case 'positions':
      return `cut: the model's ${positions} positions are full (/reset starts over)`;
    case 'stopped':
      return 'stopped';
    default:
      return null;
  }
}
