// "LoRA+: Export Run for a GPU Cluster…" (`loraplus export CONFIG --to accelerate` in an engine process): a job
// folder that trains the same run on PyTorch + PEFT + accelerate on a workstation or a cluster. The folder is asked
// for (new or empty, beside the config by default); the job writes its run folder under it, so once it ran (or was
// copied back) the run explorer, dashboard, compare and merge read it like any other run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { configStem } from '../engine/runs/names';
import { formatError } from '../protocol/errors';
import type { ExportSummary } from '../protocol/host';
import { checkedConfig, configFileOf } from './config-pick';
import { startEngine } from './engine-process';
import type { Studio } from './studio';
import { requireTrust } from './trust';

export async function exportJobCommand(s: Studio, arg: unknown): Promise<void> {
  if (!(await requireTrust('export', 'export a run'))) return;
  const configFile = await configFileOf(arg, 'LoRA+: Export which config for a GPU cluster?');
  const config = configFile && (await checkedConfig(configFile, 'export'));
  if (!configFile || !config) return;
  const out = await askFolder(configFile, config.model);
  if (!out) return;
  s.output.appendLine(`exporting ${configFile} to ${out}`);
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'LoRA+: exporting the job', cancellable: true },
    async (_progress, token) => {
      const call = startEngine(
        s.context.extensionPath,
        'export',
        { configFile, out },
        {
          cwd: path.dirname(configFile),
          onOutput: (line) => s.output.appendLine(line),
        },
      );
      const cancel = token.onCancellationRequested(() => call.cancel());
      const o = await call.outcome;
      cancel.dispose();
      return o;
    },
  );
  if (!outcome.ok) {
    if (!outcome.cancelled) void vscode.window.showErrorMessage(`LoRA+: ${formatError(outcome.error)}`);
    return;
  }
  await announce(s, outcome.result);
}

/** The job folder: typed (prefilled with jobs/<config's name> beside the config), new or empty. */
async function askFolder(configFile: string, model: string): Promise<string | undefined> {
  const base = path.dirname(configFile);
  const suggested = path.join('jobs', configStem(configFile, model));
  const answer = await vscode.window.showInputBox({
    title: 'LoRA+: Export the run for PyTorch + accelerate',
    prompt: `Job folder (new or empty), relative to ${vscode.workspace.asRelativePath(base)}`,
    value: suggested,
    validateInput: (v) => {
      if (!v.trim()) return 'Name a folder.';
      const dir = path.resolve(base, v.trim());
      return fs.existsSync(dir) && fs.readdirSync(dir).length ? `${dir} is not empty.` : null;
    },
  });
  return answer?.trim() ? path.resolve(base, answer.trim()) : undefined;
}

/** What was written, how to run it, and the way to its README. */
async function announce(s: Studio, r: ExportSummary): Promise<void> {
  const command = `bash launch.sh --config_file accelerate/single_gpu.yaml`;
  const runDir = path.isAbsolute(r.runDir) ? r.runDir : path.join(r.dir, r.runDir);
  s.output.appendLine(
    `exported ${r.steps} steps (${r.trainExamples} training, ${r.evalExamples} eval examples) to ${r.dir}\n` +
      `run it there: ${command}  (multi-GPU: accelerate/multi_gpu.yaml, FSDP: accelerate/fsdp.yaml, SLURM: ` +
      `sbatch job.sbatch); it writes the run to ${runDir}`,
  );
  const [readme, terminal, reveal] = ['Open README', 'Run in Terminal', 'Reveal'];
  const pick = await vscode.window.showInformationMessage(
    `LoRA+: exported ${r.steps} steps to ${vscode.workspace.asRelativePath(r.dir)}. Run it with: ${command}`,
    readme,
    terminal,
    reveal,
  );
  if (pick === readme)
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(r.dir, 'README.md')));
  if (pick === terminal) {
    const t = vscode.window.createTerminal({ name: 'LoRA+ job', cwd: r.dir });
    t.show();
    t.sendText(command, false); // typed, not run: the user picks the accelerate config and presses Enter
  }
  if (pick === reveal) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(r.dir));
}
