// PLACEHOLDER (being written): LoRA+: New Training Config.
import type * as vscode from 'vscode';

export async function newConfig(folder?: vscode.Uri): Promise<vscode.Uri | undefined> {
  throw new Error(`new config not built yet: ${folder?.fsPath}`);
}
