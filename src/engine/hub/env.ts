// Where the Hugging Face tools keep things, read from the same environment variables as Python's huggingface_hub, so
// a model downloaded by either is found by both: the Hub's address, the cache folder and the login token.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The public Hub; `HF_ENDPOINT` replaces it (a mirror, a proxy, an enterprise Hub, a test server). */
export const DEFAULT_ENDPOINT = 'https://huggingface.co';

type Env = NodeJS.ProcessEnv;

export function hubEndpoint(env: Env = process.env): string {
  return (env.HF_ENDPOINT?.trim() || DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

/** `HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`. */
export function hfHome(env: Env = process.env): string {
  if (env.HF_HOME) return expandHome(env.HF_HOME);
  const xdg = env.XDG_CACHE_HOME ? expandHome(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'huggingface');
}

/** The hub cache: `HF_HUB_CACHE` (or its old name `HUGGINGFACE_HUB_CACHE`), else `<HF_HOME>/hub`. */
export function hubCacheDir(env: Env = process.env): string {
  const dir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE;
  return dir ? expandHome(dir) : path.join(hfHome(env), 'hub');
}

/** The file `huggingface-cli login` (`hf auth login`) writes the token to. */
export function tokenFile(env: Env = process.env): string {
  return env.HF_TOKEN_PATH ? expandHome(env.HF_TOKEN_PATH) : path.join(hfHome(env), 'token');
}

/** `HF_TOKEN` (or the old `HUGGING_FACE_HUB_TOKEN`), else the login's token file; undefined when neither is there. */
export function hubToken(env: Env = process.env): string | undefined {
  const fromEnv = (env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN)?.trim();
  if (fromEnv) return fromEnv;
  try {
    return fs.readFileSync(tokenFile(env), 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

function expandHome(p: string): string {
  return p === '~' || p.startsWith('~/') ? path.join(os.homedir(), p.slice(1)) : p;
}
