// One dashboard webview per run (viewType loraplus.dashboard, title "LoRA+ <run name>"). The run folder's
// metrics.jsonl is the one source of what the page shows: on `ready` the panel reads it whole (`init`), then follows
// its growth (MetricsTail) and forwards new events at most ~10 times a second. Events of runs this window started
// (RunManager.onEvent) only say "read now", which keeps live runs snappy without ever sending an event twice; runs
// started elsewhere (the CLI in a terminal) are followed through fs.watch and a 1 s poll. A serializer restores
// panels after a reload from the state the page saved ({runDir}).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { summarizeEvents } from '../../engine/runs/summary';
import { METRICS_FILE } from '../../engine/runs/writer';
import {
  hostMessage,
  isDashboardToHost,
  packModules,
  type DashboardStatus,
  type HostMessages,
} from '../../protocol/dashboard';
import type { EngineEvent } from '../../protocol/events';
import { MetricsTail, toDashboardSummary } from '../runs/feed';
import type { LiveRun, RunManager } from '../runs/run-manager';
import { RECENT_MS } from '../runs/tree-model';
import { webviewHtml, webviewOptions } from './html';

export const DASHBOARD_VIEW = 'loraplus.dashboard';
const FLUSH_MS = 100; // at most ~10 messages a second
const POLL_MS = 1000; // fs.watch can miss appends on some file systems; a stat a second catches them
const CHUNK_EVENTS = 5000; // a long run's init goes in pieces, so no single message is huge

export class Dashboards implements vscode.Disposable {
  private readonly panels = new Map<string, DashboardPanel>(); // by run folder
  private readonly owned = new Set<DashboardPanel>(); // every panel, also one restored without a run folder
  private readonly serializer: vscode.Disposable;

  constructor(
    readonly extensionUri: vscode.Uri,
    readonly runs: RunManager,
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(DASHBOARD_VIEW, {
      deserializeWebviewPanel: async (panel, state: unknown) => {
        const runDir = isObject(state) && typeof state.runDir === 'string' ? path.resolve(state.runDir) : null;
        if (runDir && this.panels.has(runDir)) return panel.dispose(); // already open (restored twice)
        this.adopt(panel, runDir);
      },
    });
  }

  /** Shows the run's dashboard: reveals it if it is open, else opens one. */
  open(runDir: string): void {
    const dir = path.resolve(runDir);
    const open = this.panels.get(dir);
    if (open) return open.panel.reveal();
    const column = vscode.window.activeTextEditor ? vscode.ViewColumn.Beside : vscode.ViewColumn.Active;
    this.adopt(
      vscode.window.createWebviewPanel(
        DASHBOARD_VIEW,
        `LoRA+ ${path.basename(dir)}`,
        column,
        webviewOptions(this.extensionUri),
      ),
      dir,
    );
  }

  private adopt(panel: vscode.WebviewPanel, runDir: string | null): void {
    const p: DashboardPanel = new DashboardPanel(panel, runDir, this.extensionUri, this.runs, () => {
      this.owned.delete(p);
      if (runDir && this.panels.get(runDir) === p) this.panels.delete(runDir);
    });
    this.owned.add(p);
    if (runDir) this.panels.set(runDir, p);
  }

  dispose(): void {
    this.serializer.dispose();
    for (const p of [...this.owned]) p.dispose();
    this.panels.clear();
  }
}

/** One panel: owns its webview, its file watcher and timers, and its subscriptions. */
class DashboardPanel implements vscode.Disposable {
  private readonly tail: MetricsTail | null;
  private readonly subscriptions: vscode.Disposable[] = [];
  private watcher: fs.FSWatcher | null = null;
  private poll: NodeJS.Timeout | null = null;
  private flushTimer: NodeJS.Timeout | null = null;
  private lastSize = -1;
  private mtime = 0; // of metrics.jsonl: a run from elsewhere counts as running while it keeps changing
  private ready = false;
  private disposed = false;
  private ended: Extract<EngineEvent, { type: 'end' }>['status'] | null = null;
  private crashed: string | null = null; // this window's run exited without an end event
  private sent: { status: DashboardStatus; error: string | null } | null = null;
  private live: LiveRun | undefined;

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly runDir: string | null,
    extensionUri: vscode.Uri,
    private readonly runs: RunManager,
    private readonly onDispose: () => void,
  ) {
    this.tail = runDir ? new MetricsTail(path.join(runDir, METRICS_FILE)) : null;
    panel.title = runDir ? `LoRA+ ${path.basename(runDir)}` : 'LoRA+ Dashboard';
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      title: panel.title,
      scripts: ['dashboard.js'],
      styles: ['dashboard.css'],
      state: runDir ? { runDir } : undefined,
    });
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      // Hidden panels lose their page (retainContextWhenHidden is off); a shown one reloads and says `ready` again.
      panel.onDidChangeViewState(() => (this.ready &&= panel.visible)),
      panel.onDidDispose(() => this.dispose()),
      runs.onEvent((e) => runDir && path.resolve(e.runDir) === runDir && this.schedule()),
      runs.onDidChange(() => this.liveChanged()),
    );
    if (runDir) this.follow(runDir);
    this.live = runDir ? runs.find(runDir) : undefined;
    void this.watchCrash();
  }

  private follow(runDir: string): void {
    try {
      this.watcher = fs.watch(runDir, (_kind, name) => (!name || name.toString() === METRICS_FILE) && this.schedule());
      this.watcher.on('error', () => this.watcher?.close());
    } catch {
      this.watcher = null; // no folder (yet): the poll below still notices it appearing
    }
    this.poll = setInterval(() => {
      if (this.sizeNow() !== this.lastSize) this.schedule();
      else this.sendStatus(); // a quiet run from elsewhere turns interrupted after RECENT_MS
    }, POLL_MS);
  }

  private receive(m: unknown): void {
    if (!isDashboardToHost(m)) return;
    switch (m.type) {
      case 'ready':
        return this.init();
      case 'openFile':
        return void this.openFile(m.path);
      default:
        m satisfies never;
    }
  }

  private init(): void {
    const dir = this.runDir;
    if (!dir || !this.tail) return;
    if (!fs.existsSync(dir)) {
      this.ready = false;
      void this.post('missing', {
        runDir: dir,
        message: `The run folder ${dir} no longer exists (deleted or moved), so this dashboard has nothing to show. Close it, or open the run again from the LoRA+ run explorer.`,
      });
      return;
    }
    this.ready = true;
    const events = this.tail.readAll();
    this.lastSize = this.sizeNow();
    this.ended = null;
    this.noteEnds(events);
    const summary = toDashboardSummary(summarizeEvents(dir, events, this.alive()), this.status());
    this.sent = { status: summary.status, error: summary.error };
    void this.post('init', { runDir: dir, summary, ...packModules(events.slice(0, CHUNK_EVENTS)) });
    for (let i = CHUNK_EVENTS; i < events.length; i += CHUNK_EVENTS)
      void this.post('events', packModules(events.slice(i, i + CHUNK_EVENTS)));
  }

  /** Reads the file's new lines soon (coalesced: at most one read per FLUSH_MS). */
  private schedule(): void {
    if (this.flushTimer || this.disposed) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = null;
      this.flush();
    }, FLUSH_MS);
  }

  private flush(): void {
    if (!this.ready || !this.tail || this.disposed) return;
    if (this.runDir && !fs.existsSync(this.runDir)) return this.init(); // deleted while open: say so
    const { events, reset } = this.tail.read();
    this.lastSize = this.sizeNow();
    if (reset) return this.init(); // rewritten (a resume): start the page over
    if (events.length) {
      this.noteEnds(events);
      for (let i = 0; i < events.length; i += CHUNK_EVENTS)
        void this.post('events', packModules(events.slice(i, i + CHUNK_EVENTS)));
    }
    this.sendStatus();
  }

  private noteEnds(events: EngineEvent[]): void {
    for (const e of events) {
      if (e.type === 'run_start') [this.ended, this.crashed] = [null, null];
      else if (e.type === 'end') this.ended = e.status;
    }
  }

  /** true: this window is training it; undefined: unknown (another process may be), as summarizeRun reads it. */
  private alive(): boolean | undefined {
    return this.live ? true : undefined;
  }

  /** The run explorer's rule (tree-model.ts decideStatus): the end event, else running while trained or changing. */
  private status(): { status: DashboardStatus; error: string | null } {
    if (this.ended) return { status: this.ended, error: null };
    if (this.crashed) return { status: 'failed', error: this.crashed };
    return { status: this.live || Date.now() - this.mtime < RECENT_MS ? 'running' : 'interrupted', error: null };
  }

  private sendStatus(): void {
    const now = this.status();
    if (!this.ready || (this.sent && this.sent.status === now.status && this.sent.error === now.error)) return;
    this.sent = now;
    void this.post('status', now);
  }

  private liveChanged(): void {
    if (!this.runDir) return;
    const live = this.runs.find(this.runDir);
    if (live && live !== this.live) {
      this.live = live;
      void this.watchCrash();
    }
    this.schedule();
  }

  /** A run of this window that exits without writing an end event crashed: the page should not say "running". */
  private async watchCrash(): Promise<void> {
    const run = this.live;
    if (!run) return;
    const result = await run.ended;
    if (this.disposed || run !== this.live) return;
    this.live = undefined;
    this.flush(); // the end event, if the engine wrote one, comes first
    if (!this.ended)
      this.crashed =
        result.error?.message ?? `the run ended (${result.status}) without writing its end to ${METRICS_FILE}`;
    this.sendStatus();
  }

  private async openFile(relative: string): Promise<void> {
    if (!this.runDir) return;
    const file = path.resolve(this.runDir, relative);
    const inside = path.relative(this.runDir, file);
    if (!inside || inside.startsWith('..') || path.isAbsolute(inside) || !fs.existsSync(file)) return;
    await vscode.window.showTextDocument(vscode.Uri.file(file), {
      preview: true,
      viewColumn: vscode.ViewColumn.Active,
    });
  }

  private post<K extends keyof HostMessages>(type: K, payload: HostMessages[K]): Thenable<boolean> {
    return this.disposed ? Promise.resolve(false) : this.panel.webview.postMessage(hostMessage(type, payload));
  }

  /** The size of metrics.jsonl (-1: missing); notes its mtime. */
  private sizeNow(): number {
    try {
      const st = fs.statSync(this.tail!.file);
      this.mtime = st.mtimeMs;
      return st.size;
    } catch {
      return -1;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const d of this.subscriptions) d.dispose();
    this.onDispose();
    this.panel.dispose();
  }
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
