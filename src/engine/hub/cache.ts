// Models where users keep them: a Hub id (`org/name`, `name`, with an optional `@revision`) is looked up in the
// Hugging Face cache that Python's huggingface_hub fills (and `loraplus download` too), with no network:
//   <cache>/models--org--name/refs/<revision>          a file holding the commit sha
//   <cache>/models--org--name/snapshots/<sha>/<file>   relative symlinks into blobs/
//   <cache>/models--org--name/blobs/<etag>             the bytes (<etag>.incomplete while downloading)
// Synchronous and cheap, so the editor's checks can call it as the user types. No TensorFlow.js: the extension host
// imports this room.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { LoraPlusError } from '../../protocol/errors';
import { hubCacheDir } from './env';

export type ModelSpec =
  { kind: 'path'; path: string } | { kind: 'hub'; repoId: string; revision: string; explicitRevision: boolean };

export interface CacheOptions {
  baseDir?: string; // relative paths resolve against it (a config's folder); default: the working directory
  cacheDir?: string; // default: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub
  env?: NodeJS.ProcessEnv;
}

// huggingface_hub's validate_repo_id: word characters, '-' and '.', starting and ending with a word character,
// at most one '/', the name at most 96 characters, no '--' or '..' (the cache folder name uses '--' as separator).
const PART = String.raw`\w(?:[\w.-]*\w)?`;
const HUB_ID = new RegExp(`^(?:${PART}/)?${PART}$`);
const COMMIT = /^[0-9a-f]{40}$/;

export const DEFAULT_REVISION = 'main';

export function isHubId(id: string): boolean {
  const name = id.split('/').pop()!;
  return HUB_ID.test(id) && name.length <= 96 && !/--|\.\./.test(id) && !id.endsWith('.git');
}

export function isCommit(revision: string): boolean {
  return COMMIT.test(revision);
}

/**
 * A local folder or a Hub id. A path that exists (resolved against `baseDir`, `~` expanded) always wins. Otherwise
 * `org/name`, `name` and either with `@revision` are Hub ids when the id part is a valid repo id; anything else
 * (`./x`, `../x`, `/x`, `~/x`, `a/b/c`, `C:\x`) is a path, so writing `./org/name` names a folder that must exist.
 */
export function parseModelSpec(spec: string, opts: CacheOptions = {}): ModelSpec {
  const s = spec.trim();
  const local = resolveLocal(s, opts.baseDir);
  if (fs.existsSync(local)) return { kind: 'path', path: local };
  const hub = parseHubId(s);
  if (!hub) return { kind: 'path', path: local };
  const revision = hub.revision ?? DEFAULT_REVISION;
  return { kind: 'hub', repoId: hub.repoId, revision, explicitRevision: hub.revision !== undefined };
}

/** `org/name`, `name`, either with `@revision` (a branch, tag, commit or `refs/pr/N`); undefined if not a Hub id. */
export function parseHubId(s: string): { repoId: string; revision?: string } | undefined {
  const at = s.indexOf('@');
  const repoId = at < 0 ? s : s.slice(0, at);
  const revision = at < 0 ? undefined : s.slice(at + 1);
  if (!isHubId(repoId) || (revision !== undefined && !/^[^\s@]+$/.test(revision))) return undefined;
  return revision === undefined ? { repoId } : { repoId, revision };
}

export interface ResolvedModel {
  dir: string; // the folder to load: the path itself, or the cached snapshot
  spec: ModelSpec;
  commit?: string; // a Hub model's snapshot
}

/** The folder a `model:` value names: a local folder, or the snapshot of a cached Hub model; else what is missing. */
export function resolveModel(spec: string, opts: CacheOptions = {}): string {
  return locateModel(spec, opts).dir;
}

export function locateModel(spec: string, opts: CacheOptions = {}): ResolvedModel {
  const parsed = parseModelSpec(spec, opts);
  if (parsed.kind === 'path') {
    if (!fs.existsSync(parsed.path))
      throw new LoraPlusError({
        code: 'model/not-found',
        message: `model folder ${parsed.path} does not exist`,
        hint: `Point model at a folder (config.json, model.safetensors, tokenizer.json) or at a Hub id (org/name).`,
      });
    return { dir: parsed.path, spec: parsed };
  }
  const cacheDir = opts.cacheDir ?? hubCacheDir(opts.env);
  const { repoId, revision } = parsed;
  const repo = repoDir(cacheDir, repoId);
  const local = resolveLocal(spec.trim(), opts.baseDir);
  const get = downloadHint(repoId, parsed.explicitRevision ? revision : undefined);
  if (!fs.existsSync(repo))
    throw new LoraPlusError({
      code: 'hub/not-cached',
      message:
        `'${spec.trim()}' is not a folder here (${local}) ` +
        `and ${repoId} is not in the Hugging Face cache (${cacheDir})`,
      hint: `Download it: ${get}. Or point model at a model folder.`,
    });
  const commit = isCommit(revision) ? revision : readRef(repo, revision);
  if (!commit) {
    // Only complete revisions are worth naming; a snapshot no ref names is usually a download that did not finish.
    const have = cachedRevisions(repo, repoId)
      .filter((r) => !r.missing.length)
      .map((r) => r.revision);
    throw new LoraPlusError({
      code: 'hub/revision-not-cached',
      message:
        `revision '${revision}' of ${repoId} is not in the Hugging Face cache` +
        (have.length ? ` (cached: ${have.join(', ')})` : ' (a download that did not finish?)'),
      file: repo,
      hint: `Download it: ${get}${have.length ? `, or name a cached one: ${repoId}@${have[0]}` : ''}.`,
    });
  }
  const dir = path.join(repo, 'snapshots', commit);
  if (!fs.existsSync(dir))
    throw new LoraPlusError({
      code: 'hub/snapshot-missing',
      message: `${repoId}@${revision} points at commit ${commit}, whose snapshot folder is missing`,
      file: dir,
      hint: `Download it again: ${get}.`,
    });
  const missing = missingFiles(dir);
  if (missing.length)
    throw new LoraPlusError({
      code: 'hub/incomplete',
      message: `the cached snapshot of ${repoId}@${revision} is incomplete: ${missing.join('; ')}`,
      file: dir,
      hint: `Finish the download: ${get} (it resumes where it stopped).`,
    });
  return { dir, spec: parsed, commit };
}

export interface CachedRevision {
  revision: string; // a ref ('main', 'v1.0', 'refs/pr/1'), or the commit of a snapshot that no ref names
  spec: string; // what to write in `model:` (`org/name`, or `org/name@revision`)
  commit: string;
  snapshot: string; // the snapshot folder
  modelType?: string; // config.json's model_type
  missing: string[]; // files a training run needs that are absent or incomplete; [] = ready
}

export interface CachedModel {
  repoId: string;
  dir: string; // <cache>/models--org--name
  revisions: CachedRevision[];
}

/** The cached model repos with their revisions (refs first, then snapshots no ref names), sorted by id. */
export function listCachedModels(opts: Omit<CacheOptions, 'baseDir'> = {}): CachedModel[] {
  const cacheDir = opts.cacheDir ?? hubCacheDir(opts.env);
  let names: string[];
  try {
    names = fs.readdirSync(cacheDir);
  } catch {
    return [];
  }
  return names
    .filter((n) => n.startsWith('models--'))
    .map((n) => ({ n, repoId: n.slice('models--'.length).split('--').join('/') }))
    .filter(({ repoId }) => isHubId(repoId))
    .map(({ n, repoId }) => ({
      repoId,
      dir: path.join(cacheDir, n),
      revisions: cachedRevisions(path.join(cacheDir, n), repoId),
    }))
    .filter((m) => m.revisions.length)
    .sort((a, b) => a.repoId.localeCompare(b.repoId));
}

// ---- The cache's layout (shared with download.ts) ----

/** `<cache>/models--org--name`: huggingface_hub's repo_folder_name for a model repo. */
export function repoDir(cacheDir: string, repoId: string): string {
  return path.join(cacheDir, `models--${repoId.split('/').join('--')}`);
}

/**
 * The Hub id of a cached snapshot folder (`<cache>/models--org--name/snapshots/<sha>` → `org/name`), so what we write
 * (an adapter's base_model_name_or_path) names the model as Python names it; null for any other folder.
 */
export function hubIdOf(dir: string): string | null {
  const parts = path.resolve(dir).split(path.sep);
  const [repo, snapshots, commit] = parts.slice(-3);
  if (snapshots !== 'snapshots' || !isCommit(commit) || !repo?.startsWith('models--')) return null;
  const id = repo.slice('models--'.length).split('--').join('/');
  return isHubId(id) ? id : null;
}

/** How to get a model: this CLI's download and Python's, with the revision when it is not the default. */
export function downloadHint(repoId: string, revision?: string): string {
  const rev = revision && revision !== DEFAULT_REVISION ? ` --revision ${revision}` : '';
  return `loraplus download ${repoId}${rev} (or: huggingface-cli download ${repoId}${rev})`;
}

/** The files a run needs that a snapshot lacks: config.json and the weights (every shard of the index). */
export function missingFiles(snapshot: string): string[] {
  const out: string[] = [];
  const check = (name: string): boolean => {
    const problem = fileProblem(snapshot, name);
    if (problem) out.push(problem);
    return !problem;
  };
  check('config.json');
  const index = path.join(snapshot, 'model.safetensors.index.json');
  if (fs.existsSync(index)) {
    try {
      const map = (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map?: Record<string, string> }).weight_map;
      for (const shard of new Set(Object.values(map ?? {}))) check(shard);
    } catch {
      out.push('model.safetensors.index.json is not valid JSON');
    }
  } else if (!listed(snapshot).some((n) => n.endsWith('.safetensors') && !fileProblem(snapshot, n))) {
    // A snapshot with only .bin weights is complete as downloaded: the model loader says how to convert it.
    if (!listed(snapshot).some((n) => n.endsWith('.bin'))) check('model.safetensors');
  }
  return out;
}

// ---- Internals ----

function resolveLocal(s: string, baseDir?: string): string {
  const expanded = s === '~' || s.startsWith('~/') ? path.join(os.homedir(), s.slice(1)) : s;
  return path.resolve(baseDir ?? '.', expanded);
}

function specOf(repoId: string, revision: string): string {
  return revision === DEFAULT_REVISION ? repoId : `${repoId}@${revision}`;
}

/** A ref's commit, or undefined when the ref file is missing or does not hold a commit. */
function readRef(repo: string, revision: string): string | undefined {
  try {
    const sha = fs.readFileSync(path.join(repo, 'refs', ...revision.split('/')), 'utf8').trim();
    return isCommit(sha) ? sha : undefined;
  } catch {
    return undefined;
  }
}

function cachedRevisions(repo: string, repoId: string): CachedRevision[] {
  const out: CachedRevision[] = [];
  const named = new Set<string>();
  const refsDir = path.join(repo, 'refs');
  for (const ref of walk(refsDir).sort(byMainFirst)) {
    const commit = readRef(repo, ref);
    if (!commit) continue;
    const snapshot = path.join(repo, 'snapshots', commit);
    if (!fs.existsSync(snapshot)) continue;
    named.add(commit);
    out.push(revisionOf(repoId, ref, commit, snapshot));
  }
  for (const commit of listed(path.join(repo, 'snapshots')).sort()) {
    if (named.has(commit) || !isCommit(commit)) continue;
    out.push(revisionOf(repoId, commit, commit, path.join(repo, 'snapshots', commit)));
  }
  return out;
}

function revisionOf(repoId: string, revision: string, commit: string, snapshot: string): CachedRevision {
  let modelType: string | undefined;
  try {
    const t = (JSON.parse(fs.readFileSync(path.join(snapshot, 'config.json'), 'utf8')) as { model_type?: unknown })
      .model_type;
    modelType = typeof t === 'string' ? t : undefined;
  } catch {
    // no config.json (yet): the missing list says so
  }
  return { revision, spec: specOf(repoId, revision), commit, snapshot, modelType, missing: missingFiles(snapshot) };
}

const byMainFirst = (a: string, b: string): number =>
  Number(a !== DEFAULT_REVISION) - Number(b !== DEFAULT_REVISION) || a.localeCompare(b);

/** Files under `dir`, as '/'-joined relative names (refs may be nested: refs/pr/1). */
function walk(dir: string, prefix = ''): string[] {
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  // Dot files are temp files of an atomic write, never refs.
  return entries
    .filter((e) => !e.name.startsWith('.'))
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name), `${prefix}${e.name}/`) : [`${prefix}${e.name}`]));
}

function listed(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Why a snapshot's file cannot be read: absent, a dangling link (its blob gone, or still `.incomplete`); or null. */
function fileProblem(snapshot: string, name: string): string | null {
  const file = path.join(snapshot, name);
  let link: fs.Stats;
  try {
    link = fs.lstatSync(file);
  } catch {
    const why = interrupted(snapshot) ? ' (a download was interrupted: blobs/ holds .incomplete files)' : '';
    return `${name} is missing${why}`;
  }
  if (!link.isSymbolicLink()) return null;
  if (fs.existsSync(file)) return null;
  const blob = path.resolve(path.dirname(file), fs.readlinkSync(file));
  return fs.existsSync(`${blob}.incomplete`)
    ? `${name} is incomplete (${path.basename(blob)}.incomplete: the download did not finish)`
    : `${name} links to a missing blob (${path.basename(blob)})`;
}

function interrupted(snapshot: string): boolean {
  return listed(path.resolve(snapshot, '..', '..', 'blobs')).some((n) => n.endsWith('.incomplete'));
}
