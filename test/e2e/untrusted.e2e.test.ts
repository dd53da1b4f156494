// Workspace trust in a real VS Code: in a folder the user has not trusted (Restricted Mode), LoRA+: Start Training
// must refuse with an error that says why, and start nothing. Needs code-server (test/e2e/README.md).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe } from 'node:test';
import { ARTIFACTS, e2eIt, startStudio, type Studio } from './harness';
import { makeWorkspace, tinyConfig } from './workspace';

describe('untrusted workspace (code-server with workspace trust on)', () => {
  const workspace = makeWorkspace('untrusted', { 'tiny.lora.yaml': tinyConfig({ runName: 'must-not-run' }) });
  let studio: Studio;

  before(async () => {
    studio = await startStudio({ name: 'untrusted', workspace, trusted: false });
  });
  after(async () => {
    await studio?.close();
    console.log(`e2e artifacts (screenshots, code-server logs): ${ARTIFACTS}`);
  });

  e2eIt(
    'LoRA+: Start Training shows an "untrusted workspace" error and creates no run folder',
    () => ({ studio, workspace }),
    async () => {
      const { page } = studio;
      // If VS Code asks whether to trust the folder (it should not: startupPrompt is 'never'), say no.
      const dialog = page.locator('.monaco-dialog-box');
      if (await dialog.isVisible())
        await dialog
          .getByRole('button', { name: /No|Don't Trust/i })
          .first()
          .click();
      // Without this the test would prove nothing: the window really is in Restricted Mode.
      await page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).first().waitFor();

      await studio.openFile('tiny.lora.yaml');
      await studio.runCommand('LoRA+: Start Training');
      const toast = studio.notification(/untrusted workspace/);
      await toast.waitFor();
      const message = await toast.locator('.notification-list-item-message').textContent();
      assert.match(message ?? '', /untrusted workspace/);
      assert.ok(await toast.locator('.codicon-error').count(), 'the notification is an error');
      await studio.screenshot('refused');

      // Nothing started: give a wrongly started child time to create its run folder, then look.
      await page.waitForTimeout(3_000);
      assert.ok(!fs.existsSync(path.join(workspace, 'runs')), 'no run folder may be created in an untrusted workspace');
    },
  );
});
