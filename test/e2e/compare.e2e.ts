// Compare in a real VS Code: LoRA+: Compare Checkpoints from the palette (no selection) asks for the runs in a
// multi-select quick pick; with two CLI-trained runs picked, the "LoRA+ Compare" webview shows both side by side,
// named by their λ, with the cosine and both sides of the similarity, and why the input side is ≈ 1 for one seed.
// Run by studio.e2e.test.ts.
import assert from 'node:assert/strict';
import { e2eIt, until, type Shared } from './harness';

/** Two runs trained with the CLI before the window opens: LoRA+ (λ = 16) and plain LoRA (λ = 1). */
export const COMPARE_RUNS = [
  { config: 'compare-a.lora.yaml', runName: 'cli-loraplus', ratio: 16 },
  { config: 'compare-b.lora.yaml', runName: 'cli-plain', ratio: 1 },
];

export function compareTests(shared: () => Shared): void {
  e2eIt(
    'compares two runs picked in the quick pick: title, config table and similarity heatmap',
    shared,
    async ({ studio }) => {
      const { page } = studio;
      await studio.runCommand('LoRA+: Compare Checkpoints');
      const rows = page.locator('.quick-input-list .monaco-list-row');
      await rows.first().waitFor();
      for (const { runName } of COMPARE_RUNS) {
        // The run's own item (labelled with its name; its checkpoints are <name>@step-N).
        const row = studio.quickPickRow(runName);
        await row.waitFor();
        const box = row.locator('.quick-input-list-checkbox, input[type="checkbox"], [role="checkbox"]').first();
        await ((await box.count()) ? box : row).click();
      }
      await studio.screenshot('compare-pick');
      await page.locator('.quick-input-widget input[type="text"]').press('Enter');

      const view = await studio.webview('LoRA+ Compare');
      await view.locator('#compare-title').waitFor({ timeout: 60_000 });
      assert.ok(
        ((await view.locator('#compare-title').textContent()) ?? '').trim().length > 0,
        '#compare-title has a heading',
      );
      const table = view.locator('#config-table');
      await table.waitFor();
      const text = (await table.textContent()) ?? '';
      for (const { runName } of COMPARE_RUNS)
        assert.ok(text.includes(runName), `#config-table has a column for ${runName}: ${text.slice(0, 300)}`);
      const layers = await until('#similarity-heatmap data-layers', async () => {
        const v = Number(await view.locator('#similarity-heatmap').getAttribute('data-layers', { timeout: 1_000 }));
        return v > 0 ? v : undefined;
      });
      assert.ok(layers > 0);
      // Series are named by what differs (λ), and the view says why the input side is ≈ 1 for one seed.
      const metrics = (await view.locator('#metrics-table thead').textContent()) ?? '';
      assert.ok(metrics.includes('λ 16') && metrics.includes('λ 1'), `metric columns named by λ: ${metrics}`);
      const summary = (await view.locator('#similarity-summary').textContent()) ?? '';
      assert.match(summary, /cosine [0-9.]+ · output side φ [0-9.]+ · input side φ [0-9.]+/);
      assert.match(summary, /same lora_A \(seed /);
      assert.equal(await view.locator('#similarity-basis').inputValue(), 'out', 'the output side first');
      await studio.screenshot('compare');
    },
  );
}
