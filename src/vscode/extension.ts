// activate(): create the services once, hand each to the context (its one owner), register the command table.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { setEngineDebugLog } from './engine-process';
import { RUNS_VIEW } from './command-table';
import { ChatPanels } from './panels/chat';
import { ComparePanels } from './panels/compare';
import { registerConfigEditor } from './editor/editor';
import { Dashboards } from './panels/dashboard';
import { TuneDashboards } from './panels/tune-dashboard';
import { RunFeeds } from './runs/feeds';
import { RunProgress } from './runs/progress';
import { RunManager } from './runs/run-manager';
import { RunTree, type RunNode } from './runs/run-tree';
import { TuneFeeds } from './runs/tune-feeds';
import type { Studio } from './studio';

export function activate(context: vscode.ExtensionContext): void {
  // A log channel: the engine's lines at info; native libraries' chatter (Dawn probing Vulkan) only at debug.
  const [uri, output] = [context.extensionUri, vscode.window.createOutputChannel('LoRA+', { log: true })];
  setEngineDebugLog((line) => output.debug(line));
  const runs = new RunManager(context.extensionPath, (line) => output.appendLine(line));
  const [feeds, tunes] = [new RunFeeds(runs), new TuneFeeds(runs)];
  const [progress, tree] = [new RunProgress(feeds), new RunTree(feeds, tunes)];
  const options = { treeDataProvider: tree, canSelectMany: true, showCollapseAll: true };
  const treeView = vscode.window.createTreeView<RunNode>(RUNS_VIEW, options);
  const dashboards = new Dashboards(uri, feeds, context.globalState);
  const tuneDashboards = new TuneDashboards(uri, tunes, feeds, (dir) => dashboards.open(dir));
  const [compare, chats] = [new ComparePanels(uri), new ChatPanels(uri)];
  const services = { output, runs, feeds, tunes, progress, tree, treeView, dashboards, tuneDashboards, compare, chats };
  const studio: Studio = { context, ...services };
  context.subscriptions.push(...Object.values(services), registerConfigEditor(), ...registerCommands(studio));
}

export function deactivate(): void {}
