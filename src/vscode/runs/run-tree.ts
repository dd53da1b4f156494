// The run explorer: every run folder under the workspace (a folder with a metrics.jsonl the engine wrote), with its
// checkpoints and final adapter. What an item shows comes from tree-model.ts; this file finds the runs and keeps them
// current: file changes (CLI runs in a terminal, deletes), this window's runs (start, end, live steps) and time (a
// quiet run without an end turns from running to interrupted).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { METRICS_FILE } from '../../engine/runs/writer';
import { isRunDir, summarizeRun, type RunSummary } from '../../engine/runs/summary';
import type { RunManager } from './run-manager';
import {
  applyStep,
  childItems,
  isEngineRun,
  runDirOfFile,
  runItem,
  sortRuns,
  statusExpires,
  withStatus,
  type ChildItemData,
  type ItemData,
  type RunItemData,
} from './tree-model';

export type RunNode =
  | { kind: 'run'; dir: string; runDir: string; summary: RunSummary; item: RunItemData }
  | { kind: 'checkpoint'; dir: string; runDir: string; step: number; item: ChildItemData }
  | { kind: 'adapter'; dir: string; runDir: string; step: number; item: ChildItemData };

const WATCH_GLOB = '**/{metrics.jsonl,checkpoints/**,final/**}';
// A folder deleted, moved or copied as a whole is one event for the folder alone: this watcher sees those.
const FOLDER_GLOB = '**/*';
const BATCH_MS = 500; // file events are gathered this long before the folders they touch are read again
const STEP_FIRE_MS = 1000; // live steps redraw the tree at most this often

export class RunTree implements vscode.TreeDataProvider<RunNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<RunNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;

  /** Run folder (resolved) → its summary as last read; the status is decided again at each use (tree-model). */
  private summaries = new Map<string, RunSummary>();
  private foreign = new Set<string>(); // folders with another tool's metrics.jsonl: read again on change, not shown
  private scanning: Promise<void>;
  private rescan = false; // a file event named an unknown folder: find the runs again
  private readonly dirty = new Set<string>(); // known runs to read again
  private readonly nextRead = new Map<string, number>(); // a big metrics.jsonl is read again less often
  private liveDirs = new Set<string>();
  private flushTimer: NodeJS.Timeout | undefined;
  private fireTimer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private readonly subscriptions: vscode.Disposable[] = [];
  private disposed = false;

  /** `clock`: what "now" is when deciding whether a quiet run still runs (tests pass their own). */
  constructor(
    private readonly runs: RunManager,
    private readonly clock: () => number = Date.now,
  ) {
    const watcher = vscode.workspace.createFileSystemWatcher(WATCH_GLOB);
    const touched = (uri: vscode.Uri) => this.touched(uri.fsPath);
    const folders = vscode.workspace.createFileSystemWatcher(FOLDER_GLOB, false, true, false);
    this.subscriptions.push(
      watcher,
      watcher.onDidCreate(touched),
      watcher.onDidChange(touched),
      watcher.onDidDelete(touched),
      folders,
      folders.onDidCreate((uri) => this.folderCame(uri.fsPath)),
      folders.onDidDelete((uri) => this.folderGone(uri.fsPath)),
      runs.onDidChange(() => this.liveChanged()),
      runs.onEvent(({ runDir, event }) => {
        const dir = path.resolve(runDir);
        const known = this.summaries.get(dir);
        if (event.type === 'step' && known) {
          // Every step: fold it in, redraw at most once a second; metrics.jsonl is not read again for it.
          this.summaries.set(dir, applyStep(known, event, this.clock()));
          this.fireSoon();
        } else this.markDirty(dir, true);
      }),
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
    if (node.kind === 'run') {
      item.collapsibleState = node.item.collapsible
        ? vscode.TreeItemCollapsibleState.Collapsed
        : vscode.TreeItemCollapsibleState.None;
      item.command = { command: 'loraplus.openDashboard', title: 'Open Dashboard', arguments: [node] };
    } else item.resourceUri = vscode.Uri.file(node.dir);
    return item;
  }

  async getChildren(node?: RunNode): Promise<RunNode[]> {
    if (!node) {
      await this.scanning;
      const all = this.allRuns();
      const several = new Set(all.map((s) => path.dirname(s.dir))).size > 1;
      return all.map((s) => ({
        kind: 'run',
        dir: s.dir,
        runDir: s.dir,
        summary: s,
        item: runItem(s, several ? folderLabel(path.dirname(s.dir)) : undefined),
      }));
    }
    if (node.kind !== 'run') return [];
    return childItems(node.summary).map((c) => ({ kind: c.kind, dir: c.dir, runDir: node.dir, step: c.step, item: c }));
  }

  // ---- For the commands ---------------------------------------------------------------------------------------------

  /** Finds the runs again and redraws (the Refresh button, after a delete). */
  refresh(): void {
    this.scanning = this.scan().then(() => this.fireNow());
  }

  /** Every run found, newest first, with its status as of now. */
  allRuns(): RunSummary[] {
    const now = this.clock();
    return sortRuns([...this.summaries.values()].map((s) => withStatus(s, this.alive(s.dir), now)));
  }

  dispose(): void {
    this.disposed = true;
    for (const t of [this.flushTimer, this.fireTimer, this.expiryTimer]) clearTimeout(t);
    for (const d of this.subscriptions) d.dispose();
    this.changed.dispose();
  }

  // ---- Finding and reading runs -------------------------------------------------------------------------------------

  private async scan(): Promise<void> {
    const exclude = vscode.workspace.getConfiguration('loraplus').get<string>('runs.exclude') || undefined;
    const files = await vscode.workspace.findFiles('**/metrics.jsonl', exclude, 5000).then(undefined, () => []);
    const dirs = new Set(files.map((f) => path.resolve(path.dirname(f.fsPath))));
    for (const r of this.runs.runs()) if (r.runDir) dirs.add(path.resolve(r.runDir)); // also outside the workspace
    const next = new Map<string, RunSummary>();
    this.foreign = new Set();
    for (const dir of dirs) {
      const s = this.read(dir);
      if (s) next.set(dir, s);
      else this.foreign.add(dir);
    }
    this.summaries = next;
    this.rescan = false;
    this.dirty.clear();
    this.scheduleExpiry();
  }

  /** The folder's summary, or null when it is no (longer a) run. */
  private read(dir: string): RunSummary | null {
    const t0 = Date.now();
    try {
      const s = summarizeRun(dir, this.alive(dir));
      return isEngineRun(s) ? s : null;
    } catch {
      return null; // a folder deleted while being read, or a foreign file: not a run
    } finally {
      const took = Date.now() - t0;
      this.nextRead.set(dir, Date.now() + 10 * took); // a 100 ms read waits at least a second before the next
    }
  }

  private alive(dir: string): boolean {
    return this.runs.find(dir) !== undefined;
  }

  private touched(file: string): void {
    const dir = runDirOfFile(file);
    if (!dir || this.alive(dir)) return; // this window's runs are followed through their events
    this.markDirty(path.resolve(dir), false);
  }

  /** A run folder (or a folder of runs) moved or copied in: find the runs again. */
  private folderCame(p: string): void {
    if (runDirOfFile(p)) return; // the run watcher has it
    try {
      const holdsRun = (d: string) => fs.existsSync(path.join(d, METRICS_FILE));
      if (holdsRun(p) || (fs.statSync(p).isDirectory() && fs.readdirSync(p).some((n) => holdsRun(path.join(p, n))))) {
        this.rescan = true;
        this.flushSoon(BATCH_MS);
      }
    } catch {
      // gone again already
    }
  }

  /** A folder deleted or moved away: the runs in it go. */
  private folderGone(p: string): void {
    const gone = path.resolve(p);
    for (const dir of [...this.summaries.keys(), ...this.foreign])
      if (dir === gone || dir.startsWith(gone + path.sep)) this.markDirty(dir, false);
  }

  /** Reads `dir` again soon. An unknown folder means a new run: from this window (`trusted`) or one to find again. */
  private markDirty(dir: string, trusted: boolean): void {
    if (this.summaries.has(dir) || this.foreign.has(dir) || trusted) this.dirty.add(dir);
    else this.rescan = true;
    this.flushSoon(BATCH_MS);
  }

  private liveChanged(): void {
    const now = new Set(this.runs.runs().flatMap((r) => (r.runDir ? [path.resolve(r.runDir)] : [])));
    for (const dir of new Set([...this.liveDirs, ...now])) this.dirty.add(dir); // started or ended: status changes
    this.liveDirs = now;
    this.flushSoon(0);
  }

  private flushSoon(ms: number): void {
    if (this.flushTimer) {
      if (ms > 0) return; // a batch is already waiting
      clearTimeout(this.flushTimer);
    }
    this.flushTimer = setTimeout(() => void this.flush(), ms);
  }

  private async flush(): Promise<void> {
    this.flushTimer = undefined;
    await this.scanning;
    if (this.disposed) return;
    if (this.rescan) {
      this.scanning = this.scan();
      await this.scanning;
    }
    const now = Date.now();
    let wait = Infinity;
    for (const dir of [...this.dirty]) {
      const at = this.nextRead.get(dir) ?? 0;
      if (at > now && !this.alive(dir) && isRunDir(dir)) {
        wait = Math.min(wait, at - now); // read it again later (a deleted run goes at once)
        continue;
      }
      this.dirty.delete(dir);
      const s = this.read(dir);
      if (s) this.summaries.set(dir, s);
      else this.summaries.delete(dir);
      if (!s && isRunDir(dir)) this.foreign.add(dir);
      else this.foreign.delete(dir);
    }
    if (wait < Infinity) this.flushSoon(Math.max(BATCH_MS, wait));
    this.scheduleExpiry();
    this.fireNow();
  }

  // ---- Redrawing ----------------------------------------------------------------------------------------------------

  private fireNow(): void {
    clearTimeout(this.fireTimer);
    this.fireTimer = undefined;
    if (!this.disposed) this.changed.fire(undefined);
  }

  private fireSoon(): void {
    this.fireTimer ??= setTimeout(() => this.fireNow(), STEP_FIRE_MS);
  }

  /** Redraws when the first quiet run without an end turns from running to interrupted. */
  private scheduleExpiry(): void {
    clearTimeout(this.expiryTimer);
    if (this.disposed) return;
    const now = this.clock();
    const times = [...this.summaries.values()]
      .map((s) => statusExpires(s, this.alive(s.dir), now))
      .filter((t): t is number => t !== null);
    if (!times.length) return;
    this.expiryTimer = setTimeout(
      () => {
        this.scheduleExpiry();
        this.fireNow();
      },
      Math.min(...times) - now + 1000,
    );
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
