// "Train with these settings" from a tune's dashboard or its end notification: writes the tuned config next to the
// tune's own (tune-config.ts), asking before it overwrites one, opens it, and offers to start training it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TuneSummary } from '../protocol/tune';
import { tunedConfigPath, tunedConfigText } from './tune-config';

export async function trainWithWinner(s: TuneSummary): Promise<void> {
  const w = s.winner;
  const original = s.start?.config_file;
  if (!w || !s.start) {
    void vscode.window.showInformationMessage('LoRA+: this tune has no winner yet.');
    return;
  }
  if (!original || !fs.existsSync(original)) {
    void vscode.window.showErrorMessage(
      `LoRA+: the tune's config ${original ?? '(none recorded)'} is not there any more, so there is nothing to ` +
        `write the settings into. Set training.learning_rate: ${w.settings.learning_rate} and ` +
        `training.loraplus_lr_ratio: ${w.settings.loraplus_lr_ratio} in your config by hand.`,
    );
    return;
  }
  const target = tunedConfigPath(original);
  if (fs.existsSync(target)) {
    const overwrite = 'Overwrite';
    const pick = await vscode.window.showWarningMessage(
      `${path.basename(target)} already exists. Overwrite it with the winner's settings?`,
      { modal: true },
      overwrite,
    );
    if (pick !== overwrite) return;
  }
  await fs.promises.writeFile(target, tunedConfigText(fs.readFileSync(original, 'utf8'), s.start.tune_name, w));
  const uri = vscode.Uri.file(target);
  await vscode.window.showTextDocument(uri);
  const start = 'Start Training';
  const pick = await vscode.window.showInformationMessage(
    `LoRA+: wrote ${path.basename(target)} with the winner's settings.`,
    start,
  );
  if (pick === start) await vscode.commands.executeCommand('loraplus.startTraining', uri);
}
