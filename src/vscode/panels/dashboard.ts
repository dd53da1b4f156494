// One dashboard webview per run (viewType loraplus.dashboard, title "LoRA+ <run name>"). What the page shows comes
// from the run's feed (runs/feeds.ts: its metrics.jsonl, read once for every view): on `ready` every event read so
// far (`init`), then the feed's new events and summary changes as they come (at most ~10 times a second). A
// serializer restores panels after a reload from the state the page saved ({runDir}).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { dashboardSummary } from '../../engine/runs/summary';
import {
  hostMessage,
  isDashboardToHost,
  packModules,
  type DashboardView,
  type HostMessages,
} from '../../protocol/dashboard';
import type { EngineEvent } from '../../protocol/events';
import { isObject } from '../../protocol/json';
import type { RunChange, RunFeeds } from '../runs/feeds';
import { webviewHtml, webviewOptions } from './html';

export const DASHBOARD_VIEW = 'loraplus.dashboard';
const VIEW_KEY = 'loraplus.dashboard.view'; // DashboardView in the memento
const CHUNK_EVENTS = 5000; // a long run's init goes in pieces, so no single message is huge

export class Dashboards implements vscode.Disposable {
  private readonly panels = new Map<string, DashboardPanel>(); // by run folder
  private readonly owned = new Set<DashboardPanel>(); // every panel, also one restored without a run folder
  private readonly serializer: vscode.Disposable;

  constructor(
    readonly extensionUri: vscode.Uri,
    readonly feeds: RunFeeds,
    readonly memento?: vscode.Memento, // where view settings (the A/B quantity) outlive the panels
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
    // The active editor group, full width: a dashboard squeezed into a side column beside the config is too narrow
    // for its charts (the user can still drag it aside).
    const column = vscode.ViewColumn.Active;
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

  /** A run folder was renamed: its open dashboard (following the old folder) is replaced by one of the new. */
  moved(from: string, to: string): void {
    const open = this.panels.get(path.resolve(from));
    if (!open) return;
    open.dispose();
    this.open(to);
  }

  private adopt(panel: vscode.WebviewPanel, runDir: string | null): void {
    const p: DashboardPanel = new DashboardPanel(panel, runDir, this.extensionUri, this.feeds, this.memento, () => {
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

/** One panel: owns its webview and its subscriptions; its run comes from the run's feed. */
class DashboardPanel implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[] = [];
  private ready = false;
  private disposed = false;
  private sent = ''; // the summary last posted, as JSON

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly runDir: string | null,
    extensionUri: vscode.Uri,
    private readonly feeds: RunFeeds,
    private readonly memento: vscode.Memento | undefined,
    private readonly onDispose: () => void,
  ) {
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
    );
    if (runDir) {
      this.subscriptions.push(
        feeds.follow(runDir),
        feeds.onDidChange((c) => c.runDir === runDir && this.changed(c)),
      );
    }
  }

  private receive(m: unknown): void {
    if (!isDashboardToHost(m)) return;
    switch (m.type) {
      case 'ready':
        return this.init();
      case 'openFile':
        return void this.openFile(m.path);
      case 'saveView':
        return void this.memento?.update(VIEW_KEY, { ...this.view(), abQuantity: m.abQuantity });
      default:
        m satisfies never;
    }
  }

  /** Everything so far: the events the feed has read (later ones come as `events`) and the header's summary. */
  private init(): void {
    const dir = this.runDir;
    if (!dir) return;
    if (!fs.existsSync(dir)) {
      this.ready = false;
      void this.post('missing', {
        runDir: dir,
        message: `The run folder ${dir} no longer exists (deleted or moved), so this dashboard has nothing to show. Close it, or open the run again from the LoRA+ run explorer.`,
      });
      return;
    }
    this.ready = true;
    const events = this.feeds.history(dir);
    const summary = dashboardSummary(this.feeds.summary(dir));
    this.sent = JSON.stringify(summary);
    const view = this.view();
    void this.post('init', { runDir: dir, summary, view, ...packModules(events.slice(0, CHUNK_EVENTS)) });
    this.postEvents(events.slice(CHUNK_EVENTS));
  }

  private changed(c: RunChange): void {
    if (!this.ready || this.disposed) return;
    if (c.reset || !fs.existsSync(c.runDir)) return this.init(); // rewritten (a resume), or deleted: start over
    this.postEvents(c.events);
    const summary = dashboardSummary(c.summary);
    const json = JSON.stringify(summary);
    if (json !== this.sent) {
      this.sent = json;
      void this.post('summary', { summary });
    }
  }

  /** In pieces, so no single message is huge. */
  private postEvents(events: EngineEvent[]): void {
    for (let i = 0; i < events.length; i += CHUNK_EVENTS)
      void this.post('events', packModules(events.slice(i, i + CHUNK_EVENTS)));
  }

  /** The view settings kept for every dashboard (the A/B quantity picked last). */
  private view(): DashboardView {
    const v = this.memento?.get<unknown>(VIEW_KEY);
    return isObject(v) && typeof v.abQuantity === 'string' ? { abQuantity: v.abQuantity } : {};
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

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of this.subscriptions) d.dispose();
    this.onDispose();
    this.panel.dispose();
  }
}
