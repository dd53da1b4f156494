// The tuner in a real VS Code (code-server + headless Chromium, test/e2e/README.md): a tune made by the real CLI
// (`loraplus tune`, stories260k SST-2, 3 × 2 trials, 9 steps) before the window opens shows in the run explorer as
// one finished tune; clicking it opens its dashboard, whose lr_A × λ heatmap has a cell per trial with the figures,
// the diverged cells and the winner that tune.jsonl records, and whose winner line names the same trial.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe } from 'node:test';
import { readTuneEvents } from '../../src/engine/runs/tune-folder';
import type { RungResultEvent, TuneEndEvent } from '../../src/protocol/tune';
import { SST2, STORIES } from '../helpers/shared';
import { ARTIFACTS, e2eIt, startStudio, until, type Shared } from './harness';
import { makeWorkspace } from './workspace';

const ROOT = path.resolve(__dirname, '..', '..');
const TUNE = 'e2e-tune';
const CONFIG = `# LoRA+ Studio end-to-end test: a tune of learning_rate and λ
model: ${STORIES}
task: sequence-classification
device: wasm
run_name: ${TUNE}
data:
  train: ${path.join(SST2, 'dev.tsv')}
  eval_fraction: 0.25
  text_field: sentence
  label_field: label
  max_length: 32
  max_train_samples: 128
lora:
  r: 4
  lora_alpha: 8
  target_modules: [q_proj, v_proj]
training:
  learning_rate: auto
  loraplus_lr_ratio: auto
  batch_size: 8
  max_steps: 9
  seed: 5
`;

/** `loraplus tune` as a user would run it in a terminal (the built CLI); rejects with its output if it fails. */
async function tuneWithCli(configFile: string): Promise<void> {
  const env = { ...process.env, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' };
  const args = [path.join(ROOT, 'dist', 'cli.js'), 'tune', configFile, '--grid', 'lr=5e-4,2e-3,1', 'ratio=1,16'];
  try {
    await promisify(execFile)(process.execPath, [...args, '--eval-samples', '16'], { env, timeout: 240_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`loraplus tune ${configFile} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

describe('the tuner in code-server: a CLI tune in the explorer and its dashboard', () => {
  const workspace = makeWorkspace('tune', { 'tune.lora.yaml': CONFIG });
  const tuneDir = path.join(workspace, 'runs', TUNE);
  let shared: Shared | undefined;

  before(async () => {
    // The tune trains while code-server starts; the explorer finds it by its tune.jsonl either way.
    const [studio, tuned] = await Promise.allSettled([
      startStudio({ name: 'tune', workspace, trusted: true }),
      tuneWithCli(path.join(workspace, 'tune.lora.yaml')),
    ]);
    if (studio.status === 'fulfilled') shared = { studio: studio.value, workspace };
    if (studio.status === 'rejected') throw studio.reason;
    if (tuned.status === 'rejected') throw tuned.reason;
  });
  after(async () => {
    await shared?.studio.close();
    console.log(`e2e artifacts (screenshots, code-server logs): ${ARTIFACTS}`);
  });

  e2eIt(
    'shows the tune finished in the explorer; its dashboard has the heatmap cells and the winner of tune.jsonl',
    () => {
      if (!shared) throw new Error('code-server did not start (see the before hook)');
      return shared;
    },
    async ({ studio }) => {
      assert.ok(fs.existsSync(path.join(tuneDir, 'tune.jsonl')), 'the CLI wrote the tune');
      const events = readTuneEvents(tuneDir);
      const end = events.find((e): e is TuneEndEvent => e.type === 'tune_end');
      assert.ok(end?.winner, 'the tune finished with a winner');
      const results = events.filter((e): e is RungResultEvent => e.type === 'rung_result');
      const trials = [...new Set(results.map((r) => r.trial))];
      const diverged = [...new Set(results.filter((r) => r.diverged).map((r) => r.trial))];

      const description = await studio.waitForTreeItem(TUNE, 'finished', 120_000);
      assert.match(description, /^finished · winner lr_A /);
      await studio.screenshot('tree', studio.page.locator('[id="workbench.view.extension.loraplus"]'));
      await (await studio.treeItem(TUNE)).click(); // a tune item opens its dashboard

      const view = await studio.webview(`LoRA+ tune ${TUNE}`);
      const cells = view.locator('table.tune-heatmap td.cell');
      const count = await until('the heatmap cells', async () => ((await cells.count()) === 6 ? 6 : undefined));
      assert.equal(count, trials.length, 'one cell per trial of the 3 × 2 grid');
      const shown = await cells.evaluateAll((tds) =>
        tds.map((td) => [td.getAttribute('data-trial'), td.getAttribute('data-value'), td.className]),
      );
      assert.deepEqual(shown.map(([t]) => t).sort(), [...trials].sort());
      for (const [trial, value, cls] of shown) {
        const last = results.filter((r) => r.trial === trial).at(-1)!;
        if (last.diverged) assert.match(String(cls), /\bdiverged\b/, `${trial} is marked diverged`);
        else assert.equal(Number(value), last.metric, `${trial} shows its latest rung's figure`);
      }
      assert.equal(await view.locator('td.cell.diverged').count(), diverged.length);
      assert.equal(await view.locator('td.cell.winner').getAttribute('data-trial'), end.winner.trial);
      assert.equal(await view.locator('#tune-status').textContent(), 'finished');
      const winner = view.locator('#tune-winner');
      assert.equal(await winner.getAttribute('data-trial'), end.winner.trial);
      assert.ok(((await winner.textContent()) ?? '').startsWith(`${end.winner.trial}: lr_A `));
      assert.equal(await view.locator('#train-winner').isEnabled(), true);
      await studio.screenshot('dashboard');
    },
  );
});
