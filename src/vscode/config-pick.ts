// Which training config a command is about (the explorer's or the editor's file, else a quick pick of the workspace's
// configs) and whether it may start: saved first, and refused with its first error while it has errors. Start
// Training and Find λ and Learning Rate share these.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { checkConfigFile } from '../engine/checks/config';
import type { TunableConfig } from '../config/schema';
import { newConfig } from './editor/new-config';

const CONFIG_GLOB = '**/{*.lora.yaml,*.loraplus.yaml,loraplus.yaml}';

/** The config a start is about: the Uri given, the active editor's YAML, else a quick pick of the workspace's. */
export async function configFileOf(arg: unknown, title: string): Promise<string | undefined> {
  if (arg instanceof vscode.Uri) return arg.fsPath;
  const doc = vscode.window.activeTextEditor?.document;
  if (doc && doc.uri.scheme === 'file' && /\.ya?ml$/.test(doc.fileName)) return doc.fileName;
  const files = await vscode.workspace.findFiles(CONFIG_GLOB, '**/node_modules/**', 200);
  if (!files.length) {
    const create = 'New Training Config';
    const pick = await vscode.window.showInformationMessage(
      'LoRA+: no training config (*.lora.yaml) in this workspace.',
      create,
    );
    if (pick === create) await newConfig();
    return undefined;
  }
  const items = files.map((f) => ({
    label: path.basename(f.fsPath),
    description: vscode.workspace.asRelativePath(f),
    file: f.fsPath,
  }));
  return items.length === 1 ? items[0].file : (await vscode.window.showQuickPick(items, { title }))?.file;
}

/**
 * Saves the config if it is open with changes, then checks it: its config (`auto` values kept) when it has no
 * errors, else null after telling the user (with a way to the Problems panel). `what`: "run", "tune".
 */
export async function checkedConfig(configFile: string, what: string): Promise<TunableConfig | null> {
  await vscode.workspace.textDocuments.find((d) => d.uri.fsPath === configFile && d.isDirty)?.save();
  const checked = checkConfigFile(configFile);
  const errors = checked.problems.filter((p) => p.severity === 'error');
  if (!errors.length && checked.config) return checked.config;
  const show = 'Show Problems';
  const first = errors[0];
  const count = `${errors.length} error${errors.length === 1 ? '' : 's'}`;
  const where = first?.line ? `Line ${first.line}: ` : '';
  const pick = await vscode.window.showErrorMessage(
    `LoRA+: ${path.basename(configFile)} has ${count}; the ${what} was not started. ${where}${first?.message ?? ''}`,
    show,
  );
  if (pick === show) {
    await vscode.window.showTextDocument(vscode.Uri.file(configFile));
    await vscode.commands.executeCommand('workbench.actions.view.problems');
  }
  return null;
}
