// activate(): create the services once, hand each to the context (its one owner), register the command table.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { RUNS_VIEW } from './command-table';
import { ChatPanels } from './panels/chat';
import { ComparePanels } from './panels/compare';
import { registerConfigEditor } from './editor/editor';
import { Dashboards } from './panels/dashboard';
import { RunFeeds } from './runs/feeds';
import { RunProgress } from './runs/progress';
import { RunManager } from './runs/run-manager';
import { RunTree, type RunNode } from './runs/run-tree';
import type { Studio } from './studio';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('LoRA+');
  const runs = new RunManager(context.extensionPath, (line) => output.appendLine(line));
  const feeds = new RunFeeds(runs);
  const progress = new RunProgress(feeds);
  const tree = new RunTree(feeds);
  const treeView = vscode.window.createTreeView<RunNode>(RUNS_VIEW, {
    treeDataProvider: tree,
    canSelectMany: true,
    showCollapseAll: true,
  });
  const dashboards = new Dashboards(context.extensionUri, feeds);
  const compare = new ComparePanels(context.extensionUri);
  const chats = new ChatPanels(context.extensionUri);
  const studio: Studio = { context, output, runs, feeds, progress, tree, treeView, dashboards, compare, chats };
  const services = [output, runs, feeds, progress, tree, treeView, dashboards, compare, chats];
  context.subscriptions.push(...services, registerConfigEditor(), ...registerCommands(studio));
}

export function deactivate(): void {}
