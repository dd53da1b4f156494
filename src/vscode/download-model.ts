// "LoRA+: Download Model…": asks for a Hub id, fetches the model into the Hugging Face cache in an engine process
// (`download`, src/engine/hub/download.ts; the extension host does no transfer itself), with its progress in a
// cancellable notification and the output channel. A cancelled download keeps what arrived: the next one continues
// there. When done, it offers a new training config, where `model: ORG/NAME` names the cached model.
import * as os from 'node:os';
import * as vscode from 'vscode';
import { parseHubId } from '../engine/hub/cache';
import { hubCacheDir } from '../engine/hub/env';
import { formatError } from '../protocol/errors';
import { startEngine } from './engine-process';
import type { Studio } from './studio';

export async function downloadModel(s: Studio): Promise<void> {
  const spec = (
    await vscode.window.showInputBox({
      title: 'LoRA+: Download Model',
      prompt: 'A Hugging Face Hub model id: org/name, with @revision for a branch, tag or commit',
      placeHolder: 'Qwen/Qwen3-0.6B',
      ignoreFocusOut: true,
      validateInput: (v) =>
        parseHubId(v.trim()) ? undefined : 'Give a Hub id as org/name (or org/name@revision), e.g. Qwen/Qwen3-0.6B.',
    })
  )?.trim();
  const id = spec ? parseHubId(spec) : undefined;
  if (!spec || !id) return;
  s.output.appendLine(`downloading ${spec} into ${hubCacheDir()}`);
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `LoRA+: downloading ${spec}`, cancellable: true },
    async (progress, token) => {
      let shown = 0; // the percentage the notification's bar shows so far
      const call = startEngine(s.context.extensionPath, 'download', id, {
        cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir(),
        onLog: (line) => {
          s.output.appendLine(line);
          const pct = Number(/^downloading (\d+)% · /.exec(line)?.[1] ?? NaN);
          if (Number.isNaN(pct)) return progress.report({ message: line });
          progress.report({ message: line.replace(/^downloading \d+% · /, ''), increment: Math.max(0, pct - shown) });
          shown = Math.max(shown, pct);
        },
        onOutput: (line) => s.output.appendLine(line),
      });
      const cancel = token.onCancellationRequested(() => call.cancel());
      const o = await call.outcome;
      cancel.dispose();
      return o;
    },
  );
  if (!outcome.ok && (outcome.cancelled || outcome.error.code === 'hub/cancelled')) {
    s.output.appendLine(`download of ${spec} stopped`);
    void vscode.window.showInformationMessage(
      `LoRA+: the download of ${spec} stopped. Run Download Model again to continue where it stopped.`,
    );
    return;
  }
  if (!outcome.ok) {
    const log = 'Open Log';
    const pick = await vscode.window.showErrorMessage(`LoRA+: ${formatError(outcome.error)}`, log);
    if (pick === log) s.output.show(true);
    return;
  }
  const r = outcome.result;
  const model = r.revision === 'main' ? r.repoId : `${r.repoId}@${r.revision}`;
  s.output.appendLine(`${model}: ${r.snapshot}`);
  const [create, copy] = ['New Training Config', 'Copy Model Id'];
  const pick = await vscode.window.showInformationMessage(
    `LoRA+: ${model} is downloaded (${r.modelType}, ${(r.bytes / 1e6).toFixed(1)} MB). ` +
      `A config names it as  model: ${model}`,
    create,
    copy,
  );
  if (pick === create) await vscode.commands.executeCommand('loraplus.newConfig');
  if (pick === copy) await vscode.env.clipboard.writeText(model);
}
