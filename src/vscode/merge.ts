// "LoRA+: Merge Adapter into Model": picks an adapter (a run's final/ adapter or a checkpoint from the run explorer,
// or any PEFT adapter folder), asks where the merged model goes, and asks an engine process for the merge (the
// extension host never loads TensorFlow.js), its progress streamed to the output channel and a notification. The
// result says how far the merged model's logits are from base + adapter.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { defaultMergeOut, locateBase, resolveAdapterDir, runOf } from '../engine/runs/adapter-dirs';
import { formatError } from '../protocol/errors';
import type { MergeRequest } from '../protocol/merge';
import { startEngine } from './engine-process';
import type { Studio } from './studio';
import { requireTrust } from './trust';

export async function mergeAdapter(s: Studio, target?: string): Promise<void> {
  if (!(await requireTrust('merging', 'merge adapters'))) return;
  const source = target ?? (await pickAdapter(s));
  if (!source) return;
  const adapterDir = resolveAdapterDir(source);
  if (!fs.existsSync(path.join(adapterDir, 'adapter_config.json'))) {
    void vscode.window.showErrorMessage(
      `LoRA+: ${source} holds no adapter (adapter_config.json), neither in final/ nor in a checkpoint.`,
    );
    return;
  }
  // The base model: the one the adapter names, else the user says where it is (Python adapters name Hub ids).
  const request: MergeRequest = { adapters: [adapterDir], out: '' };
  const base = locateBase(adapterDir);
  if (!base.dir) {
    const picked = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: false,
      openLabel: 'Use as Base Model',
      title: base.named
        ? `LoRA+: '${base.named}' is not a folder here. Where is this base model?`
        : 'LoRA+: the adapter does not name its base model. Which model folder?',
    });
    if (!picked?.length) return;
    request.base = picked[0].fsPath;
  }
  const out = await vscode.window.showInputBox({
    title: 'LoRA+: Merge Adapter into Model',
    prompt: 'Folder for the merged model (a complete Hugging Face model folder)',
    value: defaultMergeOut(adapterDir),
    ignoreFocusOut: true,
    validateInput: validateOut,
  });
  if (!out) return;
  request.out = path.resolve(out);
  const run = runOf(adapterDir);
  const name = run
    ? `${path.basename(run.dir)}${path.basename(adapterDir) === 'final' ? '' : ` (${path.basename(adapterDir)})`}`
    : path.basename(adapterDir);
  await runMerge(s, request, name);
}

function validateOut(value: string): string | undefined {
  if (!value.trim()) return 'Give a folder.';
  const dir = path.resolve(value);
  if (
    fs.existsSync(dir) &&
    (!fs.statSync(dir).isDirectory() ||
      (fs.readdirSync(dir).length && !fs.existsSync(path.join(dir, 'merge_info.json'))))
  ) {
    return 'This folder exists and is not an earlier merge: choose a new one.';
  }
  return undefined;
}

interface Pick extends vscode.QuickPickItem {
  dir?: string;
  browse?: boolean;
}

// The runs' adapters (final, then checkpoints newest first), and "Browse…" for any PEFT adapter folder.
async function pickAdapter(s: Studio): Promise<string | undefined> {
  const items: Pick[] = [];
  for (const run of s.tree.allRuns()) {
    if (run.finalAdapter)
      items.push({ label: run.name, description: 'final adapter', detail: run.finalAdapter, dir: run.finalAdapter });
    for (const c of [...run.checkpoints].reverse()) {
      items.push({
        label: `${run.name} · step ${c.step}`,
        description: c.eval ? `eval loss ${c.eval.loss.toFixed(4)}` : 'checkpoint',
        detail: c.dir,
        dir: c.dir,
      });
    }
  }
  items.push({
    label: '$(folder-opened) Browse…',
    description: 'any PEFT adapter folder (adapter_config.json + adapter_model.safetensors)',
    browse: true,
  });
  const pick = await vscode.window.showQuickPick(items, {
    title: 'LoRA+: Merge which adapter into its base model?',
    matchOnDetail: true,
  });
  if (!pick?.browse) return pick?.dir;
  const folder = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Merge This Adapter',
  });
  return folder?.[0]?.fsPath;
}

// ---- the engine process --------------------------------------------------------------------------------------------

async function runMerge(s: Studio, request: MergeRequest, name: string): Promise<void> {
  s.output.appendLine(`merging ${request.adapters.join(', ')} into ${request.out}${request.force ? ' (--force)' : ''}`);
  const outcome = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `LoRA+: merging ${name}`, cancellable: true },
    async (progress, token) => {
      const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(request.out);
      const call = startEngine(s.context.extensionPath, 'merge', request, {
        cwd,
        onLog: (line) => {
          s.output.appendLine(line);
          progress.report({ message: line });
        },
        onOutput: (line) => s.output.appendLine(line),
      });
      const cancel = token.onCancellationRequested(() => call.cancel());
      const o = await call.outcome;
      cancel.dispose();
      // The engine writes into <out>.tmp-<pid> and renames at the end: a cancelled merge leaves only that.
      if (!o.ok && o.cancelled) fs.rmSync(`${request.out}.tmp-${call.child.pid}`, { recursive: true, force: true });
      return o;
    },
  );
  if (!outcome.ok && outcome.cancelled) return void s.output.appendLine('merge cancelled');
  const log = 'Open Log';
  if (!outcome.ok) {
    const retry = outcome.error.code === 'merge/check-failed' ? 'Write Anyway' : undefined;
    const pick = await vscode.window.showErrorMessage(
      `LoRA+: ${formatError(outcome.error)}`,
      ...(retry ? [retry] : []),
      log,
    );
    if (pick === log) s.output.show(true);
    if (retry && pick === retry) await runMerge(s, { ...request, force: true }, name);
    return;
  }
  const summary = outcome.result;
  const c = summary.merge_check;
  const diff =
    c.max_abs_diff !== null ? `max |Δlogits| ${c.max_abs_diff.toExponential(2)} vs base + adapter` : 'adapter written';
  s.tree.refresh(); // the merged model shows under its run
  const [reveal, readme] = ['Reveal', 'Open README'];
  const where = vscode.workspace.asRelativePath(summary.out); // the folder's path: its name alone is often "merged"
  const text = summary.ok
    ? `LoRA+: merged ${name} into ${where} · ${diff} (check passed).`
    : `LoRA+: merged ${name} into ${where} with MERGE_CHECK_FAILED · ${c.failures.join('; ')}`;
  const pick = await (summary.ok
    ? vscode.window.showInformationMessage(text, reveal, readme)
    : vscode.window.showWarningMessage(text, reveal, readme));
  if (pick === reveal) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(summary.out));
  if (pick === readme)
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(summary.out, 'README.md')));
}
