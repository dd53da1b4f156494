// The run explorer: every run folder under the workspace (a folder with a metrics.jsonl the engine wrote), with its
// checkpoints, final adapter and merged models (merge_info.json; merge-model.ts), and every tune folder (a
// tune.jsonl) as a group of its trials, which are run items like any other. What an item shows comes from
// tree-model.ts and tune-model.ts; this file finds the runs and tunes and keeps them current: which folders are runs
// and tunes (a workspace search, then file and folder events), and each as its feed says (feeds.ts and tune-feeds.ts:
// the one model that the dashboards and the status bar share).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { isEngineRun, isRunDir, type RunSummary } from '../../engine/runs/summary';
import { METRICS_FILE } from '../../engine/runs/writer';
import { TUNE_FILE, type TuneSummary } from '../../protocol/tune';
import type { RunChange, RunFeeds } from './feeds';
import {
  childItems,
  runDirOfFile,
  runItem,
  sortRuns,
  startedAt,
  type ChildItemData,
  type ItemData,
  type RunItemData,
} from './tree-model';
import { MERGE_INFO_FILE, mergedItem, ownerRun, readMergeInfo, type MergedItemData } from './merge-model';
import type { TuneChange, TuneFeeds } from './tune-feeds';
import { trialOrder, trialOutcome, trialTooltip, tuneDirOfTrial, tuneItem, type TuneItemData } from './tune-model';

export type RunNode =
  | { kind: 'tune'; dir: string; tuneDir: string; summary: TuneSummary; item: TuneItemData }
  | { kind: 'run'; dir: string; runDir: string; summary: RunSummary; item: RunItemData }
  | { kind: 'checkpoint'; dir: string; runDir: string; step: number; item: ChildItemData }
  | { kind: 'adapter'; dir: string; runDir: string; step: number; item: ChildItemData }
  | { kind: 'merged'; dir: string; item: MergedItemData };

const WATCH_GLOB = '**/{metrics.jsonl,checkpoints/**,final/**}';
const TUNE_GLOB = `**/${TUNE_FILE}`;
const MERGE_GLOB = `**/${MERGE_INFO_FILE}`;
// A folder deleted, moved or copied as a whole is one event for the folder alone: this watcher sees those.
const FOLDER_GLOB = '**/*';
const BATCH_MS = 500; // folder events are gathered this long before the runs are searched for again
const STEP_FIRE_MS = 1000; // live steps redraw the tree at most this often

export class RunTree implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  private dirs = new Set<string>(); // the run folders found (resolved)
  private foreign = new Set<string>(); // folders with another tool's metrics.jsonl: read again on change, not shown
  private tunes = new Set<string>(); // the tune folders found (resolved); their trials are runs in `dirs`
  private merges = new Set<string>(); // folders a merge wrote (resolved): under their run, else at the top
  private scanning: Promise<void>;
  private rescanTimer: NodeJS.Timeout | undefined;
  private fireTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private disposed = false;

  constructor(
    private readonly feeds: RunFeeds,
    private readonly tuneFeeds: TuneFeeds,
  ) {
    const watcher = vscode.workspace.createFileSystemWatcher(WATCH_GLOB);
    const touched = (uri: vscode.Uri) => this.touched(uri.fsPath);
    const tuneFiles = vscode.workspace.createFileSystemWatcher(TUNE_GLOB);
    const tuneTouched = (uri: vscode.Uri) => this.tuneTouched(path.dirname(uri.fsPath));
    const folders = vscode.workspace.createFileSystemWatcher(FOLDER_GLOB, false, true, false);
    this.subscriptions.push(
      watcher,
      watcher.onDidCreate(touched),
      watcher.onDidChange(touched),
      watcher.onDidDelete(touched),
      tuneFiles,
      tuneFiles.onDidCreate(tuneTouched),
      tuneFiles.onDidChange(tuneTouched),
      tuneFiles.onDidDelete(tuneTouched),
      tuneFeeds.onDidChange((c) => this.tuneChanged(c)),
      folders,
      folders.onDidCreate((uri) => this.folderCame(uri.fsPath)),
      folders.onDidDelete((uri) => this.folderGone(uri.fsPath)),
      feeds.onDidChange((c) => this.runChanged(c)),
      feeds.runs.onDidChange(() => this.liveRunsChanged()),
      vscode.workspace.onDidChangeWorkspaceFolders(() => this.refresh()),
      vscode.workspace.onDidChangeConfiguration(
        (e) => e.affectsConfiguration('loraplus.runs.exclude') && this.refresh(),
      ),
    );
    this.scanning = this.scan();
  }

  // ---- TreeDataProvider -------------------------------------------------------------------------------------------

  getTreeItem(node: RunNode): vscode.TreeItem {
    const item = treeItem(node.item);
    if (node.kind === 'tune') {
      item.collapsibleState = node.item.collapsible
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
      item.command = { command: 'loraplus.openTuneDashboard', title: 'Open Tune Dashboard', arguments: [node] };
    } else if (node.kind === 'run') {
      item.collapsibleState = node.item.collapsible
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
      item.command = { command: 'loraplus.openDashboard', title: 'Open Dashboard', arguments: [node] };
    } else {
      item.resourceUri = vscode.Uri.file(node.dir);
      if (node.kind === 'merged')
        item.command = { command: 'loraplus.openModelCard', title: 'Open Model Card', arguments: [node] };
    }
    return item;
  }

  async getChildren(node?: RunNode): Promise<RunNode[]> {
    if (!node) {
      await this.scanning;
      return this.roots();
    }
    if (node.kind === 'tune') return this.trials(node);
    if (node.kind !== 'run') return [];
    const children: RunNode[] = childItems(node.summary).map((c) => ({
      kind: c.kind,
      dir: c.dir,
      runDir: node.dir,
      step: c.step,
      item: c,
    }));
    return [...children, ...this.mergesOf(node.dir)];
  }

  /** The merges of a run (`run`), or those of no run found (null): each with its merge_info.json. */
  private mergesOf(run: string | null): Extract<RunNode, { kind: 'merged' }>[] {
    const out: Extract<RunNode, { kind: 'merged' }>[] = [];
    for (const dir of [...this.merges].sort()) {
      const info = readMergeInfo(dir);
      if (ownerRun(dir, info, this.dirs) !== run) continue;
      out.push({ kind: 'merged', dir, item: mergedItem(dir, info, run === null) });
    }
    return out;
  }

  /** Tunes and the runs that are no tune's trials, newest first. */
  private roots(): RunNode[] {
    const runs = this.allRuns().filter((s) => !this.tunes.has(tuneDirOfTrial(s.dir) ?? ''));
    const tunes = this.allTunes();
    const several = new Set([...runs.map((s) => s.dir), ...tunes.map((t) => t.dir)].map(path.dirname)).size > 1;
    const where = (dir: string) => (several ? folderLabel(path.dirname(dir)) : undefined);
    const nodes: { time: number; node: RunNode }[] = [
      ...tunes.map(({ dir, summary }) => ({
        time: Date.parse(summary.start?.time ?? '') || 0,
        node: { kind: 'tune' as const, dir, tuneDir: dir, summary, item: tuneItem(dir, summary, where(dir)) },
      })),
      ...runs.map((s) => ({ time: startedAt(s), node: this.runNode(s, where(s.dir)) })),
      ...this.mergesOf(null).map((node) => ({ time: Date.parse(readMergeInfo(node.dir)?.created ?? '') || 0, node })),
    ];
    return nodes
      .sort((a, b) => b.time - a.time || a.node.item.label.localeCompare(b.node.item.label))
      .map((n) => n.node);
  }

  /** A tune's trials with a run folder, best first; each is an ordinary run item that also says how it stands. */
  private trials(node: Extract<RunNode, { kind: 'tune' }>): RunNode[] {
    const out: RunNode[] = [];
    for (const t of trialOrder(node.summary)) {
      const dir = t.run_dir && path.resolve(t.run_dir);
      if (!dir || (!this.dirs.has(dir) && !this.isRun(dir))) continue;
      this.dirs.add(dir);
      const run = this.runNode(this.feeds.summary(dir));
      run.item.description += ` · ${trialOutcome(t)}`;
      run.item.tooltip += trialTooltip(t);
      out.push(run);
    }
    return out;
  }

  private runNode(s: RunSummary, where?: string): Extract<RunNode, { kind: 'run' }> {
    return { kind: 'run', dir: s.dir, runDir: s.dir, summary: s, item: runItem(s, where) };
  }

  // ---- For the commands ---------------------------------------------------------------------------------------------

  /** Finds the runs again and redraws (the Refresh button, after a delete). */
  refresh(): void {
    this.scanning = this.scan().then(() => this.fireNow());
  }

  /** Every run found (trials of tunes too), newest first, with its status as of now. */
  allRuns(): RunSummary[] {
    return sortRuns([...this.dirs].map((dir) => this.feeds.summary(dir)));
  }

  /** Every tune found, with its status as of now. */
  allTunes(): { dir: string; summary: TuneSummary }[] {
    return [...this.tunes].map((dir) => ({ dir, summary: this.tuneFeeds.summary(dir) }));
  }

  dispose(): void {
    this.disposed = true;
    for (const t of [this.rescanTimer, this.fireTimer]) clearTimeout(t);
    for (const d of this.subscriptions) d.dispose();
    this.changed.dispose();
  }

  // ---- Finding runs -------------------------------------------------------------------------------------------------

  private async scan(): Promise<void> {
    const exclude = vscode.workspace.getConfiguration('loraplus').get<string>('runs.exclude') || undefined;
    const find = (glob: string) => vscode.workspace.findFiles(glob, exclude, 5000).then(undefined, () => []);
    const [files, tuneFiles, mergeFiles] = await Promise.all([
      find('**/metrics.jsonl'),
      find(TUNE_GLOB),
      find(MERGE_GLOB),
    ]);
    const dirs = new Set(files.map((f) => path.resolve(path.dirname(f.fsPath))));
    const tunes = new Set(tuneFiles.map((f) => path.resolve(path.dirname(f.fsPath))));
    for (const r of this.feeds.runs.runs()) {
      // also outside the workspace
      if (r.runDir) dirs.add(path.resolve(r.runDir));
      if (r.tuneDir) tunes.add(path.resolve(r.tuneDir));
    }
    const [runs, foreign] = [new Set<string>(), new Set<string>()];
    for (const dir of dirs) {
      this.feeds.forget(dir); // read afresh
      (this.isRun(dir) ? runs : foreign).add(dir);
    }
    for (const dir of tunes) this.tuneFeeds.forget(dir);
    [this.dirs, this.foreign, this.tunes] = [runs, foreign, tunes];
    this.merges = new Set(mergeFiles.map((f) => path.resolve(path.dirname(f.fsPath))));
  }

  private isRun(dir: string): boolean {
    try {
      return isEngineRun(this.feeds.summary(dir));
    } catch {
      return false; // a folder deleted while being read, or a foreign file: not a run
    }
  }

  /** A run's file changed: the feed reads it; an unknown folder means a new run somewhere: find the runs again. */
  private touched(file: string): void {
    const dir = runDirOfFile(file);
    if (!dir) return;
    const resolved = path.resolve(dir);
    if (this.dirs.has(resolved) || this.foreign.has(resolved)) this.feeds.changed(resolved);
    else this.rescanSoon();
  }

  /** A tune's tune.jsonl changed: its feed reads it; a new one (or one deleted) changes the list. */
  private tuneTouched(dir: string): void {
    const resolved = path.resolve(dir);
    if (!this.tunes.has(resolved)) return this.rescanSoon();
    if (fs.existsSync(path.join(resolved, TUNE_FILE))) return this.tuneFeeds.changed(resolved);
    this.folderGone(resolved); // the tune goes, and its trials if they went with it (else they are runs now)
  }

  /** A run or tune folder (or a folder of them) moved or copied in: find the runs again. */
  private folderCame(p: string): void {
    if (runDirOfFile(p)) return; // the run watcher has it
    try {
      const holdsRun = (d: string) =>
        [METRICS_FILE, TUNE_FILE, MERGE_INFO_FILE].some((f) => fs.existsSync(path.join(d, f)));
      const holds =
        holdsRun(p) || (fs.statSync(p).isDirectory() && fs.readdirSync(p).some((n) => holdsRun(path.join(p, n))));
      if (holds) this.rescanSoon();
    } catch {
      // gone again already
    }
  }

  /** A folder deleted or moved away: the runs in it go (at once: a folder event stands for all its files). */
  private folderGone(p: string): void {
    const gone = path.resolve(p);
    let removed = false;
    for (const dir of [...this.dirs, ...this.foreign]) {
      if ((dir !== gone && !dir.startsWith(gone + path.sep)) || isRunDir(dir)) continue;
      this.dirs.delete(dir);
      this.foreign.delete(dir);
      this.feeds.forget(dir);
      removed = true;
    }
    for (const dir of this.tunes) {
      if ((dir !== gone && !dir.startsWith(gone + path.sep)) || fs.existsSync(path.join(dir, TUNE_FILE))) continue;
      this.tunes.delete(dir);
      this.tuneFeeds.forget(dir);
      removed = true;
    }
    for (const dir of this.merges) {
      if ((dir !== gone && !dir.startsWith(gone + path.sep)) || fs.existsSync(path.join(dir, MERGE_INFO_FILE)))
        continue;
      this.merges.delete(dir);
      removed = true;
    }
    if (removed) this.fireNow();
  }

  /** This window started a run (perhaps outside the workspace): it belongs in the list. */
  private liveRunsChanged(): void {
    for (const r of this.feeds.runs.runs()) {
      const dir = r.runDir && path.resolve(r.runDir);
      if (dir && !this.dirs.has(dir) && this.isRun(dir)) {
        this.dirs.add(dir);
        this.fireNow();
      }
    }
  }

  /** A tune changed (a rung result, its status): redraw; a tune this window just started joins the list. */
  private tuneChanged(c: TuneChange): void {
    if (!this.tunes.has(c.tuneDir)) {
      if (!this.feeds.runs.findTune(c.tuneDir)) return;
      this.tunes.add(c.tuneDir);
    }
    this.fireNow();
  }

  private rescanSoon(): void {
    this.rescanTimer ??= setTimeout(() => {
      this.rescanTimer = undefined;
      if (!this.disposed) this.refresh();
    }, BATCH_MS);
  }

  // ---- Redrawing ----------------------------------------------------------------------------------------------------

  /** A run changed: it may have become (or stopped being) a run; steps redraw at most once a second. */
  private runChanged(c: RunChange): void {
    const dir = c.runDir;
    const known = this.dirs.has(dir) || this.foreign.has(dir);
    const live = this.feeds.runs.find(dir) !== undefined;
    if (!known && !live) return;
    this.dirs.delete(dir);
    this.foreign.delete(dir);
    if (isRunDir(dir) || live) (isEngineRun(c.summary) ? this.dirs : this.foreign).add(dir);
    else this.feeds.forget(dir); // deleted
    const onlySteps = !c.reset && !c.statusChanged && c.events.every((e) => e.type === 'step');
    if (onlySteps) this.fireSoon();
    else this.fireNow();
  }

  private fireNow(): void {
    clearTimeout(this.fireTimer);
    this.fireTimer = undefined;
    if (!this.disposed) this.changed.fire(undefined);
  }

  private fireSoon(): void {
    this.fireTimer ??= setTimeout(() => this.fireNow(), STEP_FIRE_MS);
  }
}

/** Where a run lives, for telling runs of several folders apart: `runs`, `other/runs`, a workspace folder's name. */
function folderLabel(dir: string): string {
  const root = vscode.workspace.workspaceFolders?.find((f) => path.resolve(f.uri.fsPath) === dir);
  return root ? root.name : vscode.workspace.asRelativePath(dir);
}

function treeItem(d: ItemData): vscode.TreeItem {
  const item = new vscode.TreeItem(d.label);
  item.id = d.id;
  item.description = d.description;
  item.tooltip = new vscode.MarkdownString(d.tooltip);
  item.iconPath = new vscode.ThemeIcon(d.icon.id, d.icon.color ? new vscode.ThemeColor(d.icon.color) : undefined);
  item.contextValue = d.contextValue;
  return item;
}
