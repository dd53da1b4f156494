// The HTTP half of a download, done the way Python's huggingface_hub does it so both fill the cache alike: a HEAD on
// `/<repo>/resolve/<revision>/<file>` (following redirects that stay on the Hub's host) gives the commit, the etag
// that names the blob, the size and where the bytes are (a CDN for LFS files); a GET fetches them into
// `<blob>.incomplete`, continuing an interrupted one with a Range request, and the content is checked against the
// etag (sha256 for LFS files, git's blob sha1 for the others) before the blob takes its name.
import { createHash, type Hash } from 'node:crypto';
import * as fs from 'node:fs';
import { LoraPlusError } from '../../protocol/errors';

export interface HubAuth {
  endpoint: string;
  token?: string;
  signal?: AbortSignal;
}

export interface FileMeta {
  commit: string; // X-Repo-Commit
  etag: string; // X-Linked-Etag (LFS) or ETag, unquoted: the blob's name
  size: number; // X-Linked-Size or Content-Length
  location: string; // where to GET the bytes
}

const USER_AGENT = 'loraplus-studio (huggingface_hub-compatible cache)';
const MAX_REDIRECTS = 5;

export function resolveUrl(endpoint: string, repoId: string, revision: string, file: string): string {
  const name = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${name}`;
}

export function headers(auth: HubAuth, url: string, extra: Record<string, string> = {}): Record<string, string> {
  // The token goes only to the Hub itself, never to a CDN or storage host (a signed URL would refuse it too).
  const toHub = new URL(url).origin === new URL(auth.endpoint).origin;
  return {
    'User-Agent': USER_AGENT,
    'Accept-Encoding': 'identity', // the real size and bytes, never a compressed body
    ...(auth.token && toHub ? { Authorization: `Bearer ${auth.token}` } : {}),
    ...extra,
  };
}

/** A file's metadata from a HEAD on the Hub; a LoraPlusError for a gated, missing or unreachable one. */
export async function fileMeta(auth: HubAuth, repoId: string, revision: string, file: string): Promise<FileMeta> {
  let url = resolveUrl(auth.endpoint, repoId, revision, file);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await request(auth, repoId, revision, url, { method: 'HEAD', redirect: 'manual' });
    if (res.status >= 400) throw httpError(res, auth, repoId, revision, file);
    const location = res.headers.get('Location');
    const target = location && res.status >= 300 && res.status < 400 ? new URL(location, url).href : undefined;
    // Follow a redirect on the Hub's host (a renamed repo); one elsewhere (a CDN) carries the metadata itself.
    if (target && new URL(target).hostname === new URL(url).hostname) {
      url = target;
      continue;
    }
    const commit = res.headers.get('X-Repo-Commit');
    const etag = (res.headers.get('X-Linked-Etag') ?? res.headers.get('ETag'))?.replace(/^W\//, '').replace(/"/g, '');
    const size = Number(res.headers.get('X-Linked-Size') ?? (target ? NaN : res.headers.get('Content-Length')));
    if (!commit || !etag || !Number.isFinite(size))
      throw new LoraPlusError({
        code: 'hub/bad-response',
        message: `${auth.endpoint} did not say which commit, etag and size ${repoId}/${file} has`,
        hint: 'Check HF_ENDPOINT: it must be a Hugging Face Hub (or a mirror that passes its headers through).',
      });
    return { commit, etag, size, location: target ?? url };
  }
  throw new LoraPlusError({ code: 'hub/redirects', message: `too many redirects for ${repoId}/${file}` });
}

/**
 * Fetches `meta.location` into `<blob>.incomplete`, continuing what is there with a Range request, checks the bytes
 * against the etag, then renames to `<blob>`. `onProgress` gets the bytes of the file there so far, after every
 * chunk. Returns how many bytes came over the network, and from which byte on (0 unless it continued a partial).
 */
export async function fetchBlob(
  auth: HubAuth,
  meta: FileMeta,
  blob: string,
  what: { repoId: string; revision: string; file: string },
  onProgress: (have: number) => void,
): Promise<{ received: number; resumedFrom: number }> {
  const partial = `${blob}.incomplete`;
  const check = verifier(meta);
  let have = fs.existsSync(partial) ? fs.statSync(partial).size : 0;
  if (have > meta.size) have = truncate(partial);
  if (have) await hashFile(partial, check.hash);
  onProgress(have);
  let received = 0;
  let resumedFrom = 0;
  if (have < meta.size) {
    const extra: Record<string, string> = have ? { Range: `bytes=${have}-` } : {};
    const res = await request(auth, what.repoId, what.revision, meta.location, {
      headers: headers(auth, meta.location, extra),
    });
    if (res.status >= 400) throw httpError(res, auth, what.repoId, what.revision, what.file);
    const start = res.status === 206 ? Number(/^bytes (\d+)-/.exec(res.headers.get('Content-Range') ?? '')?.[1]) : 0;
    if (start !== have) {
      // The server sent the whole file (it ignored the Range) or another part: start over.
      have = truncate(partial);
      check.reset();
      onProgress(have);
    }
    resumedFrom = have;
    const out = await fs.promises.open(partial, have ? 'a' : 'w');
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        await out.write(chunk);
        check.hash.update(chunk);
        have += chunk.length;
        received += chunk.length;
        onProgress(have);
      }
    } catch (err) {
      throw interrupted(err, what, have, meta.size, auth);
    } finally {
      await out.close();
    }
  }
  if (have !== meta.size) throw interrupted(null, what, have, meta.size, auth);
  const digest = check.digest();
  if (digest !== meta.etag) {
    fs.rmSync(partial, { force: true });
    throw new LoraPlusError({
      code: 'hub/corrupt',
      message: `${what.file} of ${what.repoId} arrived damaged: its ${check.algorithm} is ${digest}, not ${meta.etag}`,
      hint: 'Run the download again (it starts this file over); if it keeps failing, check your proxy or HF_ENDPOINT.',
    });
  }
  fs.renameSync(partial, blob);
  return { received, resumedFrom };
}

/** A small file (config.json, the shard index) fetched whole into memory and checked, so a model refused after
 * reading it leaves nothing in the cache. */
export async function fetchBytes(
  auth: HubAuth,
  meta: FileMeta,
  what: { repoId: string; revision: string; file: string },
): Promise<Buffer> {
  const res = await request(auth, what.repoId, what.revision, meta.location, {
    headers: headers(auth, meta.location),
  });
  if (res.status >= 400) throw httpError(res, auth, what.repoId, what.revision, what.file);
  let bytes: Buffer;
  try {
    bytes = Buffer.from(await res.arrayBuffer());
  } catch (err) {
    throw interrupted(err, what, 0, meta.size, auth);
  }
  const check = verifier(meta);
  check.hash.update(bytes);
  const digest = check.digest();
  if (bytes.length !== meta.size || digest !== meta.etag)
    throw new LoraPlusError({
      code: 'hub/corrupt',
      message:
        `${what.file} of ${what.repoId} arrived damaged ` +
        `(${bytes.length} of ${meta.size} bytes, ${check.algorithm} ${digest}, not ${meta.etag})`,
      hint: 'Run the download again; if it keeps failing, check your proxy or HF_ENDPOINT.',
    });
  return bytes;
}

/** Puts bytes already checked in place as `<blob>`: written as `<blob>.incomplete`, then renamed. */
export function storeBlob(blob: string, bytes: Buffer): void {
  fs.writeFileSync(`${blob}.incomplete`, bytes);
  fs.renameSync(`${blob}.incomplete`, blob);
}

// ---- Internals ----

interface Verifier {
  algorithm: string;
  hash: Hash;
  reset(): void;
  digest(): string;
}

/** sha256 for a 64-hex etag (an LFS file), git's blob sha1 for a 40-hex one (a file kept in git); else none. */
function verifier(meta: FileMeta): Verifier {
  const kind = /^[0-9a-f]{64}$/.test(meta.etag) ? 'sha256' : /^[0-9a-f]{40}$/.test(meta.etag) ? 'git-sha1' : 'none';
  const make = (): Hash => {
    const h = createHash(kind === 'sha256' ? 'sha256' : 'sha1');
    if (kind === 'git-sha1') h.update(`blob ${meta.size}\0`);
    return h;
  };
  const v: Verifier = {
    algorithm: kind,
    hash: make(),
    reset: () => void (v.hash = make()),
    digest: () => (kind === 'none' ? meta.etag : v.hash.digest('hex')),
  };
  return v;
}

async function hashFile(file: string, hash: Hash): Promise<void> {
  for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
}

function truncate(file: string): number {
  fs.writeFileSync(file, '');
  return 0;
}

async function request(auth: HubAuth, repoId: string, revision: string, url: string, init: RequestInit) {
  try {
    return await fetch(url, { headers: headers(auth, url), ...init, signal: auth.signal });
  } catch (err) {
    throw unreachable(err, auth, `${repoId}@${revision}`);
  }
}

function unreachable(err: unknown, auth: HubAuth, what: string): LoraPlusError {
  if (auth.signal?.aborted) return cancelled(what);
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return new LoraPlusError(
    {
      code: 'hub/unreachable',
      message: `cannot reach ${auth.endpoint} for ${what} (${cause?.code ?? cause?.message ?? String(err)})`,
      hint: 'Check the network connection (and HF_ENDPOINT if you set it), then run the download again.',
    },
    { cause: err },
  );
}

function cancelled(what: string): LoraPlusError {
  return new LoraPlusError({
    code: 'hub/cancelled',
    message: `the download of ${what} was stopped`,
    hint: 'Run it again to continue where it stopped.',
  });
}

function interrupted(
  err: unknown,
  what: { repoId: string; revision: string; file: string },
  have: number,
  size: number,
  auth: HubAuth,
): LoraPlusError {
  if (auth.signal?.aborted) return cancelled(`${what.repoId}@${what.revision}`);
  return new LoraPlusError(
    {
      code: 'hub/interrupted',
      message: `the download of ${what.file} broke off after ${have} of ${size} bytes`,
      hint: `Run the download again: it continues from byte ${have}.`,
    },
    err ? { cause: err } : undefined,
  );
}

/** What an HTTP error from the Hub means, using huggingface_hub's X-Error-Code when the Hub sends one. */
export function httpError(
  res: { status: number; headers: Headers },
  auth: HubAuth,
  repoId: string,
  revision: string,
  file?: string,
): LoraPlusError {
  const code = res.headers.get('X-Error-Code');
  const page = `${auth.endpoint}/${repoId}`;
  const login =
    'log in with `huggingface-cli login` (or `hf auth login`), or set HF_TOKEN to a token from ' +
    `${auth.endpoint}/settings/tokens`;
  if (code === 'RepoNotFound' || (res.status === 404 && !code))
    return new LoraPlusError({
      code: 'hub/repo-not-found',
      message: `${repoId} does not exist on ${auth.endpoint}${res.status === 401 ? ' (or it is private)' : ''}`,
      hint:
        `Check the id (org/name, as in ${page}).` +
        (res.status === 401 && !auth.token ? ` If it is private, ${login}.` : ''),
    });
  if (code === 'RevisionNotFound')
    return new LoraPlusError({
      code: 'hub/revision-not-found',
      message: `${repoId} has no revision '${revision}'`,
      hint: `Check the branch, tag or commit (${page}/tree/main lists the branches); leave --revision out for main.`,
    });
  if (code === 'EntryNotFound' || res.status === 404)
    return new LoraPlusError({
      code: 'hub/file-not-found',
      message: `${repoId}@${revision} has no ${file ?? 'such file'}`,
      hint: file === 'config.json' ? 'A model for this engine is a transformers checkpoint with a config.json.' : '',
    });
  if (res.status === 401 || res.status === 403)
    return new LoraPlusError({
      code: 'hub/gated',
      message: auth.token
        ? `${repoId} is gated or private, and your token has no access to it`
        : `${repoId} is gated or private: downloading it needs a Hugging Face login`,
      hint: `Accept its conditions on ${page} with your account, then ${login}.`,
    });
  return new LoraPlusError({
    code: 'hub/http',
    message: `${auth.endpoint} answered ${res.status} for ${repoId}@${revision}${file ? ` ${file}` : ''}`,
    hint: 'Try again later; an interrupted download continues where it stopped.',
  });
}
