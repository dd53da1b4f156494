// Chat templates rendered as transformers renders them: the model's Jinja template (tokenizer_config.json or
// chat_template.jinja; src/models/chat-template.ts finds it) through @huggingface/jinja, the implementation
// transformers.js uses, with the tokenizer's special tokens in scope. `{% generation %}` blocks (the assistant text
// TRL's assistant-only loss trains on) become character spans of the rendered text. Built-in templates cover
// models without one (data.chat_template: chatml, llama3, gemma, phi3, plain).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Template } from '@huggingface/jinja';
import { LoraPlusError } from '../../protocol/errors';
import type { Message } from './chat';

export interface SpecialTokens {
  bos_token?: string;
  eos_token?: string;
  pad_token?: string;
  unk_token?: string;
}

export interface Rendered {
  text: string;
  generation: [number, number][]; // character spans of {% generation %} blocks, in order
}

export interface ChatTemplate {
  source: string; // where it came from: a file, or `built-in 'chatml'`
  hasGenerationTags: boolean;
  render(messages: Message[], addGenerationPrompt: boolean): Rendered;
}

const START = '\u0000g\u0001'; // markers no chat text holds, written where {% generation %} blocks start and end
const END = '\u0000e\u0001';
const TAG = /\{%(-?)\s*(end)?generation\s*(-?)%\}/g;

export const BUILT_IN_TEMPLATES: Record<string, string> = {
  chatml:
    "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}{%- if m['role'] == 'assistant' %}" +
    "{% generation %}{{ m['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}" +
    "{%- else %}{{ m['content'] + '<|im_end|>\\n' }}{%- endif %}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}",
  llama3:
    "{{ bos_token }}{%- for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' }}" +
    "{%- if m['role'] == 'assistant' %}{% generation %}{{ m['content'] | trim + '<|eot_id|>' }}{% endgeneration %}" +
    "{%- else %}{{ m['content'] | trim + '<|eot_id|>' }}{%- endif %}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}",
  gemma:
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set first = messages[0]['content'] + '\\n\\n' %}" +
    "{%- set loop_messages = messages[1:] %}{%- else %}{%- set first = '' %}{%- set loop_messages = messages %}" +
    "{%- endif %}{%- for m in loop_messages %}{%- set role = 'model' if m['role'] == 'assistant' else m['role'] %}" +
    "{{ '<start_of_turn>' + role + '\\n' }}{%- if loop.first %}{{ first }}{%- endif %}" +
    "{%- if m['role'] == 'assistant' %}{% generation %}{{ m['content'] | trim + '<end_of_turn>' }}{% endgeneration %}" +
    "{{ '\\n' }}{%- else %}{{ m['content'] | trim + '<end_of_turn>\\n' }}{%- endif %}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<start_of_turn>model\\n' }}{%- endif %}",
  phi3:
    "{%- for m in messages %}{%- if m['role'] == 'assistant' %}{{ '<|assistant|>\\n' }}" +
    "{% generation %}{{ m['content'] + '<|end|>' }}{% endgeneration %}{{ '\\n' }}" +
    "{%- else %}{{ '<|' + m['role'] + '|>\\n' + m['content'] + '<|end|>\\n' }}{%- endif %}{%- endfor %}" +
    "{%- if add_generation_prompt %}{{ '<|assistant|>\\n' }}{%- else %}{{ eos_token }}{%- endif %}",
  // For base models without chat tokens (e.g. stories260k): Alpaca-style sections; the answer ends with eos.
  plain:
    "{%- for m in messages %}{%- if m['role'] == 'system' %}{{ m['content'] + '\\n\\n' }}" +
    "{%- elif m['role'] == 'user' %}{{ '### Instruction:\\n' + m['content'] + '\\n\\n' }}" +
    "{%- else %}{{ '### Response:\\n' }}{% generation %}{{ m['content'] + eos_token }}{% endgeneration %}" +
    "{{ '\\n\\n' }}{%- endif %}{%- endfor %}{%- if add_generation_prompt %}{{ '### Response:\\n' }}{%- endif %}",
};

/**
 * A chat template: `spec` is a built-in name or a file (relative to `configDir`); without one, the model's own
 * (`modelTemplate`, from `modelSource`). Null when there is none at all.
 */
export function chatTemplate(
  spec: string | null | undefined,
  model: { template: string | null; source: string },
  tokens: SpecialTokens,
  configDir = process.cwd(),
): ChatTemplate | null {
  if (spec && spec in BUILT_IN_TEMPLATES) return compile(BUILT_IN_TEMPLATES[spec], `built-in '${spec}'`, tokens);
  if (spec) {
    const file = path.resolve(configDir, spec);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new LoraPlusError({
        code: 'data/chat-template',
        message: `cannot read the chat template ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
        yamlPath: 'data.chat_template',
        hint: `Name a .jinja file, or a built-in template: ${Object.keys(BUILT_IN_TEMPLATES).join(', ')}.`,
      });
    }
    return compile(text, file, tokens);
  }
  return model.template === null ? null : compile(model.template, model.source, tokens);
}

export function compile(text: string, source: string, tokens: SpecialTokens): ChatTemplate {
  const hasGenerationTags = /\{%-?\s*generation\s*-?%\}/.test(text);
  const marked = text.replace(TAG, (_, left: string, end: string | undefined, right: string) => {
    return `{{${left} '${end ? END : START}' ${right}}}`;
  });
  let template: Template;
  try {
    template = new Template(marked);
  } catch (err) {
    throw templateError(source, text, `does not parse: ${(err as Error).message}`, failingLine(text));
  }
  return {
    source,
    hasGenerationTags,
    render(messages, addGenerationPrompt) {
      let out: string;
      try {
        out = template.render({ messages, add_generation_prompt: addGenerationPrompt, ...tokens });
      } catch (err) {
        throw templateError(source, text, `failed to render: ${(err as Error).message}`);
      }
      return unmark(out);
    },
  };
}

/** The text without markers, and the spans the markers enclosed. */
function unmark(out: string): Rendered {
  let text = '';
  const generation: [number, number][] = [];
  let open = -1;
  for (let i = 0; i < out.length;) {
    if (out.startsWith(START, i)) [open, i] = [text.length, i + START.length];
    else if (out.startsWith(END, i)) {
      if (open >= 0) generation.push([open, text.length]);
      [open, i] = [-1, i + END.length];
    } else text += out[i++];
  }
  return { text, generation };
}

/** The first line whose prefix of the template no longer parses for a reason other than running out of text. */
function failingLine(text: string): number | undefined {
  const lines = text.split('\n');
  for (let n = 1; n <= lines.length; n++) {
    try {
      new Template(lines.slice(0, n).join('\n'));
    } catch (err) {
      if (!/end of|Expected|undefined \(reading 'type'\)/i.test((err as Error).message)) return n;
    }
  }
  return undefined;
}

function templateError(source: string, text: string, what: string, line?: number): LoraPlusError {
  const isFile = !source.startsWith('built-in') && fs.existsSync(source);
  return new LoraPlusError({
    code: 'data/chat-template',
    message: `the chat template ${what}`,
    file: isFile ? source : undefined,
    line: isFile && source.endsWith('.jinja') ? line : undefined,
    yamlPath: 'data.chat_template',
    hint:
      `Fix the template${line ? ` (line ${line} of ${text.split('\n').length})` : ''}, or set data.chat_template ` +
      `to another one: a .jinja file or ${Object.keys(BUILT_IN_TEMPLATES).join(', ')}.`,
  });
}
