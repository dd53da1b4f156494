// "LoRA+: Merge Adapter into Model": picks an adapter (a run's final/ adapter or a checkpoint from the run explorer,
// or any PEFT adapter folder), asks where the merged model goes, and runs `dist/cli.js merge … --json` in a child
// process (the extension host never loads TensorFlow.js), its progress streamed to the output channel and a
// notification. The result says how far the merged model's logits are from base + adapter.
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { MergeSummary } from '../engine/merge/merge';
import { defaultMergeOut, locateBase, resolveAdapterDir, runOf } from '../engine/runs/adapter-dirs';
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
  const args = ['merge', '--adapter', adapterDir];
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
    args.push('--base', picked[0].fsPath);
  }
  const out = await vscode.window.showInputBox({
    title: 'LoRA+: Merge Adapter into Model',
    prompt: 'Folder for the merged model (a complete Hugging Face model folder)',
    value: defaultMergeOut(adapterDir),
    ignoreFocusOut: true,
    validateInput: validateOut,
  });
  if (!out) return;
  args.push('--out', path.resolve(out), '--json');
  const run = runOf(adapterDir);
  const name = run
    ? `${path.basename(run.dir)}${path.basename(adapterDir) === 'final' ? '' : ` (${path.basename(adapterDir)})`}`
    : path.basename(adapterDir);
  await runMerge(s, args, path.resolve(out), name);
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

// ---- the child process ----------------------------------------------------------------------------------------------

interface CliResult {
  code: number | null;
  stdout: string;
  error: string | null; // the CLI's `error: …` line
}

async function runMerge(s: Studio, args: string[], out: string, name: string): Promise<void> {
  s.output.appendLine(`merging: loraplus ${args.join(' ')}`);
  const result = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `LoRA+: merging ${name}`, cancellable: true },
    (progress, token) => runCli(s, args, out, (line) => progress.report({ message: line }), token),
  );
  s.tree.refresh();
  if (result === null) return; // cancelled
  const log = 'Open Log';
  if (result.code !== 0 && result.code !== 3) {
    const message = result.error ?? `the merge exited with code ${result.code}`;
    const retry = /merge check failed/.test(message) ? 'Write Anyway' : undefined;
    const pick = await vscode.window.showErrorMessage(`LoRA+: ${message}`, ...(retry ? [retry] : []), log);
    if (pick === log) s.output.show(true);
    if (retry && pick === retry) await runMerge(s, [...args, '--force'], out, name);
    return;
  }
  let summary: MergeSummary;
  try {
    summary = JSON.parse(result.stdout.trim().split('\n').at(-1) ?? '') as MergeSummary;
  } catch {
    void vscode.window.showErrorMessage(
      'LoRA+: the merge finished but its summary could not be read; see the log.',
      log,
    );
    return;
  }
  const c = summary.merge_check;
  const diff =
    c.max_abs_diff !== null ? `max |Δlogits| ${c.max_abs_diff.toExponential(2)} vs base + adapter` : 'adapter written';
  const [reveal, readme] = ['Reveal', 'Open README'];
  const text = summary.ok
    ? `LoRA+: merged into ${path.basename(summary.out)} · ${diff} (check passed).`
    : `LoRA+: written with MERGE_CHECK_FAILED into ${path.basename(summary.out)} · ${c.failures.join('; ')}`;
  const pick = await (summary.ok
    ? vscode.window.showInformationMessage(text, reveal, readme)
    : vscode.window.showWarningMessage(text, reveal, readme));
  if (pick === reveal) await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(summary.out));
  if (pick === readme)
    await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(summary.out, 'README.md')));
}

/** Runs dist/cli.js; stderr lines go to the output channel and `onLine`. Resolves null when cancelled. */
function runCli(
  s: Studio,
  args: string[],
  out: string,
  onLine: (line: string) => void,
  token: vscode.CancellationToken,
): Promise<CliResult | null> {
  const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(out);
  return new Promise((resolve) => {
    const child = fork(path.join(s.context.extensionPath, 'dist', 'cli.js'), args, {
      cwd,
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    const stdout: Buffer[] = [];
    let error: string | null = null;
    let partial = '';
    child.stdout!.on('data', (b: Buffer) => stdout.push(b));
    child.stderr!.on('data', (b: Buffer) => {
      const lines = (partial + b.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        s.output.appendLine(line);
        if (line.startsWith('error: ')) error = line.slice('error: '.length);
        else onLine(line);
      }
    });
    const cancel = token.onCancellationRequested(() => child.kill());
    child.on('error', (err) => {
      cancel.dispose();
      resolve({ code: 1, stdout: '', error: `could not start the merge: ${err.message}` });
    });
    child.on('exit', (code, signal) => {
      cancel.dispose();
      if (partial) s.output.appendLine(partial);
      if (signal || token.isCancellationRequested) {
        // The CLI writes into <out>.tmp-<pid> and renames at the end: a cancelled merge leaves only that.
        fs.rmSync(`${out}.tmp-${child.pid}`, { recursive: true, force: true });
        s.output.appendLine('merge cancelled');
        resolve(null);
        return;
      }
      resolve({ code, stdout: Buffer.concat(stdout).toString('utf8'), error });
    });
  });
}
