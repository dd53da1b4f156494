// The config editor in a real VS Code: a typo in a key shows up in the Problems panel with a "did you mean", and the
// quick fix (Ctrl+. on the problem) renames the key; the problem then goes away. Run by studio.e2e.test.ts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { e2eIt, until, type Shared } from './harness';

export const TYPO_CONFIG = 'typo.lora.yaml'; // tinyConfig with `loraplus_lr_raito: 16` under training

export function configEditorTests(shared: () => Shared): void {
  e2eIt(
    'shows the unknown key loraplus_lr_raito in Problems and renames it with the quick fix',
    shared,
    async ({ studio, workspace }) => {
      const { page } = studio;
      const file = path.join(workspace, TYPO_CONFIG);
      await studio.openFile(TYPO_CONFIG);
      await studio.runCommand('View: Focus Problems (Errors, Warnings, Infos)');
      const problems = page.locator('.markers-panel .monaco-list-row');
      const typo = problems.filter({ hasText: 'loraplus_lr_ratio' }).first();
      await typo.waitFor();
      const message = (await typo.textContent()) ?? '';
      assert.match(message, /loraplus_lr_raito/, 'the problem names the key as written');
      await studio.screenshot('config-problem');

      // Opening the problem puts the cursor on the key in the editor; Ctrl+. lists the quick fixes there.
      await typo.dblclick();
      await page.locator('.editor-instance .monaco-editor.focused').first().waitFor();
      await page.keyboard.press('Control+Period');
      const fix = page
        .locator('.action-widget .monaco-list-row.action', { hasText: 'Rename to loraplus_lr_ratio' })
        .first();
      await fix.waitFor();
      await studio.screenshot('config-quick-fix');
      // The menu takes the keyboard (a pointer block covers it against stray clicks): move to the fix, Enter.
      for (let i = 0; i < 10 && !(await fix.getAttribute('class'))?.split(' ').includes('focused'); i++)
        await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await fix.waitFor({ state: 'hidden' });
      await studio.runCommand('File: Save');

      const text = await until(
        'the fixed file on disk',
        async () => {
          const t = fs.readFileSync(file, 'utf8');
          return t.includes('loraplus_lr_ratio: 16') ? t : undefined;
        },
        15_000,
        () => fs.readFileSync(file, 'utf8'),
      );
      assert.ok(!text.includes('raito'), 'the typo is gone from the file');
      await until(
        'the problem to go away',
        async () => ((await problems.filter({ hasText: 'loraplus_lr_raito' }).count()) === 0 ? true : undefined),
        15_000,
      );
      await studio.screenshot('config-fixed');
    },
  );
}
