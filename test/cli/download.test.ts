// `loraplus download`, run in-process against the local Hub of test/engine/hub/hub-server.ts with HF_ENDPOINT and
// HF_HUB_CACHE pointing at it and a temp folder: the summary, progress lines, a gated repo's error, the live bar; and
// the engine process's `download` request, stopped and continued, as the extension host drives it.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { progressRenderer } from '../../src/cli/download';
import type { DownloadSummary, EngineToHost, HostToEngine } from '../../src/protocol/host';
import { commitOf, filesOf, startHub, TINY, type HubServer } from '../engine/hub/hub-server';
import { runCli } from '../helpers/cli';
import { tempDir } from '../helpers/shared';

const CHILD = path.resolve(__dirname, '..', '..', 'src', 'cli', 'child.ts');
const files = filesOf(TINY);
const REPO = { id: 'tiny/model', files };
const VARS = ['HF_ENDPOINT', 'HF_HUB_CACHE', 'HF_HOME', 'HF_TOKEN', 'HUGGING_FACE_HUB_TOKEN'] as const;

/** The CLI with its progress (written to process.stderr) captured too. */
async function run(argv: string[]) {
  const progress: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => progress.push(String(chunk)) > 0) as typeof write;
  try {
    return { ...(await runCli(argv)), progress: progress.join('') };
  } finally {
    process.stderr.write = write;
  }
}

/** The engine process as the extension host drives it: one download request; `onMessage` may send a stop. */
function runChild(
  env: NodeJS.ProcessEnv,
  onMessage?: (m: EngineToHost, stop: () => void) => void,
): Promise<{ messages: EngineToHost[]; code: number | null }> {
  const child = fork(CHILD, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env });
  const messages: EngineToHost[] = [];
  child.on('message', (m: EngineToHost) => {
    messages.push(m);
    onMessage?.(m, () => child.connected && child.send({ type: 'stop' } satisfies HostToEngine));
  });
  child.send({ type: 'request', id: 3, method: 'download', params: { repoId: 'tiny/model' } } satisfies HostToEngine);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ messages, code })));
}

describe('loraplus download', () => {
  let hub: HubServer;
  let cache: string;
  const saved = Object.fromEntries(VARS.map((k) => [k, process.env[k]]));
  before(async () => {
    hub = await startHub([REPO, { id: 'tiny/gated', files, gated: true }]);
    cache = tempDir();
    for (const k of VARS) delete process.env[k];
    Object.assign(process.env, { HF_ENDPOINT: hub.endpoint, HF_HUB_CACHE: cache, HF_HOME: tempDir() });
  });
  after(async () => {
    for (const k of VARS) if (saved[k] === undefined) delete process.env[k];
    Object.assign(process.env, Object.fromEntries(Object.entries(saved).filter(([, v]) => v !== undefined)));
    await hub.close();
  });

  it('--json: the summary; progress as plain lines when stderr is not a terminal', async () => {
    const r = await run(['download', 'tiny/model', '--json']);
    assert.equal(r.code, 0, r.err);
    const s = JSON.parse(r.out) as DownloadSummary;
    assert.equal(s.snapshot, path.join(cache, 'models--tiny--model', 'snapshots', s.commit));
    assert.deepEqual([...s.files].sort(), Object.keys(files).sort());
    assert.equal(s.downloaded, s.bytes);
    for (const [name, bytes] of Object.entries(files))
      assert.ok(fs.readFileSync(path.join(s.snapshot, name)).equals(bytes));
    assert.match(
      r.progress,
      /^downloading 100% · 2\d\d(\.\d)? kB of 2\d\d(\.\d)? kB · .*\/s · model\.safetensors \(\d\/\d\)$/m,
    );
    assert.match(r.progress, /^done: tiny\/model@main is in /m);
    assert.ok(!r.progress.includes('\r'), 'no live bar in a pipe');
  });

  it('a second run downloads nothing and says how to use the model', async () => {
    const r = await run(['download', 'tiny/model']);
    assert.equal(r.code, 0, r.err);
    const [what, where, use] = r.out.split('\n');
    assert.match(what, /^tiny\/model \(\w+, 2\d\d(\.\d)? kB; 0 B downloaded now\)$/);
    assert.equal(where.trim(), path.join(cache, 'models--tiny--model', 'snapshots', commitOf(REPO)));
    assert.match(use, /^ {2}use it in a config as +model: tiny\/model$/);
  });

  it('a gated repo: exit 1, what to do, nothing in the cache', async () => {
    const r = await run(['download', 'tiny/gated']);
    assert.equal(r.code, 1);
    assert.match(r.err, /^error: tiny\/gated is gated or private: downloading it needs a Hugging Face login\./);
    assert.match(r.err, /Accept its conditions on http:.*\/tiny\/gated .*huggingface-cli login.*HF_TOKEN/);
    assert.ok(!fs.existsSync(path.join(cache, 'models--tiny--gated')));
  });

  it('usage errors', async () => {
    assert.match((await run(['download'])).err, /download needs one Hub model id/);
    assert.match((await run(['--help'])).out, /loraplus download ORG\/NAME \[--revision R\] \[--json\]/);
  });

  it('engine process: progress as log lines; a stop keeps what arrived, the next request continues', async () => {
    const dir = tempDir();
    const env = { ...process.env, HF_HUB_CACHE: dir };
    hub.stall('model.safetensors', 50_000);
    const blobs = path.join(dir, 'models--tiny--model', 'blobs');
    const partial = () =>
      fs.readdirSync(blobs).flatMap((b) => (b.endsWith('.incomplete') ? [fs.statSync(path.join(blobs, b)).size] : []));
    // Stopped once the stalled transfer's first bytes are on disk, as a user's Cancel would.
    const stopped = await runChild(env, (m, stop) => {
      if (m.type !== 'log' || !m.line.startsWith('model.safetensors: ')) return;
      const poll = setInterval(() => partial()[0] === 50_000 && (clearInterval(poll), stop()), 20);
    });
    const answer = stopped.messages.at(-1) as { error?: { code: string } };
    assert.equal(answer.error?.code, 'hub/cancelled');
    assert.deepEqual(partial(), [50_000]);
    const done = await runChild(env);
    const logs = done.messages.flatMap((m) => (m.type === 'log' ? [m.line] : []));
    assert.ok(logs.includes('model.safetensors: continued from byte 50000'), logs.join('\n'));
    assert.match(logs.filter((l) => l.startsWith('downloading')).at(-1)!, /^downloading 100% · /);
    const result = (done.messages.at(-1) as { result: DownloadSummary }).result;
    assert.ok(fs.readFileSync(path.join(result.snapshot, 'model.safetensors')).equals(files['model.safetensors']));
    assert.equal(done.code, 0);
  });

  it('on a terminal, one live bar that the next line clears', () => {
    let text = '';
    const out = { isTTY: true, write: (s: string) => (text += s) } as unknown as NodeJS.WriteStream;
    const r = progressRenderer(out);
    const p = { file: 'model.safetensors', index: 2, files: 2, fileSize: 100, totalBytes: 200, elapsedS: 1 };
    r.progress({ ...p, fileBytes: 50, bytes: 150, received: 150 });
    r.line('model.safetensors: done');
    assert.equal(
      text,
      '\r\x1b[2K[##################......] downloading 75% · 150 B of 200 B · 150 B/s · ' +
        'model.safetensors (2/2) · ETA 0.3s\r\x1b[2Kmodel.safetensors: done\n',
    );
  });
});
