// The Hugging Face cache as huggingface_hub builds it (refs/, snapshots/ with relative symlinks into blobs/ named by
// sha256 or git sha1), made here from the shared tiny models: Hub ids against paths, resolving revisions, and what
// resolveModel says when something is missing.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { listCachedModels, parseModelSpec, resolveModel } from '../../../src/engine/hub/cache';
import { hubCacheDir, hubEndpoint, hubToken } from '../../../src/engine/hub/env';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED, tempDir } from '../../helpers/shared';
import { cacheRepo, sha256 } from '../../helpers/hub-cache';
import { filesOf } from './hub-server';

const QWEN = filesOf(path.join(SHARED, 'models', 'tiny-random-qwen3'));
const BERT = filesOf(path.join(SHARED, 'models', 'tiny-random-bert'));
const C1 = '1'.repeat(40);
const C2 = '2'.repeat(40);

function code(fn: () => unknown): LoraPlusError {
  try {
    fn();
  } catch (err) {
    if (err instanceof LoraPlusError) return err;
    throw err;
  }
  throw new Error('no error');
}

describe('Hub ids and paths', () => {
  it('tells Hub ids from paths; a path that exists always wins', () => {
    const base = tempDir();
    const hub = (repoId: string, revision = 'main') => ({
      kind: 'hub',
      repoId,
      revision,
      explicitRevision: revision !== 'main',
    });
    assert.deepEqual(parseModelSpec('Qwen/Qwen3-0.6B', { baseDir: base }), hub('Qwen/Qwen3-0.6B'));
    assert.deepEqual(parseModelSpec('gpt2', { baseDir: base }), hub('gpt2'));
    assert.deepEqual(parseModelSpec('org/name@v1.0', { baseDir: base }), hub('org/name', 'v1.0'));
    assert.deepEqual(parseModelSpec('org/name@refs/pr/1', { baseDir: base }), hub('org/name', 'refs/pr/1'));
    for (const p of ['./org/name', '../models/x', '/abs/model', 'a/b/c', 'org/-bad', 'org--x/y', 'name@', 'C:\\m'])
      assert.equal(parseModelSpec(p, { baseDir: base }).kind, 'path', p);
    assert.deepEqual(parseModelSpec('~/m', { baseDir: base }), { kind: 'path', path: path.join(os.homedir(), 'm') });
    fs.mkdirSync(path.join(base, 'org', 'name'), { recursive: true });
    assert.deepEqual(parseModelSpec('org/name', { baseDir: base }), {
      kind: 'path',
      path: path.join(base, 'org/name'),
    });
  });

  it('cache folder, endpoint and token from the environment, as huggingface_hub reads them', () => {
    const home = os.homedir();
    assert.equal(hubCacheDir({}), path.join(home, '.cache', 'huggingface', 'hub'));
    assert.equal(hubCacheDir({ HF_HOME: '/h' }), '/h/hub');
    assert.equal(hubCacheDir({ HF_HOME: '/h', HF_HUB_CACHE: '/c' }), '/c');
    assert.equal(hubCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/huggingface/hub');
    assert.equal(hubEndpoint({}), 'https://huggingface.co');
    assert.equal(hubEndpoint({ HF_ENDPOINT: 'https://mirror.example/' }), 'https://mirror.example');
    const dir = tempDir();
    assert.equal(hubToken({ HF_HOME: dir }), undefined);
    fs.writeFileSync(path.join(dir, 'token'), 'hf_file\n');
    assert.equal(hubToken({ HF_HOME: dir }), 'hf_file');
    assert.equal(hubToken({ HF_HOME: dir, HF_TOKEN: 'hf_env' }), 'hf_env');
  });
});

describe('resolveModel', () => {
  it('finds a cached model by ref, tag and commit; the files are the originals', () => {
    const cache = tempDir();
    const { snapshot } = cacheRepo(cache, 'tiny/qwen3', C1, QWEN, ['main', 'v1']);
    cacheRepo(cache, 'tiny/qwen3', C2, QWEN, ['refs/pr/1']);
    const o = { cacheDir: cache, baseDir: tempDir() };
    assert.equal(resolveModel('tiny/qwen3', o), snapshot);
    assert.equal(resolveModel('tiny/qwen3@v1', o), snapshot);
    assert.equal(resolveModel(`tiny/qwen3@${C1}`, o), snapshot);
    assert.equal(resolveModel('tiny/qwen3@refs/pr/1', o), path.join(cache, 'models--tiny--qwen3', 'snapshots', C2));
    for (const [name, bytes] of Object.entries(QWEN))
      assert.ok(fs.readFileSync(path.join(snapshot, name)).equals(bytes));
    // The environment's cache when none is given.
    assert.equal(resolveModel('tiny/qwen3', { env: { HF_HUB_CACHE: cache } }), snapshot);
    // A local folder is returned as it is.
    const local = path.join(SHARED, 'models', 'tiny-random-bert');
    assert.equal(resolveModel(local), local);
  });

  it('says what is missing and how to get it', () => {
    const cache = tempDir();
    const o = { cacheDir: cache, baseDir: tempDir() };
    let e = code(() => resolveModel('tiny/absent', o));
    assert.equal(e.code, 'hub/not-cached');
    assert.match(
      e.message,
      /'tiny\/absent' is not a folder here \(.*\) and tiny\/absent is not in the Hugging Face cache/,
    );
    assert.match(e.info.hint!, /loraplus download tiny\/absent \(or: huggingface-cli download tiny\/absent\)/);

    cacheRepo(cache, 'tiny/qwen3', C1, QWEN, ['v1']);
    e = code(() => resolveModel('tiny/qwen3', o));
    assert.equal(e.code, 'hub/revision-not-cached');
    assert.match(e.message, /revision 'main' of tiny\/qwen3 is not in the Hugging Face cache \(cached: v1\)/);
    assert.match(e.info.hint!, /loraplus download tiny\/qwen3 .*or name a cached one: tiny\/qwen3@v1/);
    e = code(() => resolveModel('tiny/qwen3@v2', o));
    assert.match(e.info.hint!, /loraplus download tiny\/qwen3 --revision v2/);

    const { repo, snapshot } = cacheRepo(cache, 'tiny/partial', C1, { 'config.json': QWEN['config.json'] });
    e = code(() => resolveModel('tiny/partial', o));
    assert.equal(e.code, 'hub/incomplete');
    assert.match(e.message, /model\.safetensors is missing/);
    // An interrupted download: huggingface_hub's <etag>.incomplete beside the blobs.
    fs.writeFileSync(path.join(repo, 'blobs', `${sha256(QWEN['model.safetensors'])}.incomplete`), 'part');
    assert.match(code(() => resolveModel('tiny/partial', o)).message, /a download was interrupted/);
    // A link whose blob is still .incomplete.
    const blob = path.join(repo, 'blobs', sha256(QWEN['model.safetensors']));
    fs.symlinkSync(path.relative(snapshot, blob), path.join(snapshot, 'model.safetensors'));
    assert.match(
      code(() => resolveModel('tiny/partial', o)).message,
      /model\.safetensors is incomplete .*did not finish/,
    );
    fs.rmSync(`${blob}.incomplete`);
    assert.match(code(() => resolveModel('tiny/partial', o)).message, /links to a missing blob/);
    // A path that does not exist.
    assert.equal(code(() => resolveModel('./nowhere', o)).code, 'model/not-found');
  });

  it('a snapshot with only .bin weights resolves: the loader says how to convert them', () => {
    const cache = tempDir();
    const { snapshot } = cacheRepo(cache, 'old/bert', C1, {
      'config.json': BERT['config.json'],
      'pytorch_model.bin': Buffer.from('pickle'),
    });
    assert.equal(resolveModel('old/bert', { cacheDir: cache }), snapshot);
  });
});

describe('listCachedModels', () => {
  it('lists repos with their revisions, snapshots, model_type and what is missing', () => {
    const cache = tempDir();
    const q = cacheRepo(cache, 'tiny/qwen3', C1, QWEN, ['main']);
    cacheRepo(cache, 'tiny/qwen3', C2, { 'config.json': QWEN['config.json'] }, []);
    const b = cacheRepo(cache, 'bert', C1, BERT, ['v2']);
    fs.mkdirSync(path.join(cache, 'datasets--some--data')); // not a model
    fs.mkdirSync(path.join(cache, 'models--empty--repo')); // nothing cached
    const models = listCachedModels({ cacheDir: cache });
    assert.deepEqual(
      models.map((m) => [
        m.repoId,
        m.revisions.map((r) => [r.spec, r.revision, r.commit, r.modelType, r.missing.length]),
      ]),
      [
        ['bert', [['bert@v2', 'v2', C1, 'bert', 0]]],
        [
          'tiny/qwen3',
          [
            ['tiny/qwen3', 'main', C1, 'qwen3', 0],
            [`tiny/qwen3@${C2}`, C2, C2, 'qwen3', 1],
          ],
        ],
      ],
    );
    assert.equal(models[1].revisions[0].snapshot, q.snapshot);
    assert.equal(models[0].revisions[0].snapshot, b.snapshot);
    assert.deepEqual(listCachedModels({ cacheDir: path.join(cache, 'absent') }), []);
  });
});
