// downloadModel against a local Hub (hub-server.ts): a full download that resolveModel then finds byte for byte, an
// interrupted one continued with a Range request, a gated repo, refusals before any weight byte, and shards.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { listCachedModels, resolveModel } from '../../../src/engine/hub/cache';
import { downloadModel, progressLine, type DownloadProgress } from '../../../src/engine/hub/download';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED, tempDir } from '../../helpers/shared';
import { commitOf, filesOf, sha256, startHub, TINY, type HubServer, type Repo } from './hub-server';

const tiny = filesOf(TINY);
const llama = filesOf(path.join(SHARED, 'models', 'tiny-random-llama3'));
const extras = {
  'README.md': Buffer.from('# a model card: not needed to train\n'),
  'pytorch_model.bin': Buffer.alloc(4096, 7), // the same weights as .bin: never fetched when safetensors exist
  'onnx/model.onnx': Buffer.alloc(1024, 1),
};
const REPOS: Repo[] = [
  { id: 'tiny/model', files: { ...tiny, ...extras } },
  { id: 'tiny/resume', files: tiny },
  { id: 'tiny/gated', files: tiny, gated: true },
  {
    id: 'tiny/bin-only',
    files: {
      'config.json': llama['config.json'],
      'pytorch_model.bin': Buffer.alloc(8192, 3),
      'tokenizer.json': llama['tokenizer.json'],
    },
  },
  {
    id: 'tiny/mamba',
    files: { ...tiny, 'config.json': Buffer.from(JSON.stringify({ model_type: 'mamba', hidden_size: 32 })) },
  },
  { id: 'tiny/sharded', files: sharded(tiny) },
];

/** The model's safetensors split into two "shards" by bytes, with an index (the loader is not run here). */
function sharded(files: Record<string, Buffer>): Record<string, Buffer> {
  const { 'model.safetensors': weights, ...rest } = files;
  const half = Math.floor(weights.length / 2);
  const names = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const index = {
    metadata: { total_size: weights.length },
    weight_map: { 'a.weight': names[0], 'b.weight': names[1] },
  };
  return {
    ...rest,
    [names[0]]: weights.subarray(0, half),
    [names[1]]: weights.subarray(half),
    'model.safetensors.index.json': Buffer.from(JSON.stringify(index)),
  };
}

const isWeights = (p: string) => /\.(safetensors|bin)(\?|$)|\/cdn\//.test(p);

describe('loraplus download (engine)', () => {
  let hub: HubServer;
  before(async () => (hub = await startHub(REPOS, { token: 'hf_good' })));
  after(() => hub.close());
  const opts = (cacheDir: string) => ({ cacheDir, endpoint: hub.endpoint, token: undefined as string | undefined });

  it('fetches the training files into the HF cache layout; resolveModel finds them byte for byte', async () => {
    const cache = tempDir();
    const seen: DownloadProgress[] = [];
    const lines: string[] = [];
    const r = await downloadModel('tiny/model', {
      ...opts(cache),
      onProgress: (p) => seen.push(p),
      log: (l) => lines.push(l),
    });
    const commit = commitOf(REPOS[0]);
    const repo = path.join(cache, 'models--tiny--model');
    assert.equal(r.commit, commit);
    assert.equal(r.snapshot, path.join(repo, 'snapshots', commit));
    assert.deepEqual([...r.files].sort(), Object.keys(tiny).sort());
    assert.equal(fs.readFileSync(path.join(repo, 'refs', 'main'), 'utf8'), commit);
    // The layout huggingface_hub makes: relative links into blobs/, named by sha256 (LFS) or git sha1.
    const link = fs.readlinkSync(path.join(r.snapshot, 'model.safetensors'));
    assert.equal(link, path.join('..', '..', 'blobs', sha256(tiny['model.safetensors'])));
    assert.match(path.basename(fs.readlinkSync(path.join(r.snapshot, 'config.json'))), /^[0-9a-f]{40}$/);
    assert.deepEqual(
      fs.readdirSync(path.join(repo, 'blobs')).filter((b) => b.includes('.')),
      [],
      'no temp files left',
    );
    // resolveModel finds it, and the files are the originals.
    assert.equal(resolveModel('tiny/model', { cacheDir: cache }), r.snapshot);
    for (const [name, bytes] of Object.entries(tiny))
      assert.ok(fs.readFileSync(path.join(r.snapshot, name)).equals(bytes), name);
    // Only the files training needs: no README, no .bin, nothing from subfolders.
    assert.ok(!hub.requests.some((q) => /README|pytorch_model|onnx/.test(q.path)), 'extras never requested');
    assert.equal(
      listCachedModels({ cacheDir: cache })[0].revisions[0].modelType,
      JSON.parse(tiny['config.json'].toString()).model_type,
    );
    // Progress reached 100% with the bytes of every file; lines say what happened.
    const last = seen.at(-1)!;
    assert.equal(last.bytes, last.totalBytes);
    assert.equal(
      last.totalBytes,
      Object.values(tiny).reduce((s, b) => s + b.length, 0),
    );
    assert.match(progressLine(last), /^downloading 100% · .* of .* · .*\/s · /);
    assert.ok(lines.some((l) => l.startsWith('done: tiny/model@main')));
    // A second call downloads nothing.
    const again = await downloadModel('tiny/model', opts(cache));
    assert.equal(again.downloaded, 0);
  });

  it('continues an interrupted download with a Range request, without fetching the first bytes again', async () => {
    const cache = tempDir();
    const weights = tiny['model.safetensors'];
    const cutAt = 100_000;
    hub.cut('model.safetensors', cutAt);
    const from = hub.requests.length;
    await assert.rejects(downloadModel('tiny/resume', opts(cache)), (e: LoraPlusError) => {
      assert.equal(e.code, 'hub/interrupted');
      assert.match(e.message, /model\.safetensors broke off after 100000 of \d+ bytes/);
      return true;
    });
    const repo = path.join(cache, 'models--tiny--resume');
    const blob = path.join(repo, 'blobs', sha256(weights));
    assert.equal(fs.statSync(`${blob}.incomplete`).size, cutAt);
    assert.ok(!fs.existsSync(blob) && !fs.existsSync(path.join(repo, 'refs')), 'no blob or ref before it is complete');
    assert.throws(
      () => resolveModel('tiny/resume', { cacheDir: cache }),
      /revision 'main' of tiny\/resume is not in the Hugging Face cache \(a download that did not finish\?\)/,
    );

    const r = await downloadModel('tiny/resume', opts(cache));
    const gets = hub.requests.slice(from).filter((q) => q.served?.file === 'model.safetensors');
    assert.deepEqual(
      gets.map((q) => [q.range, q.served!.start, q.served!.bytes]),
      [
        [undefined, 0, cutAt],
        [`bytes=${cutAt}-`, cutAt, weights.length - cutAt],
      ],
    );
    assert.ok(fs.readFileSync(path.join(r.snapshot, 'model.safetensors')).equals(weights));
    assert.ok(!fs.existsSync(`${blob}.incomplete`));
    assert.ok(r.downloaded < Object.values(tiny).reduce((s, b) => s + b.length, 0));
  });

  it('a gated repo: a clear error that says how to log in, nothing written; a token with access gets it', async () => {
    const cache = tempDir();
    await assert.rejects(downloadModel('tiny/gated', opts(cache)), (e: LoraPlusError) => {
      assert.equal(e.code, 'hub/gated');
      assert.match(e.message, /tiny\/gated is gated or private: downloading it needs a Hugging Face login/);
      assert.match(e.info.hint!, /huggingface-cli login.*HF_TOKEN/);
      return true;
    });
    assert.deepEqual(fs.readdirSync(cache), [], 'nothing in the cache');
    await assert.rejects(
      downloadModel('tiny/gated', { ...opts(cache), token: 'hf_other' }),
      /your token has no access/,
    );
    const r = await downloadModel('tiny/gated', { ...opts(cache), token: 'hf_good' });
    assert.ok(fs.existsSync(path.join(r.snapshot, 'model.safetensors')));
    // The token went to the Hub only, never to the CDN host.
    const cdn = hub.requests.filter((q) => q.path.startsWith('/cdn/'));
    assert.ok(cdn.length && cdn.every((q) => !q.auth && q.host.startsWith('localhost:')));
  });

  it('the token comes from HF_TOKEN or the token file of huggingface-cli login', async () => {
    const home = tempDir();
    fs.writeFileSync(path.join(home, 'token'), 'hf_good\n');
    const env = { HF_HOME: home, HF_ENDPOINT: hub.endpoint };
    const r = await downloadModel('tiny/gated', { env });
    assert.equal(r.snapshot, path.join(home, 'hub', 'models--tiny--gated', 'snapshots', commitOf(REPOS[2])));
    await assert.rejects(downloadModel('tiny/gated', { env: { ...env, HF_TOKEN: 'hf_other' } }), /no access/);
  });

  for (const [id, code, pattern] of [
    ['tiny/bin-only', 'hub/bin-only', /has only PyTorch weights \(pytorch_model\.bin\)/],
    ['tiny/mamba', 'hub/unsupported', /is a 'mamba' model, which this engine does not support/],
  ] as const) {
    it(`refuses ${id} before any weight byte: ${code}`, async () => {
      const cache = tempDir();
      const from = hub.requests.length;
      await assert.rejects(downloadModel(id, opts(cache)), (e: LoraPlusError) => {
        assert.equal(e.code, code);
        assert.match(e.message, pattern);
        return true;
      });
      const asked = hub.requests.slice(from);
      assert.ok(
        asked.some((q) => q.path.endsWith('/config.json')),
        'it read config.json',
      );
      assert.deepEqual(
        asked.filter((q) => q.method === 'GET' && isWeights(q.path)),
        [],
        'no weights served',
      );
      assert.deepEqual(fs.readdirSync(cache), [], 'nothing in the cache');
    });
  }

  it('a missing repo or revision says which', async () => {
    const cache = tempDir();
    await assert.rejects(downloadModel('tiny/nope', opts(cache)), /tiny\/nope does not exist on http/);
    await assert.rejects(
      downloadModel('tiny/model', { ...opts(cache), revision: 'v9' }),
      /tiny\/model has no revision 'v9'/,
    );
    await assert.rejects(downloadModel('not an id', opts(cache)), /'not an id' is not a Hub model id/);
  });

  it('a sharded model: the index and every shard it names', async () => {
    const cache = tempDir();
    const r = await downloadModel('tiny/sharded', opts(cache));
    assert.ok(r.files.includes('model.safetensors.index.json'));
    assert.equal(r.files.filter((f) => f.endsWith('.safetensors')).length, 2);
    assert.equal(resolveModel('tiny/sharded', { cacheDir: cache }), r.snapshot);
    // A shard's blob gone: resolveModel names it.
    fs.rmSync(
      path.join(cache, 'models--tiny--sharded', 'blobs', sha256(sharded(tiny)['model-00002-of-00002.safetensors'])),
    );
    assert.throws(
      () => resolveModel('tiny/sharded', { cacheDir: cache }),
      /model-00002-of-00002\.safetensors links to a missing blob/,
    );
  });

  it('a revision by commit writes no ref; a stop keeps what arrived', async () => {
    const cache = tempDir();
    const commit = commitOf(REPOS[0]);
    const r = await downloadModel('tiny/model', { ...opts(cache), revision: commit });
    assert.ok(!fs.existsSync(path.join(cache, 'models--tiny--model', 'refs')));
    assert.equal(resolveModel(`tiny/model@${commit}`, { cacheDir: cache }), r.snapshot);
    const stop = new AbortController();
    stop.abort();
    await assert.rejects(
      downloadModel('tiny/resume', { ...opts(tempDir()), signal: stop.signal }),
      (e: LoraPlusError) => e.code === 'hub/cancelled',
    );
  });
});
