// PLACEHOLDER (being written): one dashboard webview per run.
import type * as vscode from 'vscode';
import type { RunManager } from './run-manager';

export class Dashboards implements vscode.Disposable {
  constructor(readonly extensionUri: vscode.Uri, readonly runs: RunManager) {}
  open(runDir: string): void {
    throw new Error(`dashboard not built yet: ${runDir}`);
  }
  dispose(): void {}
}
