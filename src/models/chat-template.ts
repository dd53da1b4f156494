// A model's chat template (the Jinja text that renders messages), found where transformers' tokenizer loader looks:
// `chat_template.jinja` beside the tokenizer, else `additional_chat_templates/default.jinja`, else tokenizer_config's
// `chat_template` (a string, or a list of {name, template} whose `default` is the one). Rendering is not done here.
// No TF.js, so the editor and the config checks can ask for it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';

export const CHAT_TEMPLATE_FILE = 'chat_template.jinja';
/** Named templates as transformers saves them beside the default (`tool_use.jinja`, ...). */
export const CHAT_TEMPLATE_DIR = 'additional_chat_templates';

/** The template transformers' get_chat_template() uses by default for model folder `dir`, or null if none. */
export function loadChatTemplate(dir: string): string | null {
  // Template files win over tokenizer_config.json; with named ones beside it, only `default` is used by default.
  const main = readText(path.join(dir, CHAT_TEMPLATE_FILE));
  const extraDir = path.join(dir, CHAT_TEMPLATE_DIR);
  const extras = isDir(extraDir) ? fs.readdirSync(extraDir).filter((f) => f.endsWith('.jinja')) : [];
  if (main !== null) return main;
  if (extras.length) return readText(path.join(extraDir, 'default.jinja'));

  const configFile = path.join(dir, 'tokenizer_config.json');
  const text = readText(configFile);
  if (text === null) return null;
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new LoraPlusError(
      {
        code: 'model/bad-tokenizer',
        message: `tokenizer_config.json is not valid JSON (${(err as Error).message})`,
        file: configFile,
        hint: "Re-download it from the model's Hub repository.",
      },
      { cause: err },
    );
  }
  const value = isObject(config) ? config.chat_template : undefined;
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.every((t) => isObject(t) && typeof t.name === 'string')) {
    const found = value.find((t) => isObject(t) && t.name === 'default');
    if (!found) return null; // only named templates (e.g. tool_use): transformers has no default either
    if (typeof found.template === 'string') return found.template;
  }
  throw new LoraPlusError({
    code: 'model/bad-tokenizer',
    message: 'chat_template in tokenizer_config.json is neither a string nor a list of {name, template}',
    file: configFile,
    hint: "Re-download tokenizer_config.json from the model's Hub repository.",
  });
}

function readText(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err; // EACCES, EISDIR, ...: toErrorInfo says it in words, with the file
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Where loadChatTemplate found the template, for messages: the .jinja file or tokenizer_config.json. */
export function chatTemplateSource(dir: string): string {
  const main = path.join(dir, CHAT_TEMPLATE_FILE);
  if (fs.existsSync(main)) return main;
  const extra = path.join(dir, CHAT_TEMPLATE_DIR, 'default.jinja');
  return fs.existsSync(extra) ? extra : path.join(dir, 'tokenizer_config.json');
}

/**
 * The special tokens a template refers to (bos_token, eos_token, ... from tokenizer_config.json, where a token is a
 * string or an AddedToken object), and every special added token of tokenizer.json (the end-of-turn markers).
 */
export function templateTokens(dir: string): { tokens: Record<string, string>; special: string[] } {
  const read = (file: string): Record<string, unknown> => {
    try {
      const v: unknown = JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8'));
      return isObject(v) ? v : {};
    } catch {
      return {};
    }
  };
  const config = read('tokenizer_config.json');
  const tokens: Record<string, string> = {};
  for (const key of ['bos_token', 'eos_token', 'pad_token', 'unk_token']) {
    const v = config[key];
    const name = typeof v === 'string' ? v : isObject(v) && typeof v.content === 'string' ? v.content : null;
    if (name !== null) tokens[key] = name;
  }
  const added = read('tokenizer.json').added_tokens;
  const special = Array.isArray(added)
    ? added.flatMap((t) => (isObject(t) && t.special === true && typeof t.content === 'string' ? [t.content] : []))
    : [];
  return { tokens, special };
}
