// The cache is shared with Python: what huggingface_hub's hf_hub_download puts there (from the local Hub of
// hub-server.ts) resolveModel finds, and what `loraplus download` puts there Python finds offline. Optional: skipped
// when Python or its huggingface_hub is missing (LORAPLUS_PYTHON names the interpreter; default python3).
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { resolveModel } from '../../../src/engine/hub/cache';
import { downloadModel } from '../../../src/engine/hub/download';
import { tempDir } from '../../helpers/shared';
import { filesOf, startHub, TINY, type HubServer } from './hub-server';

const PYTHON = process.env.LORAPLUS_PYTHON ?? 'python3';
const probe = spawnSync(PYTHON, ['-c', 'import huggingface_hub; print(huggingface_hub.__version__)'], {
  encoding: 'utf8',
});
const skip = probe.status === 0 ? false : `needs ${PYTHON} with huggingface_hub (pip install huggingface_hub)`;
const files = filesOf(TINY);

/** Runs Python against the local Hub and the given cache, with no token and no xet: only what the test serves. */
async function python(script: string, args: string[], env: Record<string, string>): Promise<string> {
  const home = tempDir();
  const { stdout } = await promisify(execFile)(PYTHON, ['-c', script, ...args], {
    env: {
      PATH: process.env.PATH,
      HOME: home,
      HF_HOME: home,
      HF_HUB_DISABLE_TELEMETRY: '1',
      HF_HUB_DISABLE_XET: '1',
      ...env,
    },
  });
  return stdout.trim();
}

const TITLE = `the cache shared with Python's huggingface_hub ${probe.status === 0 ? probe.stdout.trim() : ''}`;

describe(TITLE, { skip }, () => {
  let hub: HubServer;
  before(async () => (hub = await startHub([{ id: 'tiny/model', files }])));
  after(() => hub?.close());

  it('resolveModel finds what hf_hub_download fetched, byte for byte', async () => {
    const cache = tempDir();
    const script = [
      'import sys, json',
      'from huggingface_hub import hf_hub_download',
      'print(json.dumps([hf_hub_download(sys.argv[1], f) for f in sys.argv[2:]]))',
    ].join('\n');
    const paths = JSON.parse(
      await python(script, ['tiny/model', ...Object.keys(files)], { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache }),
    ) as string[];
    const dir = resolveModel('tiny/model', { cacheDir: cache });
    assert.deepEqual(
      paths.map((p) => path.dirname(p)),
      Object.keys(files).map(() => dir),
    );
    for (const [name, bytes] of Object.entries(files))
      assert.ok(fs.readFileSync(path.join(dir, name)).equals(bytes), name);
    // Python's LFS request went to the CDN host without the Hub's redirect being followed with credentials.
    assert.ok(hub.requests.some((q) => q.path.startsWith('/cdn/') && q.host.startsWith('localhost:')));
    // loraplus download builds the same tree: the same refs, blob names and links (Python's .locks/ and its
    // CACHEDIR.TAG for backup tools aside).
    const ours = tempDir();
    await downloadModel('tiny/model', { cacheDir: ours, endpoint: hub.endpoint });
    assert.deepEqual(
      tree(ours),
      tree(cache).filter((f) => !/^(\.locks|CACHEDIR\.TAG)/.test(f)),
    );
  });

  it('Python finds offline what loraplus download fetched', async () => {
    const cache = tempDir();
    const r = await downloadModel('tiny/model', { cacheDir: cache, endpoint: hub.endpoint });
    const script = [
      'from huggingface_hub import snapshot_download, hf_hub_download',
      "d = snapshot_download('tiny/model', local_files_only=True)",
      "print(d); print(open(hf_hub_download('tiny/model', 'config.json', local_files_only=True)).read())",
    ].join('\n');
    const out = await python(script, [], { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: '1' });
    const [dir, ...config] = out.split('\n');
    assert.equal(dir, r.snapshot);
    assert.deepEqual(JSON.parse(config.join('\n')), JSON.parse(files['config.json'].toString()));
  });
});

/** Every file under dir, relative, with a link's target and a ref's content: the cache's shape. */
function tree(dir: string, rel = ''): string[] {
  return fs
    .readdirSync(path.join(dir, rel), { withFileTypes: true })
    .flatMap((e) => {
      const p = path.join(rel, e.name);
      if (e.isDirectory()) return tree(dir, p);
      if (e.isSymbolicLink()) return [`${p} -> ${fs.readlinkSync(path.join(dir, p))}`];
      return [p.includes(`refs${path.sep}`) ? `${p} = ${fs.readFileSync(path.join(dir, p), 'utf8')}` : p];
    })
    .sort();
}
