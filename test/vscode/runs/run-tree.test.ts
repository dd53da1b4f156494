// The run explorer's provider (RunTree) under a stub of the `vscode` module, over real run folders in a temp
// workspace: what it finds, and how it follows file changes, this window's live runs and the clock.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../../src/config/load';
import { train } from '../../../src/engine/train/train';
import type { StepEvent } from '../../../src/protocol/events';
import { CONTEXT } from '../../../src/vscode/command-table';
import type { RunManager, RunEvent, TuneRunEvent } from '../../../src/vscode/runs/run-manager';
import type { RunTree as RunTreeType } from '../../../src/vscode/runs/run-tree';
import { RECENT_MS } from '../../../src/engine/runs/summary';
import type { RunFeeds as RunFeedsType } from '../../../src/vscode/runs/feeds';
import type { TuneFeeds as TuneFeedsType } from '../../../src/vscode/runs/tune-feeds';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { EventEmitter, installVscodeStub, stub, type TreeItem } from '../vscode-stub';

installVscodeStub();
let RunTree: typeof RunTreeType;
let RunFeeds: typeof RunFeedsType;
let TuneFeeds: typeof TuneFeedsType;

/** A RunManager with no processes: the test says which run folders are live and sends their events. */
class FakeRuns {
  live = new Set<string>();
  readonly changes = new EventEmitter<void>();
  readonly events = new EventEmitter<RunEvent>();
  readonly onDidChange = this.changes.event;
  readonly onEvent = this.events.event;
  readonly onTune = new EventEmitter<TuneRunEvent>().event; // no tunes here (tune-tree.test.ts has them)
  private readonly handles = new Map<string, { runDir: string; ended: Promise<never> }>();
  /** A live run's handle; its process never reports an outcome here (the test ends it by removing it). */
  private handle(runDir: string) {
    const h = this.handles.get(runDir) ?? { runDir, ended: new Promise<never>(() => {}) };
    this.handles.set(runDir, h);
    return h;
  }
  runs() {
    return [...this.live].map((runDir) => this.handle(runDir));
  }
  find(dir: string) {
    return this.live.has(path.resolve(dir)) ? this.handle(path.resolve(dir)) : undefined;
  }
  findTune() {
    return undefined;
  }
}

function open(fake = new FakeRuns(), clock: () => number = Date.now) {
  const feeds = new RunFeeds(fake as unknown as RunManager, clock);
  const tunes = new TuneFeeds(fake as unknown as RunManager, clock);
  const tree = new RunTree(feeds, tunes);
  const dispose = tree.dispose.bind(tree);
  tree.dispose = () => (dispose(), feeds.dispose(), tunes.dispose());
  let fired = 0;
  tree.onDidChangeTreeData(() => fired++);
  const roots = async () => {
    const nodes = await tree.getChildren();
    return nodes.map((n) => ({ node: n, item: tree.getTreeItem(n) as unknown as TreeItem }));
  };
  const changed = (ms = 10_000) =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the tree did not change')), ms);
      const d = tree.onDidChangeTreeData(() => (clearTimeout(t), d.dispose(), resolve()));
    });
  return { tree, fake, roots, changed, fired: () => fired };
}

const RUN_FILES = '**/{metrics.jsonl,checkpoints/**,final/**}';
const watcher = (glob = RUN_FILES) => stub.watchers.filter((w) => !w.disposed && w.glob === glob).at(-1)!;
const fileUri = (p: string) => ({ scheme: 'file', fsPath: p, toString: () => p });
const byName = async (t: ReturnType<typeof open>, name: string) =>
  (await t.roots()).find((r) => r.node.dir.endsWith(`${path.sep}${name}`));

/** A copy of a run folder without its end event, last written `ago` ms before now (a run still going, or killed). */
function unended(from: string, to: string, ago: number): string {
  fs.cpSync(from, to, { recursive: true });
  const file = path.join(to, 'metrics.jsonl');
  fs.writeFileSync(
    file,
    fs
      .readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l && !l.includes('"type":"end"'))
      .join('\n') + '\n',
  );
  const t = new Date(Date.now() - ago);
  fs.utimesSync(file, t, t);
  return to;
}

describe('RunTree (the run explorer provider)', () => {
  let ws = '';
  let stopped = '';
  let finished = '';

  before(async () => {
    RunTree = (await import('../../../src/vscode/runs/run-tree')).RunTree;
    RunFeeds = (await import('../../../src/vscode/runs/feeds')).RunFeeds;
    TuneFeeds = (await import('../../../src/vscode/runs/tune-feeds')).TuneFeeds;
    await useBackend();
    ws = tempDir();
    stub.root = ws;
    stub.settings.set('loraplus.runs.exclude', '**/node_modules/**');
    const config = (name: string, task: string, maxSteps: number) =>
      configFromObject(
        {
          model: STORIES,
          task,
          device: 'wasm',
          output_dir: 'runs',
          run_name: name,
          data: {
            train: path.join(SST2, 'dev.tsv'),
            eval: path.join(SST2, 'dev.tsv'),
            text_field: 'sentence',
            max_length: 32,
            max_train_samples: 32,
            max_eval_samples: 8,
          },
          lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
          training: {
            learning_rate: 1e-3,
            loraplus_lr_ratio: 16,
            batch_size: 4,
            max_steps: maxSteps,
            eval_every: 2,
            save_every: 2,
          },
        },
        ws,
      );
    finished = (await train(config('finished', 'sequence-classification', 4), () => {})).runDir;
    const stop = new AbortController();
    stopped = (
      await train(
        config('stopped', 'causal-lm', 8),
        (e) => e.type === 'step' && e.step === 2 && stop.abort(),
        stop.signal,
      )
    ).runDir;
    // Not runs: a copy inside node_modules (excluded by the setting), and another tool's metrics.jsonl.
    fs.cpSync(finished, path.join(ws, 'node_modules', 'pkg', 'hidden'), { recursive: true });
    fs.mkdirSync(path.join(ws, 'logs'));
    fs.writeFileSync(path.join(ws, 'logs', 'metrics.jsonl'), '{"epoch": 1, "loss": 0.5}\n');
  });

  it("shows the workspace's runs newest first, with status, menus, the dashboard on click, and their children", async () => {
    const t = open();
    const roots = await t.roots();
    assert.deepEqual(
      roots.map((r) => r.item.label),
      ['stopped', 'finished'],
    );
    assert.deepEqual(
      t.tree.allRuns().map((s) => s.name),
      ['stopped', 'finished'],
    );
    const [s, f] = roots;
    assert.match(s.item.description!, /^stopped · step 2\/8 · ppl \d+\.\d · λ16 r4$/);
    assert.match(f.item.description!, /^finished · step 4\/4 · acc \d+\.\d% · λ16 r4$/);
    assert.equal(f.item.contextValue, CONTEXT.runFinished);
    assert.equal(f.item.collapsibleState, 1);
    assert.equal(f.item.iconPath?.id, 'pass');
    assert.match(f.item.tooltip!.value, /stories260k \(llama\)/);
    assert.deepEqual(f.item.command, {
      command: 'loraplus.openDashboard',
      title: 'Open Dashboard',
      arguments: [f.node],
    });
    assert.equal((f.node as { runDir: string }).runDir, finished, 'the handlers read .runDir and .dir');

    const kids = await t.tree.getChildren(f.node);
    const items = kids.map((k) => t.tree.getTreeItem(k) as unknown as TreeItem);
    assert.deepEqual(
      items.map((i) => [i.label, i.contextValue]),
      [
        ['step 2', CONTEXT.checkpoint],
        ['final adapter', CONTEXT.adapter],
      ],
    );
    assert.deepEqual(
      kids.map((k) => [k.dir, 'runDir' in k ? k.runDir : null]),
      [
        [path.join(finished, 'checkpoints', 'step-2'), finished],
        [path.join(finished, 'final'), finished],
      ],
    );
    assert.equal(items[0].resourceUri?.fsPath, kids[0].dir);
    assert.deepEqual(await t.tree.getChildren(kids[0]), []);
    t.tree.dispose();
    assert.ok(
      stub.watchers.every((w) => w.disposed),
      'dispose() ends the file watcher',
    );
  });

  it('shows a merged model under its run (<run>/merged, or merge_info naming its adapter), else on top', async () => {
    const info = (adapter: string, passed = true) =>
      JSON.stringify({
        tool: 'loraplus merge',
        created: '2026-12-07T10:00:00Z',
        as: 'model',
        base: STORIES,
        task: 'sequence-classification',
        adapters: [{ path: adapter, weight: 1, r: 4, lora_alpha: 8, use_rslora: false, loraplus_lr_ratio: 16 }],
        merge_check: { passed, max_abs_diff: 2.1e-6, failures: [] },
      });
    const inside = path.join(finished, 'merged');
    const elsewhere = path.join(ws, 'exports', 'finished-merged');
    const loose = path.join(ws, 'exports', 'python-merged');
    for (const [dir, adapter] of [
      [inside, path.join(finished, 'final')],
      [elsewhere, path.join(finished, 'checkpoints', 'step-2')],
      [loose, '/elsewhere/adapter'],
    ]) {
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'merge_info.json'), info(adapter, dir !== loose));
    }
    try {
      const t = open();
      const roots = await t.roots();
      const top = roots.find((r) => r.node.kind === 'merged')!;
      assert.deepEqual([top.node.dir, top.item.label, top.item.contextValue], [loose, 'python-merged', CONTEXT.merged]);
      assert.match(top.item.description!, /^merged model · MERGE_CHECK_FAILED/);
      assert.deepEqual(top.item.command, {
        command: 'loraplus.openModelCard',
        title: 'Open Model Card',
        arguments: [top.node],
      });
      const f = roots.find((r) => r.node.dir === finished)!;
      const kids = (await t.tree.getChildren(f.node)).filter((k) => k.kind === 'merged');
      assert.deepEqual(
        kids.map((k) => k.dir),
        [elsewhere, inside],
      );
      const item = t.tree.getTreeItem(kids[1]) as unknown as TreeItem;
      assert.deepEqual([item.label, item.contextValue], ['merged model', CONTEXT.merged]);
      assert.match(item.description!, /^check passed · max \|Δlogits\| 2\.1e-6$/);
      t.tree.dispose();
    } finally {
      for (const d of [inside, path.join(ws, 'exports')]) fs.rmSync(d, { recursive: true, force: true });
    }
  });

  it("follows the files: a new run folder appears, a quiet run turns interrupted, a deleted one goes, other tools' files stay out", async () => {
    let now = Date.now(); // the tree's clock: stands still unless the test moves it
    const t = open(undefined, () => now);
    await t.roots();
    // A run started in a terminal: no end yet, last written RECENT_MS - 1 s before the tree's now.
    const cli = unended(stopped, path.join(ws, 'runs', 'cli'), 0);
    const written = fs.statSync(path.join(cli, 'metrics.jsonl')).mtimeMs;
    now = written + RECENT_MS - 1000;
    const appeared = t.changed();
    watcher().create.fire(fileUri(path.join(cli, 'metrics.jsonl')));
    watcher().change.fire(fileUri(path.join(cli, 'checkpoints', 'step-2', 'trainer_state.json')));
    await appeared;
    const running = await byName(t, 'cli');
    assert.match(running!.item.description!, /^running · step 2\/8/);
    assert.equal(running!.item.contextValue, CONTEXT.runRunning);
    now = written + RECENT_MS + 1; // time passes: no file event, yet it must turn (about 2 s later)
    await t.changed();
    const quiet = await byName(t, 'cli');
    assert.match(quiet!.item.description!, /^interrupted · step 2\/8/);
    assert.equal(quiet!.item.contextValue, CONTEXT.runIdle);

    // Another tool writing its metrics.jsonl: that folder is read again, the workspace is not searched again.
    const searches = stub.findCalls;
    const other = t.changed();
    fs.appendFileSync(path.join(ws, 'logs', 'metrics.jsonl'), '{"epoch": 2, "loss": 0.4}\n');
    watcher().change.fire(fileUri(path.join(ws, 'logs', 'metrics.jsonl')));
    await other;
    assert.equal(stub.findCalls, searches);
    assert.ok(!(await byName(t, 'logs')));

    fs.rmSync(cli, { recursive: true });
    const gone = t.changed();
    watcher().delete.fire(fileUri(path.join(cli, 'metrics.jsonl')));
    await gone;
    assert.deepEqual(
      (await t.roots()).map((r) => r.item.label),
      ['stopped', 'finished'],
    );

    // Folders moved as a whole: one event for the folder, none for the files in it.
    const moved = path.join(ws, 'archive');
    fs.cpSync(path.dirname(finished), moved, { recursive: true });
    const came = t.changed();
    watcher('**/*').create.fire(fileUri(moved));
    await came;
    assert.deepEqual((await t.roots()).map((r) => r.item.label).sort(), ['finished', 'finished', 'stopped', 'stopped']);
    assert.ok(
      (await t.roots()).some((r) => r.item.description!.endsWith(' · archive')),
      'runs in several folders name their folder',
    );
    // A run at the top of the workspace folder is named by the folder's name.
    const top = unended(stopped, path.join(ws, 'top'), 3600_000);
    const added = t.changed();
    watcher('**/*').create.fire(fileUri(top));
    await added;
    assert.ok((await byName(t, 'top'))!.item.description!.endsWith(` · ${path.basename(ws)}`));
    fs.rmSync(top, { recursive: true });
    fs.rmSync(moved, { recursive: true });
    watcher('**/*').delete.fire(fileUri(top));
    const went = t.changed();
    watcher('**/*').delete.fire(fileUri(moved));
    await went;
    assert.deepEqual(
      (await t.roots()).map((r) => r.item.label),
      ['stopped', 'finished'],
    );
    t.tree.dispose();
  });

  it("follows this window's live run: running while alive, steps redrawn at most once a second", async () => {
    const fake = new FakeRuns();
    const t = open(fake);
    const live = unended(stopped, path.join(ws, 'runs', 'live'), 3600_000);
    t.tree.refresh();
    assert.match((await byName(t, 'live'))!.item.description!, /^interrupted/);

    fake.live.add(live);
    const started = t.changed();
    fake.changes.fire();
    await started;
    const item = (await byName(t, 'live'))!.item;
    assert.match(item.description!, /^running · step 2\/8/);
    assert.equal(item.iconPath?.id, 'sync~spin');

    const before = t.fired();
    const step = JSON.parse(
      fs
        .readFileSync(path.join(live, 'metrics.jsonl'), 'utf8')
        .split('\n')
        .find((l) => l.includes('"type":"step"'))!,
    ) as StepEvent;
    // As the engine does: each event is appended to metrics.jsonl, then sent to the host.
    const metrics = path.join(live, 'metrics.jsonl');
    for (let n = 3; n <= 7; n++) {
      const event = { ...step, step: n, loss: 1 / n };
      fs.appendFileSync(metrics, `${JSON.stringify(event)}\n`);
      fake.events.fire({ runDir: live, event });
    }
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(t.fired() - before, 1, 'five steps, one redraw');
    assert.match((await byName(t, 'live'))!.item.description!, /^running · step 7\/8 · /);

    // The process is gone without an end, and the file has been quiet since: interrupted at its last step.
    const quiet = new Date(Date.now() - 3600_000);
    fs.utimesSync(metrics, quiet, quiet);
    fake.live.delete(live);
    const ended = t.changed();
    fake.changes.fire();
    await ended;
    assert.match((await byName(t, 'live'))!.item.description!, /^interrupted · step 7\/8/);
    t.tree.dispose();
    fs.rmSync(live, { recursive: true });
  });
});
