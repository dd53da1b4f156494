// "LoRA+: Rename Run…" under the scripted `vscode` stub, on a real run folder: the input box proposes the current
// name and checks the new one as typed, the folder moves and an open dashboard follows it, and a run that a
// process is writing (this window's, or one holding the lock from a terminal) is refused with the reason.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load';
import { lockRun } from '../../src/engine/runs/lock';
import { train } from '../../src/engine/train/train';
import { SST2, STORIES, tempDir, useBackend } from '../helpers/shared';
import { installMergeStub, script } from './merge-stub';

installMergeStub();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { renameRunFolder } = require('../../src/vscode/rename-run') as typeof import('../../src/vscode/rename-run');

function studio(live: string[] = []) {
  const moved: [string, string][] = [];
  const s = {
    runs: { find: (d: string) => (live.includes(d) ? {} : undefined) },
    output: { appendLine() {} },
    dashboards: { moved: (from: string, to: string) => void moved.push([from, to]) },
    tree: { refresh() {} },
  };
  return { s: s as unknown as Parameters<typeof renameRunFolder>[0], moved };
}

describe('Rename Run (VS Code)', () => {
  let runDir = '';
  before(async () => {
    await useBackend();
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: 'runs',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 8 },
        lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj'] },
        training: { learning_rate: 1e-3, batch_size: 4, max_steps: 1 },
      },
      dir,
    );
    runDir = (await train(config, () => {}, undefined, { configFile: path.join(dir, 'sst2.lora.yaml') })).runDir;
    fs.mkdirSync(path.join(dir, 'runs', 'taken'));
  });

  it('asks for the name (checked as typed), renames the folder and moves its dashboard', async () => {
    Object.assign(script, { inputBox: [], shown: [] });
    assert.equal(path.basename(runDir), 'sst2-lr1e-3-ratio16-r2', 'the default name: config file and settings');
    const { s, moved } = studio();
    script.inputBox.push((value, validate) => {
      assert.equal(value, 'sst2-lr1e-3-ratio16-r2');
      assert.match(validate('taken') ?? '', /exists/);
      assert.match(validate('no/slash') ?? '', /Letters, digits/);
      assert.equal(validate('sst2-plain'), undefined);
      return 'sst2-plain';
    });
    await renameRunFolder(s, runDir);
    const to = path.join(path.dirname(runDir), 'sst2-plain');
    assert.ok(fs.existsSync(path.join(to, 'metrics.jsonl')) && !fs.existsSync(runDir));
    assert.deepEqual(moved, [[runDir, to]]);
    assert.deepEqual(script.shown, []);
    runDir = to;
  });

  it("refuses a run this window trains, and one a terminal's process holds the lock of", async () => {
    Object.assign(script, { inputBox: [], shown: [] });
    await renameRunFolder(studio([runDir]).s, runDir);
    assert.match(script.shown.at(-1)!.text, /stop the run before renaming it/);
    const held = lockRun(runDir);
    script.inputBox.push(() => 'while-locked');
    await renameRunFolder(studio().s, runDir);
    held.release();
    assert.equal(script.shown.at(-1)!.kind, 'error');
    assert.match(script.shown.at(-1)!.text, /cannot rename: .*another run is writing this folder/);
    assert.ok(fs.existsSync(runDir));
  });
});
