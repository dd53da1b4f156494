// "LoRA+: Rename Run…": renames a run folder that no process is writing (src/engine/runs/rename.ts takes the run's
// lock, so a run training in a terminal or another window is refused too); an open dashboard follows the run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { badRunName } from '../engine/runs/names';
import { renameRun } from '../engine/runs/rename';
import { formatError, LoraPlusError } from '../protocol/errors';
import type { Studio } from './studio';

export async function renameRunFolder(s: Studio, dir: string | undefined): Promise<void> {
  if (!dir) return;
  if (s.runs.find(dir)) {
    void vscode.window.showWarningMessage('LoRA+: stop the run before renaming it (Stop saves a checkpoint).');
    return;
  }
  const name = await vscode.window.showInputBox({
    title: `LoRA+: Rename ${path.basename(dir)}`,
    prompt: 'New name of the run (its folder beside the others); checkpoints stay resumable',
    value: path.basename(dir),
    ignoreFocusOut: true,
    validateInput: (v) =>
      badRunName(v.trim()) ??
      (v.trim() !== path.basename(dir) && fs.existsSync(path.join(path.dirname(dir), v.trim()))
        ? 'A folder of that name exists beside it.'
        : undefined),
  });
  if (!name || name.trim() === path.basename(dir)) return;
  let to: string;
  try {
    to = renameRun(dir, name.trim());
  } catch (err) {
    if (!(err instanceof LoraPlusError)) throw err;
    void vscode.window.showErrorMessage(`LoRA+: cannot rename: ${formatError(err.info)}`);
    return;
  }
  s.output.appendLine(`renamed ${dir} → ${to}`);
  s.dashboards.moved(dir, to);
  s.tree.refresh();
}
