// `loraplus download ORG/NAME`: fetches the files a training run needs into the Hugging Face cache, in the layout
// Python's huggingface_hub uses (so either tool finds what the other downloaded). Everything that can refuse the model
// runs before the first weight byte: access (a HEAD on config.json), the file list (@huggingface/hub's listFiles),
// safetensors weights, a supported model_type. Then each file goes to blobs/<etag> (only once complete and verified),
// is linked into snapshots/<commit>/, and refs/<revision> is written last: a ref names only a complete snapshot.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HubApiError, listFiles, type ListFileEntry } from '@huggingface/hub';
import { writeFileAtomic } from '../../adapters/files';
import { FAMILIES } from '../../models/registry';
import { LoraPlusError } from '../../protocol/errors';
import type { DownloadSummary } from '../../protocol/host';
import { DEFAULT_REVISION, parseHubId, repoDir } from './cache';
import { hubCacheDir, hubEndpoint, hubToken } from './env';
import {
  fetchBlob,
  fetchBytes,
  fileMeta,
  headers,
  httpError,
  storeBlob,
  type FileMeta,
  type HubAuth,
} from './transfer';
import { makeDirs } from '../../adapters/files';

/** The files besides the weights that training reads, when the repo has them. */
export const TRAINING_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'special_tokens_map.json',
  'vocab.txt',
  'merges.txt',
  'tokenizer.model',
  'chat_template.jinja',
];
const INDEX = 'model.safetensors.index.json';

export interface DownloadOptions {
  revision?: string; // branch, tag or commit; default main
  cacheDir?: string; // default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub
  endpoint?: string; // default: HF_ENDPOINT, else https://huggingface.co
  token?: string; // default: HF_TOKEN, else the token file of `huggingface-cli login`
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal; // stops the transfer; what arrived stays as <blob>.incomplete for the next call
  supportedTypes?: readonly string[]; // default: the model types of src/models/registry.ts
  onProgress?: (p: DownloadProgress) => void;
  log?: (line: string) => void;
}

export interface DownloadProgress {
  file: string;
  index: number; // 1-based, of `files`
  files: number;
  fileBytes: number; // of this file, there so far
  fileSize: number;
  bytes: number; // of all files, there so far (cached, resumed and new)
  totalBytes: number;
  received: number; // over the network in this call
  elapsedS: number;
}

/** Fetches `org/name` (or `org/name@revision`, as a config's `model:` writes it) into the cache. */
export async function downloadModel(spec: string, opts: DownloadOptions = {}): Promise<DownloadSummary> {
  const id = parseHubId(spec);
  if (!id)
    throw new LoraPlusError({
      code: 'hub/bad-id',
      message: `'${spec}' is not a Hub model id`,
      hint: 'Give it as org/name (e.g. Qwen/Qwen3-0.6B), with @revision or --revision for a branch, tag or commit.',
    });
  const { repoId } = id;
  const env = opts.env ?? process.env;
  const revision = opts.revision ?? id.revision ?? DEFAULT_REVISION;
  const auth: HubAuth = {
    endpoint: opts.endpoint ?? hubEndpoint(env),
    token: opts.token ?? hubToken(env),
    signal: opts.signal,
  };
  const log = opts.log ?? (() => {});
  const at = `${repoId}@${revision}`;

  // Access, and the commit this revision is now: a gated, private or missing repo answers here.
  const { commit } = await fileMeta(auth, repoId, revision, 'config.json');
  const entries = await topLevelFiles(auth, repoId, revision, commit);
  const pinned = { repoId, revision: commit };

  // Small files read into memory first: a model refused for its weights or type leaves nothing in the cache.
  const memory = new Map<string, { meta: FileMeta; bytes: Buffer }>();
  const read = async (file: string): Promise<Buffer> => {
    const meta = await fileMeta(auth, repoId, commit, file); // by commit: the branch may move meanwhile
    const bytes = await fetchBytes(auth, meta, { ...pinned, file });
    memory.set(file, { meta, bytes });
    return bytes;
  };
  const weights = await weightFiles(entries, at, read);
  const modelType = checkModelType(await read('config.json'), at, opts.supportedTypes ?? Object.keys(FAMILIES));

  const wanted = [...TRAINING_FILES.filter((f) => entries.has(f)), ...weights];
  const totalBytes = wanted.reduce((sum, f) => sum + entries.get(f)!.size, 0);
  const repo = repoDir(opts.cacheDir ?? hubCacheDir(env), repoId);
  const blobs = path.join(repo, 'blobs');
  const snapshot = path.join(repo, 'snapshots', commit);
  checkSpace(repo, wanted, entries, blobs);
  makeDirs(blobs);
  makeDirs(snapshot);
  log(`${at} → commit ${commit} · ${wanted.length} files, ${fmtBytes(totalBytes)} · ${modelType}`);

  const started = Date.now();
  let done = 0;
  let received = 0;
  for (const [i, file] of wanted.entries()) {
    const fileSize = entries.get(file)!.size;
    const progress = (fileBytes: number, fresh = 0): void => {
      received += fresh;
      opts.onProgress?.({
        file,
        index: i + 1,
        files: wanted.length,
        fileBytes,
        fileSize,
        bytes: done + fileBytes,
        totalBytes,
        received,
        elapsedS: (Date.now() - started) / 1000,
      });
    };
    const inMemory = memory.get(file);
    const meta = inMemory?.meta ?? (await fileMeta(auth, repoId, commit, file));
    const blob = path.join(blobs, meta.etag);
    if (fs.existsSync(blob) && fs.statSync(blob).size === meta.size) {
      log(`${file}: in the cache already`);
      progress(fileSize);
    } else if (inMemory) {
      storeBlob(blob, inMemory.bytes);
      progress(fileSize, meta.size);
    } else {
      const partial = fs.existsSync(`${blob}.incomplete`) ? fs.statSync(`${blob}.incomplete`).size : 0;
      log(
        partial && partial < meta.size
          ? `${file}: continuing at ${fmtBytes(partial)} of ${fmtBytes(meta.size)}`
          : `${file}: ${fmtBytes(meta.size)}`,
      );
      let last = partial;
      const r = await fetchBlob(auth, meta, blob, { ...pinned, file }, (have) => {
        progress(have, Math.max(0, have - last));
        last = have;
      });
      if (r.resumedFrom) log(`${file}: continued from byte ${r.resumedFrom}`);
    }
    linkIntoSnapshot(snapshot, file, blob);
    done += fileSize;
  }
  if (revision !== commit) writeFileAtomic(path.join(repo, 'refs', ...revision.split('/')), commit);
  log(`done: ${at} is in ${snapshot}`);
  return { repoId, revision, commit, snapshot, modelType, files: wanted, bytes: totalBytes, downloaded: received };
}

/** `1.2 MB` (decimal units, as the Hub shows sizes). */
export function fmtBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let u = 0;
  while (n >= 1000 && u < units.length - 1) {
    n /= 1000;
    u++;
  }
  return u ? `${n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${units[u]}` : `${Math.round(n)} B`;
}

/** One progress line: `downloading 52% · 150 kB of 290 kB · 1.2 MB/s · model.safetensors (6/6)`. */
export function progressLine(p: DownloadProgress): string {
  const pct = p.totalBytes ? Math.floor((100 * p.bytes) / p.totalBytes) : 100;
  const rate = p.received / Math.max(1e-3, p.elapsedS);
  return (
    `downloading ${pct}% · ${fmtBytes(p.bytes)} of ${fmtBytes(p.totalBytes)} · ${fmtBytes(rate)}/s · ` +
    `${p.file} (${p.index}/${p.files})`
  );
}

// ---- Before any weight byte ----

/** The repo's top-level files at the commit (a model's training files are never in subfolders), by name. */
async function topLevelFiles(auth: HubAuth, repoId: string, revision: string, commit: string) {
  const out = new Map<string, ListFileEntry>();
  try {
    const authed: typeof fetch = (input, init) =>
      fetch(input, {
        ...init,
        headers: { ...(init?.headers as Record<string, string>), ...headers(auth, String(input)) },
        signal: auth.signal,
      });
    const files = listFiles({
      repo: { type: 'model', name: repoId },
      revision: commit,
      hubUrl: auth.endpoint,
      fetch: authed,
    });
    for await (const f of files) if (f.type === 'file') out.set(f.path, f);
  } catch (err) {
    if (err instanceof HubApiError)
      throw httpError({ status: err.statusCode, headers: new Headers() }, auth, repoId, revision);
    if (err instanceof LoraPlusError) throw err;
    throw new LoraPlusError(
      {
        code: auth.signal?.aborted ? 'hub/cancelled' : 'hub/unreachable',
        message: `cannot list the files of ${repoId}@${revision} on ${auth.endpoint} (${(err as Error).message})`,
        hint: 'Check the network connection (and HF_ENDPOINT if you set it), then run the download again.',
      },
      { cause: err },
    );
  }
  return out;
}

/** The safetensors weights: the shards the index names, else model.safetensors; refuses .bin-only repos. */
async function weightFiles(
  entries: Map<string, ListFileEntry>,
  at: string,
  read: (file: string) => Promise<Buffer>,
): Promise<string[]> {
  if (entries.has(INDEX)) {
    const index = parseJson(await read(INDEX), INDEX, at) as { weight_map?: Record<string, string> };
    const shards = [...new Set(Object.values(index.weight_map ?? {}))].sort();
    const absent = shards.filter((s) => !entries.has(s));
    if (!shards.length || absent.length)
      throw new LoraPlusError({
        code: 'hub/incomplete-repo',
        message: `${at}: ${INDEX} names shards the repo does not have (${absent.join(', ') || 'none listed'})`,
        hint: 'Pick another revision (--revision) or another repo of this model.',
      });
    return [INDEX, ...shards];
  }
  if (entries.has('model.safetensors')) return ['model.safetensors'];
  const names = [...entries.keys()];
  const bins = names.filter((n) => /\.(bin|pt|pth)$/.test(n));
  throw new LoraPlusError({
    code: bins.length ? 'hub/bin-only' : 'hub/no-weights',
    message: bins.length
      ? `${at} has only PyTorch weights (${bins.slice(0, 3).join(', ')}), and this engine reads safetensors`
      : `${at} has no model.safetensors (nor ${INDEX})` +
        (names.some((n) => n.endsWith('.safetensors')) ? ', only other .safetensors files' : ''),
    hint: bins.length
      ? 'Look for a safetensors revision (the Hub\'s conversion bot opens a "refs/pr/N" pull request: ' +
        '--revision refs/pr/N), or convert the weights with transformers (save_pretrained writes safetensors).'
      : 'This engine loads transformers checkpoints: config.json with model.safetensors or sharded safetensors.',
  });
}

function checkModelType(bytes: Buffer, at: string, supported: readonly string[]): string {
  const type = (parseJson(bytes, 'config.json', at) as { model_type?: unknown }).model_type;
  if (typeof type === 'string' && supported.includes(type)) return type;
  throw new LoraPlusError({
    code: 'hub/unsupported',
    message: `${at} is a '${String(type)}' model, which this engine does not support`,
    hint: `Supported model types: ${supported.join(', ')}.`,
  });
}

function parseJson(bytes: Buffer, file: string, at: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new LoraPlusError({
      code: 'hub/bad-json',
      message: `${at}: ${file} is not valid JSON (${(err as Error).message})`,
    });
  }
}

/** Refuses to start when the disk cannot hold what is still to come (statfs of the nearest existing folder). */
function checkSpace(repo: string, wanted: string[], entries: Map<string, ListFileEntry>, blobs: string): void {
  const needed = wanted.reduce((sum, f) => {
    const e = entries.get(f)!;
    const blob = path.join(blobs, e.lfs?.oid ?? e.oid ?? '');
    return sum + (fs.existsSync(blob) ? 0 : e.size);
  }, 0);
  let dir = repo;
  while (!fs.existsSync(dir) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  try {
    const s = fs.statfsSync(dir);
    const free = s.bavail * s.bsize;
    if (free < needed)
      throw new LoraPlusError({
        code: 'hub/no-space',
        message: `the download needs ${fmtBytes(needed)} and ${dir} has ${fmtBytes(free)} free`,
        file: dir,
        hint: 'Free some space, or set HF_HUB_CACHE to a folder on a larger disk.',
      });
  } catch (err) {
    if (err instanceof LoraPlusError) throw err; // statfs itself failing is no reason to refuse
  }
}

// ---- The snapshot ----

/** snapshots/<commit>/<file> → a relative symlink into blobs/, as huggingface_hub makes; a copy where links fail. */
function linkIntoSnapshot(snapshot: string, file: string, blob: string): void {
  const pointer = path.join(snapshot, file);
  makeDirs(path.dirname(pointer));
  const target = path.relative(path.dirname(pointer), blob);
  try {
    if (fs.readlinkSync(pointer) === target) return;
  } catch {
    // absent or not a link: (re)made below
  }
  const tmp = `${pointer}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  try {
    fs.symlinkSync(target, tmp);
  } catch (err) {
    // Windows without the symlink privilege (huggingface_hub then keeps no blob; a copy is simpler and still found)
    if (!['EPERM', 'EACCES'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
    fs.copyFileSync(blob, tmp);
  }
  fs.renameSync(tmp, pointer);
}
