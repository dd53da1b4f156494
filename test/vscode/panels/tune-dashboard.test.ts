// The tune dashboard host (src/vscode/panels/tune-dashboard.ts) under a stub of the `vscode` module, on a real tune
// (tune() on stories260k SST-2, 3 × 2 trials, 9 steps, started from a config file that says auto): what it sends the
// page on `ready`, how it follows a tune another process writes, the page's buttons (Open winner, a trial's cell,
// Train with these settings, which asks before it overwrites), and the panel restored after a reload.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { tunableConfigFromObject } from '../../../src/config/load';
import { tune } from '../../../src/engine/tune/tune';
import type { TuneResult } from '../../../src/protocol/tune';
import {
  isHostToTuneDashboard,
  tuneWebviewMessage,
  type HostToTuneDashboard,
} from '../../../src/protocol/tune-dashboard';
import type { TuneDashboards as TuneDashboardsType } from '../../../src/vscode/panels/tune-dashboard';
import type { RunFeeds as RunFeedsType } from '../../../src/vscode/runs/feeds';
import type { RunEvent, RunManager, TuneRunEvent } from '../../../src/vscode/runs/run-manager';
import type { TuneFeeds as TuneFeedsType } from '../../../src/vscode/runs/tune-feeds';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { EventEmitter, installWebviewStub, stub, Uri, type FakePanel } from '../webview-stub';

installWebviewStub();

type Init = Extract<HostToTuneDashboard, { type: 'init' }>;

class NoRuns {
  readonly onDidChange = new EventEmitter<void>().event;
  readonly onEvent = new EventEmitter<RunEvent>().event;
  readonly onTune = new EventEmitter<TuneRunEvent>().event;
  runs = () => [];
  find = () => undefined;
  findTune = () => undefined;
}

const ready = (p: FakePanel) => p.fromPage(tuneWebviewMessage('ready', {}));
async function until<T>(what: string, f: () => T | undefined, ms = 8000): Promise<T> {
  for (const t0 = Date.now(); Date.now() - t0 < ms; await new Promise((r) => setTimeout(r, 25))) {
    const v = f();
    if (v !== undefined) return v;
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('tune dashboard host', () => {
  let configFile = '';
  let result: TuneResult;
  let dashboards: TuneDashboardsType;
  let feeds: RunFeedsType;
  let tunes: TuneFeedsType;
  const opened: string[] = []; // run dashboards the page asked for

  before(async () => {
    const { TuneDashboards } = await import('../../../src/vscode/panels/tune-dashboard');
    const { RunFeeds } = await import('../../../src/vscode/runs/feeds');
    const { TuneFeeds } = await import('../../../src/vscode/runs/tune-feeds');
    await useBackend();
    const dir = tempDir();
    configFile = path.join(dir, 'sst2.lora.yaml');
    const doc = {
      model: STORIES,
      task: 'sequence-classification',
      device: 'wasm',
      output_dir: 'runs',
      run_name: 'sst2',
      data: {
        train: path.join(SST2, 'dev.tsv'),
        eval_fraction: 0.25,
        text_field: 'sentence',
        max_length: 32,
        max_train_samples: 128,
      },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { learning_rate: 'auto', loraplus_lr_ratio: 'auto', batch_size: 8, max_steps: 9, seed: 5 },
    };
    fs.writeFileSync(configFile, `# my SST-2 config\n${stringify(doc)}`);
    const grid = { learning_rate: [5e-4, 2e-3, 1], loraplus_lr_ratio: [1, 16] };
    result = await tune(tunableConfigFromObject(doc, dir), () => {}, undefined, { grid, evalSamples: 16, configFile });
    const runs = new NoRuns() as unknown as RunManager;
    [feeds, tunes] = [new RunFeeds(runs), new TuneFeeds(runs)];
    dashboards = new TuneDashboards(Uri.file('/ext') as never, tunes, feeds, (d) => opened.push(d));
  });
  after(() => {
    dashboards.dispose();
    [feeds, tunes].forEach((f) => f.dispose());
  });

  it('on `ready` sends the summary and every trial’s curves; one panel per tune', () => {
    dashboards.open(result.tune_dir);
    const panel = stub.panels.at(-1)!;
    assert.equal(panel.viewType, 'loraplus.tune');
    assert.equal(panel.title, 'LoRA+ tune sst2');
    assert.match(panel.webview.html, /Content-Security-Policy/);
    assert.match(panel.webview.html, /tune\.js/);
    assert.equal(panel.posted.length, 0, 'nothing before the page is ready');
    ready(panel);
    const [init] = panel.of('init') as Init[];
    assert.ok(isHostToTuneDashboard(init));
    assert.equal(init.summary.status, 'finished');
    assert.equal(init.summary.winner?.trial, result.trial);
    assert.equal(init.curves.length, 6);
    const won = init.curves.find((c) => c.trial === result.trial)!;
    assert.deepEqual(won.steps, [1, 2, 3, 4, 5, 6, 7, 8, 9], 'each step once, across the rungs it was resumed at');
    assert.ok(won.evalSteps.includes(0) && won.evalAccuracy.every((a) => a !== null));
    dashboards.open(result.tune_dir);
    assert.equal(stub.panels.at(-1), panel, 'revealed, not duplicated');
    panel.dispose();
  });

  it("the page's buttons: Open winner and a trial's cell open run dashboards; nothing outside the tune", () => {
    dashboards.open(result.tune_dir);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    opened.length = 0;
    panel.fromPage(tuneWebviewMessage('openWinner', {}));
    panel.fromPage(tuneWebviewMessage('openTrial', { trial: 'lr1-ratio16' }));
    panel.fromPage(tuneWebviewMessage('openTrial', { trial: '../../etc' }));
    panel.fromPage({ v: 1, type: 'openFile', path: '/etc/passwd' });
    assert.deepEqual(opened, [result.run_dir, path.join(result.tune_dir, 'trials', 'lr1-ratio16')]);
    panel.dispose();
  });

  it('Train with these settings: writes the tuned config beside the original, opens it, asks first', async () => {
    dashboards.open(result.tune_dir);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    const target = path.join(path.dirname(configFile), 'sst2.tuned.lora.yaml');
    panel.fromPage(tuneWebviewMessage('trainWinner', {}));
    await until('the tuned config', () => (stub.opened.includes(target) ? true : undefined));
    const written = parse(fs.readFileSync(target, 'utf8')) as { training: Record<string, unknown>; run_name: string };
    assert.equal(written.training.learning_rate, result.learning_rate);
    assert.equal(written.training.loraplus_lr_ratio, result.loraplus_lr_ratio);
    assert.equal(written.run_name, 'sst2-tuned');
    assert.match(fs.readFileSync(target, 'utf8'), /# my SST-2 config/);

    fs.writeFileSync(target, '# mine\n');
    stub.answers.push(undefined); // the user closes the "Overwrite?" dialog
    const asked = stub.messages.length;
    panel.fromPage(tuneWebviewMessage('trainWinner', {}));
    await until('the overwrite question', () => (stub.messages.length > asked ? true : undefined));
    assert.match(stub.messages.at(-1)!.text, /sst2\.tuned\.lora\.yaml already exists\. Overwrite it/);
    assert.deepEqual(stub.messages.at(-1)!.items, ['Overwrite']);
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(fs.readFileSync(target, 'utf8'), '# mine\n', 'kept');
    panel.dispose();
  });

  it('follows a tune another process writes: new trials send their curves, its end the summary', async () => {
    const live = path.join(tempDir(), 'live');
    fs.cpSync(result.tune_dir, live, { recursive: true });
    const file = path.join(live, 'tune.jsonl');
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
    const cut = lines.findIndex((l) => l.includes('"type":"rung_result"')) + 1;
    fs.writeFileSync(file, `${lines.slice(0, cut).join('\n')}\n`);
    dashboards.open(live);
    const panel = stub.panels.at(-1)!;
    ready(panel);
    const [init] = panel.of('init') as Init[];
    assert.equal(init.summary.status, 'running', 'no tune_end, and just written');
    assert.equal(init.curves.length, 1, 'one trial has started');
    fs.appendFileSync(file, `${lines.slice(cut).join('\n')}\n`);
    const end = await until('the finished summary', () =>
      (panel.of('summary') as Extract<HostToTuneDashboard, { type: 'summary' }>[]).find(
        (m) => m.summary.status === 'finished',
      ),
    );
    assert.equal(end.summary.winner?.trial, result.trial);
    const more = (panel.of('curves') as Extract<HostToTuneDashboard, { type: 'curves' }>[]).flatMap((m) => m.curves);
    assert.equal(more.length, 5, 'the other trials, each whole');
    assert.ok(more.every((c) => c.reset));
    panel.dispose();
  });

  it('a reload restores the panel from its state; a deleted tune says so', async () => {
    const restored = new (stub.panels[0].constructor as new (v: string, t: string) => FakePanel)('loraplus.tune', '');
    await stub.serializers.get('loraplus.tune')!.deserializeWebviewPanel(restored, { tuneDir: result.tune_dir });
    ready(restored);
    assert.equal((restored.of('init') as Init[])[0].summary.winner?.trial, result.trial);
    restored.dispose();
    const junk = new (stub.panels[0].constructor as new (v: string, t: string) => FakePanel)('loraplus.tune', '');
    await stub.serializers.get('loraplus.tune')!.deserializeWebviewPanel(junk, { nope: 1 });
    assert.ok(junk.isDisposed);
    const gone = path.join(tempDir(), 'gone');
    fs.cpSync(result.tune_dir, gone, { recursive: true });
    dashboards.open(gone);
    const panel = stub.panels.at(-1)!;
    fs.rmSync(gone, { recursive: true });
    ready(panel);
    assert.match(String(panel.of('missing')[0]?.message), /no longer exists/);
    panel.dispose();
  });
});
