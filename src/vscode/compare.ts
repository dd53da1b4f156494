// PLACEHOLDER (being written): the compare webview.
import type * as vscode from 'vscode';
import type { Studio } from './studio';

export class ComparePanels implements vscode.Disposable {
  constructor(readonly extensionUri: vscode.Uri) {}
  dispose(): void {}
}

export async function compareCheckpoints(_s: Studio, paths: string[]): Promise<void> {
  throw new Error(`compare not built yet: ${paths.join(', ')}`);
}
