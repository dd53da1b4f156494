// The extension's services, created once in activate() and handed to the command handlers. Each one is a
// Disposable with exactly one owner: the ExtensionContext (extension.ts pushes them in creation order).
import type * as vscode from 'vscode';
import type { ComparePanels } from './compare';
import type { Dashboards } from './dashboard';
import type { RunProgress } from './progress';
import type { RunManager } from './run-manager';
import type { RunNode, RunTree } from './run-tree';

export interface Studio {
  readonly context: vscode.ExtensionContext;
  readonly output: vscode.OutputChannel;
  readonly runs: RunManager;
  readonly progress: RunProgress;
  readonly tree: RunTree;
  readonly treeView: vscode.TreeView<RunNode>;
  readonly dashboards: Dashboards;
  readonly compare: ComparePanels;
}
