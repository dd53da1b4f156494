// The extension's services, created once in activate() and handed to the command handlers. Each one is a
// Disposable with exactly one owner: the ExtensionContext (extension.ts pushes them in creation order).
import type * as vscode from 'vscode';
import type { ChatPanels } from './panels/chat';
import type { ComparePanels } from './panels/compare';
import type { Dashboards } from './panels/dashboard';
import type { TuneDashboards } from './panels/tune-dashboard';
import type { RunFeeds } from './runs/feeds';
import type { RunProgress } from './runs/progress';
import type { RunManager } from './runs/run-manager';
import type { RunNode, RunTree } from './runs/run-tree';
import type { TuneFeeds } from './runs/tune-feeds';

export interface Studio {
  readonly context: vscode.ExtensionContext;
  readonly output: vscode.OutputChannel;
  readonly runs: RunManager;
  readonly feeds: RunFeeds; // one model of each run, for every view
  readonly tunes: TuneFeeds; // one model of each tune (its trials are runs in `feeds`)
  readonly progress: RunProgress;
  readonly tree: RunTree;
  readonly treeView: vscode.TreeView<RunNode>;
  readonly dashboards: Dashboards;
  readonly tuneDashboards: TuneDashboards;
  readonly compare: ComparePanels;
  readonly chats: ChatPanels;
}
