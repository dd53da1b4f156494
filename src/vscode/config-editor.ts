// PLACEHOLDER (being written): diagnostics, completions, hovers and quick fixes for training configs.
import * as vscode from 'vscode';

export function registerConfigEditor(): vscode.Disposable {
  return new vscode.Disposable(() => undefined);
}
