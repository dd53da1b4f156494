// The run explorer's tunes (RunTree over TuneFeeds) under a stub of the `vscode` module, on a real tune (the engine's
// tune() on stories260k SST-2, 3 × 2 trials, 9 steps): the tune folder is one group item with its status and
// winner, its trials are ordinary run items under it (their run menus, checkpoints and adapter), and a tune written
// by another process is followed as its tune.jsonl grows.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { tunableConfigFromObject } from '../../../src/config/load';
import { tune } from '../../../src/engine/tune/tune';
import { CONTEXT } from '../../../src/vscode/command-table';
import type { RunEvent, RunManager, TuneRunEvent } from '../../../src/vscode/runs/run-manager';
import type { RunNode, RunTree as RunTreeType } from '../../../src/vscode/runs/run-tree';
import type { RunFeeds as RunFeedsType } from '../../../src/vscode/runs/feeds';
import type { TuneFeeds as TuneFeedsType } from '../../../src/vscode/runs/tune-feeds';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { EventEmitter, installVscodeStub, stub, type TreeItem } from '../vscode-stub';

installVscodeStub();
let RunTree: typeof RunTreeType;
let RunFeeds: typeof RunFeedsType;
let TuneFeeds: typeof TuneFeedsType;

/** This window trains nothing: every run and tune here was written "by another process". */
class NoRuns {
  readonly onDidChange = new EventEmitter<void>().event;
  readonly onEvent = new EventEmitter<RunEvent>().event;
  readonly onTune = new EventEmitter<TuneRunEvent>().event;
  runs = () => [];
  find = () => undefined;
  findTune = () => undefined;
}

function open() {
  const runs = new NoRuns() as unknown as RunManager;
  const [feeds, tunes] = [new RunFeeds(runs), new TuneFeeds(runs)];
  const tree = new RunTree(feeds, tunes);
  const item = (n: RunNode) => tree.getTreeItem(n) as unknown as TreeItem;
  const changed = () =>
    new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('the tree did not change')), 10_000);
      const d = tree.onDidChangeTreeData(() => (clearTimeout(t), d.dispose(), resolve()));
    });
  const close = () => (tree.dispose(), feeds.dispose(), tunes.dispose());
  return { tree, item, changed, close };
}

const watcher = (glob: string) => stub.watchers.filter((w) => !w.disposed && w.glob === glob).at(-1)!;
const fileUri = (p: string) => ({ scheme: 'file', fsPath: p, toString: () => p });

describe('RunTree: tunes', () => {
  let ws = '';
  let tuneDir = '';
  let winner = '';

  before(async () => {
    RunTree = (await import('../../../src/vscode/runs/run-tree')).RunTree;
    RunFeeds = (await import('../../../src/vscode/runs/feeds')).RunFeeds;
    TuneFeeds = (await import('../../../src/vscode/runs/tune-feeds')).TuneFeeds;
    await useBackend();
    ws = tempDir();
    stub.root = ws;
    const config = tunableConfigFromObject(
      {
        model: STORIES,
        task: 'sequence-classification',
        device: 'wasm',
        output_dir: path.join(ws, 'runs'),
        run_name: 'mytune',
        data: {
          train: path.join(SST2, 'dev.tsv'),
          eval_fraction: 0.25,
          text_field: 'sentence',
          max_length: 32,
          max_train_samples: 128,
        },
        lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
        training: { learning_rate: 'auto', loraplus_lr_ratio: 'auto', batch_size: 8, max_steps: 9, seed: 5 },
      },
      ws,
    );
    const grid = { learning_rate: [5e-4, 2e-3, 1], loraplus_lr_ratio: [1, 16] };
    const r = await tune(config, () => {}, undefined, { grid, evalSamples: 16 });
    [tuneDir, winner] = [r.tune_dir, r.trial!];
  });

  it('shows the tune as a group: status, winner, done menus; its trials are run items, best first', async () => {
    const t = open();
    const roots = await t.tree.getChildren();
    assert.deepEqual(
      roots.map((n) => [n.kind, n.item.label]),
      [['tune', 'mytune']],
      'the trials are not listed as runs of their own',
    );
    const node = roots[0];
    const item = t.item(node);
    assert.match(String(item.description), /^finished · winner lr_A [\d.e-]+ · λ \d+ · acc \d+\.\d%$/);
    assert.equal(item.contextValue, CONTEXT.tuneDone);
    assert.equal(item.command?.command, 'loraplus.openTuneDashboard');
    assert.equal(item.collapsibleState, 1);
    const trials = await t.tree.getChildren(node);
    assert.equal(trials.length, 6);
    assert.equal(trials[0].item.label, winner, 'the winner first');
    assert.match(String(t.item(trials[0]).description), /^finished · step 9\/9 · .* · ★ winner$/);
    assert.equal(t.item(trials[0]).contextValue, CONTEXT.runFinished);
    assert.equal(t.item(trials[0]).command?.command, 'loraplus.openDashboard');
    for (const trial of trials.slice(1)) {
      assert.equal(trial.kind, 'run');
      assert.equal(t.item(trial).contextValue, CONTEXT.runIdle, 'a stopped trial can be resumed like any run');
      assert.match(String(t.item(trial).description), /^stopped · step \d\/9 · .* · (out after rung \d|diverged)$/);
    }
    const kids = await t.tree.getChildren(trials[0]);
    assert.ok(
      kids.some((k) => k.kind === 'adapter'),
      "the winner's final adapter",
    );
    assert.equal(t.tree.allTunes().length, 1);
    assert.equal(t.tree.allRuns().length, 6, 'quick picks of runs still list every trial');
    t.close();
  });

  it('follows a tune another process writes: running with its rung, then finished when tune.jsonl grows', async () => {
    const t = open();
    await t.tree.getChildren();
    const lines = fs.readFileSync(path.join(tuneDir, 'tune.jsonl'), 'utf8').split('\n').filter(Boolean);
    const cut = lines.findIndex((l) => l.includes('"type":"rung_result"')) + 1; // one trial judged
    const live = path.join(ws, 'elsewhere', 'live');
    fs.cpSync(tuneDir, live, { recursive: true });
    fs.writeFileSync(path.join(live, 'tune.jsonl'), `${lines.slice(0, cut).join('\n')}\n`);
    const appeared = t.changed();
    watcher('**/tune.jsonl').create.fire(fileUri(path.join(live, 'tune.jsonl')));
    await appeared;
    const find = async () => (await t.tree.getChildren()).find((n) => n.dir === live)!;
    assert.equal(t.item(await find()).description, 'running · 1 of 6 trials, rung 1/3 · elsewhere');
    assert.equal(t.item(await find()).contextValue, CONTEXT.tuneRunning);

    fs.appendFileSync(path.join(live, 'tune.jsonl'), `${lines.slice(cut).join('\n')}\n`);
    const grew = t.changed();
    watcher('**/tune.jsonl').change.fire(fileUri(path.join(live, 'tune.jsonl')));
    await grew;
    assert.match(String(t.item(await find()).description), /^finished · winner /);

    fs.rmSync(live, { recursive: true });
    const gone = t.changed();
    watcher('**/tune.jsonl').delete.fire(fileUri(path.join(live, 'tune.jsonl')));
    await gone;
    assert.deepEqual(
      (await t.tree.getChildren()).map((n) => n.item.label),
      ['mytune'],
    );
    t.close();
  });
});
