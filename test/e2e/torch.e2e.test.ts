// Handing a run to PyTorch from a real VS Code (code-server + headless Chromium, test/e2e/README.md):
// "LoRA+: Export Run for a GPU Cluster…" on the open config writes the job folder it proposes (train.py, launch.sh,
// the data, the start adapter our engine draws); and Start Training on a `device: torch` config trains with the
// Python of VS Code's `python.defaultInterpreterPath` setting (no Python extension here), its events streaming into
// the dashboard and the run explorer like our own engine's. The training part needs a Python with torch,
// transformers, peft and accelerate (CI installs them) and skips with one line without it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { EXPORT_MODULES } from '../helpers/export-job';
import { noPython, pythonWith } from '../helpers/python';
import { ARTIFACTS, e2eIt, startStudio, until, type Shared } from './harness';
import { makeWorkspace, readEvents, runStart, steps, tinyConfig } from './workspace';

const CONFIG = 'torch.lora.yaml';
const RUN = 'torch-run';
const python = pythonWith(EXPORT_MODULES);

describe('PyTorch from code-server: export a job, and train a device: torch config', () => {
  const text = tinyConfig({ runName: RUN, maxSteps: 6 }).replace('device: wasm', 'device: torch');
  const workspace = makeWorkspace('torch', { [CONFIG]: text });
  let shared: Shared | undefined;
  const get = (): Shared => {
    if (!shared) throw new Error('code-server did not start (see the before hook)');
    return shared;
  };

  before(async () => {
    const settings = python ? { 'python.defaultInterpreterPath': python } : {};
    shared = { studio: await startStudio({ name: 'torch', workspace, trusted: true, settings }), workspace };
  });
  after(async () => {
    await shared?.studio.close();
    console.log(`e2e artifacts (screenshots, code-server logs): ${ARTIFACTS}`);
  });

  e2eIt('exports the open config into the job folder it proposes, with the start adapter', get, async ({ studio }) => {
    await studio.openFile(CONFIG);
    await studio.runCommand('LoRA+: Export Run for a GPU Cluster…');
    const input = await studio.quickInput();
    const proposed = path.join('jobs', 'torch');
    await until('the job folder box', async () => ((await input.inputValue()) === proposed ? true : undefined));
    await input.press('Enter');
    const job = path.join(workspace, 'jobs', 'torch');
    const note = studio.page.locator('.notifications-toasts .notification-toast', { hasText: 'LoRA+: exported' });
    await note.first().waitFor({ timeout: 120_000 });
    for (const f of ['train.py', 'launch.sh', 'job.json', 'data/train.jsonl', 'init_adapter/adapter_model.safetensors'])
      assert.ok(fs.existsSync(path.join(job, f)), `${f} in the job folder`);
    const settings = JSON.parse(fs.readFileSync(path.join(job, 'job.json'), 'utf8'));
    assert.equal(settings.training.total_steps, 6);
    assert.match((await note.first().textContent()) ?? '', /exported 6 steps to jobs\/torch/);
    await studio.screenshot('exported');
    await studio.dismiss();
  });

  e2eIt(
    'trains device: torch with the configured Python; the dashboard and explorer follow it',
    get,
    async ({ studio }) => {
      await studio.openFile(CONFIG);
      await studio.runCommand('LoRA+: Start Training');
      const dash = await studio.webview(`LoRA+ ${RUN}`);
      await studio.waitForTreeItem(RUN, 'finished', 300_000);
      const events = readEvents(path.join(workspace, 'runs', RUN));
      assert.equal(runStart(events).backend, 'torch');
      const last = steps(events).at(-1)!;
      assert.equal(last.step, 6);
      const shown = await until('#last-loss', async () => {
        const v = await dash.locator('#last-loss').getAttribute('data-value', { timeout: 1_000 });
        return v !== null && Number(v) === last.loss ? Number(v) : undefined;
      });
      assert.equal(shown, last.loss);
      assert.match(
        await studio.outputChannel(),
        new RegExp(`device: torch with ${python!.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
      );
      await studio.screenshot('torch-dashboard');
    },
    python ? false : noPython(EXPORT_MODULES),
  );
});
