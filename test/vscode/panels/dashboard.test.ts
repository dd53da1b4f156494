// The dashboard host (src/vscode/panels/dashboard.ts) under a stub of the `vscode` module, over a real run folder: what it
// sends the page on `ready`, how it follows a run written by another process (the CLI), a resume's rewrite, a
// crash of this window's run, the panel restored after a reload (also of a deleted run), and openFile's limits.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { train } from '../../../src/engine/train/train';
import { isHostToDashboard, webviewMessage, type HostToDashboard } from '../../../src/protocol/dashboard';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import type { Dashboards as DashboardsType } from '../../../src/vscode/panels/dashboard';
import type { RunFeeds as RunFeedsType } from '../../../src/vscode/runs/feeds';
import type { RunEvent, RunManager } from '../../../src/vscode/runs/run-manager';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { EventEmitter, installWebviewStub, stub, Uri, type FakePanel } from '../webview-stub';

installWebviewStub();
let Dashboards: typeof DashboardsType;
let RunFeeds: typeof RunFeedsType;

/** This window's runs, as the test says: `live` maps a run folder to its `ended` promise. */
class FakeRuns {
  readonly live = new Map<
    string,
    { runDir: string; ended: Promise<{ status: 'failed'; error?: { message: string }; runDir: string }> }
  >();
  readonly changes = new EventEmitter<void>();
  readonly events = new EventEmitter<RunEvent>();
  readonly onDidChange = this.changes.event;
  readonly onEvent = this.events.event;
  find(dir: string) {
    return this.live.get(path.resolve(dir));
  }
  runs() {
    return [...this.live.values()];
  }
}

const line = (e: EngineEvent) => `${JSON.stringify(e)}\n`;
const ready = (p: FakePanel) => p.fromPage(webviewMessage('ready', {}));
async function until<T>(what: string, f: () => T | undefined, ms = 5000): Promise<T> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 20))) {
    const v = f();
    if (v !== undefined && v !== false) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('dashboard host', () => {
  let events: EngineEvent[] = [];
  let finished = ''; // a finished run folder
  const ext = Uri.file('/ext');
  let runs: FakeRuns;
  let dashboards: DashboardsType;
  let feeds: RunFeedsType;

  before(async () => {
    ({ Dashboards } = await import('../../../src/vscode/panels/dashboard'));
    ({ RunFeeds } = await import('../../../src/vscode/runs/feeds'));
    await useBackend();
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: path.join(dir, 'runs'),
        run_name: 'finished',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 24 },
        lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] },
        training: { learning_rate: 1e-3, batch_size: 4, max_steps: 3 },
      },
      dir,
    );
    finished = (await train(config, () => {})).runDir;
    events = readMetrics(finished);
    runs = new FakeRuns();
    feeds = new RunFeeds(runs as unknown as RunManager);
    dashboards = new Dashboards(ext as never, feeds);
  });
  after(() => {
    dashboards.dispose();
    feeds.dispose();
  });

  /** A copy of the finished run's folder with only its first `n` events (a run still going, or one from the CLI). */
  function partialRun(n: number): string {
    const dir = path.join(tempDir(), 'cli-run');
    fs.cpSync(finished, dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'metrics.jsonl'), events.slice(0, n).map(line).join(''));
    return dir;
  }

  it('opens one panel per run, and on `ready` sends every event of metrics.jsonl with the header summary', () => {
    dashboards.open(finished);
    const panel = stub.panels.at(-1)!;
    assert.equal(panel.viewType, 'loraplus.dashboard');
    assert.equal(panel.title, 'LoRA+ finished');
    assert.match(panel.webview.html, /Content-Security-Policy/);
    assert.match(panel.webview.html, /dashboard\.js/);
    assert.match(
      panel.webview.html,
      new RegExp(`data-state="\\{&quot;runDir&quot;:&quot;${finished.replace(/[/\\]/g, '.')}&quot;\\}"`),
    );
    assert.equal(panel.posted.length, 0, 'nothing before the page is ready');
    ready(panel);
    const [init] = panel.of('init') as Extract<HostToDashboard, { type: 'init' }>[];
    assert.ok(isHostToDashboard(init));
    assert.equal(init.summary.status, 'finished');
    assert.equal(init.summary.lastLoss, (events.filter((e) => e.type === 'step').at(-1) as StepEvent).loss);
    assert.deepEqual(
      init.events.map((e) => e.type),
      events.map((e) => e.type),
    );
    assert.ok(init.packed && init.packed.modules.length === 10, 'module figures packed: 5 layers × q, v');
    dashboards.open(finished);
    assert.equal(stub.panels.at(-1), panel, 'the open panel is revealed, not duplicated');
    assert.equal(panel.reveals, 1);
    // A page reload (or a hidden panel shown again) says ready again and gets everything again.
    ready(panel);
    assert.equal(panel.of('init').length, 2);
    panel.dispose();
  });

  it('follows a run written by another process: new lines arrive as events, the end as a status', async () => {
    const dir = partialRun(3);
    dashboards.open(dir);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    const init = panel.of('init')[0] as Extract<HostToDashboard, { type: 'init' }>;
    assert.equal(init.events.length, 3);
    assert.equal(init.summary.status, 'running', 'no end yet and the file just changed');
    fs.appendFileSync(path.join(dir, 'metrics.jsonl'), events.slice(3).map(line).join(''));
    const got = await until('the appended events', () => {
      const sent = (panel.of('events') as Extract<HostToDashboard, { type: 'events' }>[]).flatMap((m) => m.events);
      return sent.length >= events.length - 3 ? sent : undefined;
    });
    assert.deepEqual(
      got.map((e) => e.type),
      events.slice(3).map((e) => e.type),
      'each event once, in order',
    );
    const end = await until('finished', () =>
      (panel.of('summary') as Extract<HostToDashboard, { type: 'summary' }>[]).find(
        (m) => m.summary.status === 'finished',
      ),
    );
    assert.equal(end.summary.error, null);
    panel.dispose();
  });

  it('starts the page over when a resume rewrites metrics.jsonl', async () => {
    const dir = partialRun(events.length);
    dashboards.open(dir);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    const file = path.join(dir, 'metrics.jsonl');
    fs.writeFileSync(`${file}.tmp`, events.slice(0, 2).map(line).join('')); // what writeFileAtomic does
    fs.renameSync(`${file}.tmp`, file);
    const second = await until(
      'a second init',
      () => panel.of('init')[1] as Extract<HostToDashboard, { type: 'init' }> | undefined,
    );
    assert.equal(second.events.length, 2);
    panel.dispose();
  });

  it('a run of this window that exits without an end event shows as failed, with the error', async () => {
    const dir = partialRun(4);
    let crash!: (v: { status: 'failed'; error: { message: string }; runDir: string }) => void;
    runs.live.set(path.resolve(dir), { runDir: dir, ended: new Promise((r) => (crash = r)) });
    dashboards.open(dir);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    assert.equal((panel.of('init')[0] as Extract<HostToDashboard, { type: 'init' }>).summary.status, 'running');
    runs.live.delete(path.resolve(dir));
    crash({ status: 'failed', error: { message: 'the training process ended unexpectedly (SIGKILL)' }, runDir: dir });
    runs.changes.fire();
    const status = await until('failed status', () =>
      (panel.of('summary') as Extract<HostToDashboard, { type: 'summary' }>[]).find(
        (m) => m.summary.status === 'failed',
      ),
    );
    assert.equal(status.summary.error, 'the training process ended unexpectedly (SIGKILL)');
    panel.dispose();
  });

  it('restores panels after a reload from the page’s saved state; a deleted run says so', async () => {
    const serializer = stub.serializers.get('loraplus.dashboard')!;
    const { FakePanel } = await import('../webview-stub');
    const restored = new FakePanel('loraplus.dashboard', 'LoRA+ finished');
    await serializer.deserializeWebviewPanel(restored, { runDir: finished });
    ready(restored);
    assert.equal(restored.of('init').length, 1);
    assert.equal(restored.title, 'LoRA+ finished');

    const gone = partialRun(2);
    fs.rmSync(gone, { recursive: true });
    const orphan = new FakePanel('loraplus.dashboard', 'LoRA+ cli-run');
    await serializer.deserializeWebviewPanel(orphan, { runDir: gone });
    ready(orphan);
    const [missing] = orphan.of('missing');
    assert.ok(isHostToDashboard(missing) && missing.type === 'missing');
    assert.match(missing.message, /no longer exists/);
    assert.equal(orphan.of('init').length, 0);
    restored.dispose();
    orphan.dispose();
  });

  it('openFile opens files inside the run folder only', async () => {
    dashboards.open(finished);
    const panel = stub.panels.at(-1)!;
    for (const p of ['config.yaml', '../finished/../../etc/passwd', '/etc/passwd', 'no-such-file'])
      panel.fromPage(webviewMessage('openFile', { path: p }));
    panel.fromPage({ v: 1, type: 'openFile', path: 42 }); // malformed: ignored
    await until('showTextDocument', () => stub.opened.length > 0 || undefined);
    assert.deepEqual(stub.opened, [path.join(finished, 'config.yaml')]);
    panel.dispose();
  });

  it('the A/B quantity picked in one dashboard comes back in the next, also after closing it', () => {
    const kept = new Map<string, unknown>();
    const memento = { get: (k: string) => kept.get(k), update: async (k: string, v: unknown) => void kept.set(k, v) };
    const d = new Dashboards(ext as never, feeds, memento as never);
    d.open(finished);
    const first = stub.panels.at(-1)!;
    ready(first);
    const init = () => stub.panels.at(-1)!.of('init').at(-1) as Extract<HostToDashboard, { type: 'init' }>;
    assert.deepEqual(init().view, {}, 'nothing picked yet');
    first.fromPage(webviewMessage('saveView', { abQuantity: 'grad_B' }));
    first.fromPage({ v: 2, type: 'saveView', abQuantity: 7 }); // malformed: ignored
    first.dispose();
    d.open(finished);
    ready(stub.panels.at(-1)!);
    assert.deepEqual(init().view, { abQuantity: 'grad_B' });
    assert.ok(isHostToDashboard(init()));
    d.dispose();
  });

  it('dispose closes every panel and drops the serializer and the subscriptions', () => {
    const d = new Dashboards(ext as never, feeds);
    const listeners = () => (feeds as unknown as { emitter: { size: number } }).emitter.size;
    const before = listeners();
    d.open(finished);
    const panel = stub.panels.at(-1)!;
    assert.equal(listeners(), before + 1);
    d.dispose();
    assert.ok(panel.isDisposed);
    assert.equal(listeners(), before);
    assert.equal(stub.serializers.has('loraplus.dashboard'), false);
  });
});
