// LoRA+ Studio in a real VS Code (code-server + headless Chromium, test/e2e/README.md), trusted workspace: one
// code-server and one browser page for the training, config-editor, compare and appearance scenarios, in that order,
// on one
// workspace holding their configs and two runs trained with the CLI beforehand. A failing scenario's error carries
// a screenshot path, code-server's log tail and the LoRA+ output channel.
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { appearanceTests } from './appearance.e2e';
import { compareTests, COMPARE_RUNS } from './compare.e2e';
import { configEditorTests, TYPO_CONFIG } from './config-editor.e2e';
import { ARTIFACTS, startStudio, type Shared } from './harness';
import { PALETTE_CONFIG, PALETTE_RUN, trainingTests } from './training.e2e';
import { makeWorkspace, tinyConfig, trainWithCli } from './workspace';

describe('LoRA+ Studio in code-server (trusted workspace)', () => {
  const workspace = makeWorkspace('studio', {
    [PALETTE_CONFIG]: tinyConfig({ runName: PALETTE_RUN }),
    [TYPO_CONFIG]: tinyConfig({ runName: 'typo-run', loraplusKey: 'loraplus_lr_raito' }),
    ...Object.fromEntries(COMPARE_RUNS.map((r) => [r.config, tinyConfig({ runName: r.runName, ratio: r.ratio })])),
  });
  let shared: Shared | undefined;
  const get = (): Shared => {
    if (!shared) throw new Error('code-server did not start (see the before hook)');
    return shared;
  };

  before(async () => {
    // The CLI runs train (one after the other: 2 cores) while code-server starts.
    const cliRuns = (async () => {
      for (const r of COMPARE_RUNS) await trainWithCli(path.join(workspace, r.config));
    })();
    const [studio, trained] = await Promise.allSettled([
      startStudio({ name: 'studio', workspace, trusted: true }),
      cliRuns,
    ]);
    if (studio.status === 'fulfilled') shared = { studio: studio.value, workspace };
    if (studio.status === 'rejected') throw studio.reason;
    if (trained.status === 'rejected') throw trained.reason;
  });
  after(async () => {
    await shared?.studio.close();
    console.log(`e2e artifacts (screenshots, code-server logs): ${ARTIFACTS}`);
  });

  describe('training from the palette', () => trainingTests(get));
  describe('config editor', () => configEditorTests(get));
  describe('compare', () => compareTests(get));
  describe('appearance: layout, themes, charts', () => appearanceTests(get));
});
