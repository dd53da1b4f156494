// PLACEHOLDER (being written): the run explorer's tree.
import * as vscode from 'vscode';
import type { RunSummary } from '../engine/runs';
import type { RunManager } from './run-manager';

export type RunNode =
  | { kind: 'run'; dir: string; runDir: string; summary: RunSummary }
  | { kind: 'checkpoint'; dir: string; runDir: string; step: number }
  | { kind: 'adapter'; dir: string; runDir: string };

export class RunTree implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChangeTreeData = this.changed.event;
  constructor(readonly runs: RunManager) {}
  getTreeItem(n: RunNode): vscode.TreeItem {
    return new vscode.TreeItem(n.dir);
  }
  getChildren(): RunNode[] {
    return [];
  }
  refresh(): void {
    this.changed.fire();
  }
  allRuns(): RunSummary[] {
    return [];
  }
  dispose(): void {
    this.changed.dispose();
  }
}
