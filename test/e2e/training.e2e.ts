// Training from the palette in a real VS Code: Start Training on the open config → the dashboard opens → the run
// explorer shows the run finished → the dashboard's last loss equals the run's last step in metrics.jsonl, and its
// A/B heatmap has one row per LoRA module → after a browser reload the dashboard is restored with the same figure.
// Run by studio.e2e.test.ts.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FrameLocator } from 'playwright-core';
import { e2eIt, until, type Shared } from './harness';
import { readEvents, runStart, steps } from './workspace';

export const PALETTE_CONFIG = 'tiny.lora.yaml';
export const PALETTE_RUN = 'palette-run';

/** data-value of #last-loss once it is a number (the dashboard may still be catching up with the last step). */
async function lastLoss(dash: FrameLocator, want?: number): Promise<number> {
  let seen: string | null = null;
  return until(
    '#last-loss data-value',
    async () => {
      seen = await dash.locator('#last-loss').getAttribute('data-value', { timeout: 1_000 });
      const v = seen === null ? NaN : Number(JSON.parse(seen));
      return Number.isFinite(v) && (want === undefined || v === want) ? v : undefined;
    },
    30_000,
    () => seen,
  );
}

export function trainingTests(shared: () => Shared): void {
  e2eIt(
    'trains from the palette; the explorer shows it finished and the dashboard its last loss and A/B heatmap',
    shared,
    async ({ studio, workspace }) => {
      await studio.openFile(PALETTE_CONFIG);
      await studio.runCommand('LoRA+: Start Training');
      // openDashboardOnStart: the dashboard opens when the run starts.
      await studio.webview(`LoRA+ ${PALETTE_RUN}`);
      const description = await studio.waitForTreeItem(PALETTE_RUN, 'finished');
      await studio.screenshot('tree', studio.page.locator('[id="workbench.view.extension.loraplus"]'));

      const events = readEvents(path.join(workspace, 'runs', PALETTE_RUN));
      const last = steps(events).at(-1);
      assert.ok(last, `no step event in metrics.jsonl (explorer said: ${description})`);
      const modules = runStart(events).lora.target_modules.length;

      const dash = await studio.webview(`LoRA+ ${PALETTE_RUN}`);
      await until('#run-status = finished', async () =>
        (await dash.locator('#run-status').textContent({ timeout: 1_000 }))?.trim() === 'finished' ? true : undefined,
      );
      assert.equal(await lastLoss(dash, last.loss), last.loss);
      assert.equal((await dash.locator('#last-loss').textContent())?.trim(), last.loss.toFixed(4));
      assert.equal((await dash.locator('#last-step').textContent())?.trim(), String(last.step));
      const heatmap = dash.locator('#ab-heatmap');
      assert.equal(
        Number(await heatmap.getAttribute('data-modules')),
        modules,
        'one heatmap row per LoRA module of run_start',
      );
      const columns = Number(await heatmap.getAttribute('data-steps'));
      assert.ok(
        columns > 0 && columns <= steps(events).length,
        `data-steps ${columns} for ${steps(events).length} logged steps`,
      );
      await studio.screenshot('dashboard');
      // The elements alone (when they have a box), for a closer look.
      await studio.screenshot('dashboard-loss-chart', dash.locator('#chart-loss')).catch(() => undefined);
      await studio.screenshot('dashboard-heatmap', heatmap).catch(() => undefined);
    },
  );

  e2eIt(
    'restores the dashboard with the same last loss after the browser page reloads',
    shared,
    async ({ studio, workspace }) => {
      const last = steps(readEvents(path.join(workspace, 'runs', PALETTE_RUN))).at(-1);
      assert.ok(last, 'the training test produced a run');
      await studio.reload();
      const dash = await studio.webview(`LoRA+ ${PALETTE_RUN}`);
      assert.equal(await lastLoss(dash, last.loss), last.loss);
      assert.equal((await dash.locator('#last-loss').textContent())?.trim(), last.loss.toFixed(4));
      await studio.screenshot('dashboard-restored');
    },
  );
}
