// One tune dashboard webview per tune folder (viewType loraplus.tune, title "LoRA+ tune <name>"). What the page shows
// comes from the tune's feed (runs/tune-feeds.ts: its tune.jsonl) and its trials' run feeds (runs/feeds.ts: their
// metrics.jsonl), the same models the explorer reads: on `ready` the summary and every trial's curves so far
// (`init`), then `summary` when the tune changes and `curves` as trials train. While the tune runs, the trials still
// training are followed live. A serializer restores panels after a reload from the state the page saved ({tuneDir}).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TuneSummary } from '../../protocol/tune';
import {
  isTuneDashboardState,
  isTuneDashboardToHost,
  trialCurves,
  tuneHostMessage,
  type TrialCurves,
  type TuneHostMessages,
} from '../../protocol/tune-dashboard';
import type { RunChange, RunFeeds } from '../runs/feeds';
import type { TuneChange, TuneFeeds } from '../runs/tune-feeds';
import { trainWithWinner } from '../tune-winner';
import { webviewHtml, webviewOptions } from './html';

export const TUNE_DASHBOARD_VIEW = 'loraplus.tune';

export class TuneDashboards implements vscode.Disposable {
  private readonly panels = new Map<string, TuneDashboardPanel>(); // by tune folder
  private readonly owned = new Set<TuneDashboardPanel>();
  private readonly serializer: vscode.Disposable;

  /** `openRun`: shows a run's dashboard (Open winner, a trial's cell). */
  constructor(
    readonly extensionUri: vscode.Uri,
    readonly tunes: TuneFeeds,
    readonly feeds: RunFeeds,
    readonly openRun: (runDir: string) => void,
  ) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(TUNE_DASHBOARD_VIEW, {
      deserializeWebviewPanel: async (panel, state: unknown) => {
        const dir = isTuneDashboardState(state) ? path.resolve(state.tuneDir) : null;
        if (!dir || this.panels.has(dir)) return panel.dispose(); // nothing to show, or already open
        this.adopt(panel, dir);
      },
    });
  }

  /** Shows the tune's dashboard: reveals it if it is open, else opens one. */
  open(tuneDir: string): void {
    const dir = path.resolve(tuneDir);
    const open = this.panels.get(dir);
    if (open) return open.panel.reveal();
    const column = vscode.ViewColumn.Active; // full width, as a run's dashboard: a side column is too narrow
    const title = `LoRA+ tune ${path.basename(dir)}`;
    this.adopt(
      vscode.window.createWebviewPanel(TUNE_DASHBOARD_VIEW, title, column, webviewOptions(this.extensionUri)),
      dir,
    );
  }

  private adopt(panel: vscode.WebviewPanel, tuneDir: string): void {
    const p: TuneDashboardPanel = new TuneDashboardPanel(panel, tuneDir, this, () => {
      this.owned.delete(p);
      if (this.panels.get(tuneDir) === p) this.panels.delete(tuneDir);
    });
    this.owned.add(p);
    this.panels.set(tuneDir, p);
  }

  dispose(): void {
    this.serializer.dispose();
    for (const p of [...this.owned]) p.dispose();
    this.panels.clear();
  }
}

/** One panel: owns its webview, its subscriptions and the live follows of its training trials. */
class TuneDashboardPanel implements vscode.Disposable {
  private readonly subscriptions: vscode.Disposable[] = [];
  private readonly trials = new Map<string, string>(); // resolved run folder → trial id, for the trials sent
  private readonly follows = new Map<string, vscode.Disposable>(); // run folder → its live follow
  private summary: TuneSummary | null = null;
  private ready = false;
  private disposed = false;
  private sent = ''; // the summary last posted, as JSON

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly tuneDir: string,
    private readonly owner: TuneDashboards,
    private readonly onDispose: () => void,
  ) {
    const uri = owner.extensionUri;
    panel.title = `LoRA+ tune ${path.basename(tuneDir)}`;
    panel.iconPath = vscode.Uri.joinPath(uri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(uri);
    panel.webview.html = webviewHtml(panel.webview, uri, {
      title: panel.title,
      scripts: ['tune.js'],
      styles: ['tune.css'],
      state: { tuneDir },
    });
    this.subscriptions.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      // Hidden panels lose their page (retainContextWhenHidden is off); a shown one reloads and says `ready` again.
      panel.onDidChangeViewState(() => (this.ready &&= panel.visible)),
      panel.onDidDispose(() => this.dispose()),
      owner.tunes.follow(tuneDir),
      owner.tunes.onDidChange((c) => c.tuneDir === tuneDir && this.tuneChanged(c)),
      owner.feeds.onDidChange((c) => this.runChanged(c)),
    );
  }

  private receive(m: unknown): void {
    if (!isTuneDashboardToHost(m)) return;
    const winner = this.summary?.winner;
    switch (m.type) {
      case 'ready':
        return this.init();
      case 'trainWinner':
        return void (this.summary && trainWithWinner(this.summary));
      case 'openWinner':
        return winner ? this.owner.openRun(winner.run_dir) : undefined;
      case 'openTrial': {
        const dir = this.summary?.trials.find((t) => t.trial === m.trial)?.run_dir;
        return dir ? this.owner.openRun(dir) : undefined;
      }
      default:
        m satisfies never;
    }
  }

  /** Everything so far: the summary and each trial's curves (later points come as `curves`). */
  private init(): void {
    if (!fs.existsSync(this.tuneDir)) {
      this.ready = false;
      void this.post('missing', {
        tuneDir: this.tuneDir,
        message:
          `The tune folder ${this.tuneDir} no longer exists (deleted or moved). Close this dashboard, or open ` +
          'the tune again from the LoRA+ run explorer.',
      });
      return;
    }
    this.ready = true;
    this.trials.clear();
    const summary = this.owner.tunes.summary(this.tuneDir);
    this.summary = summary;
    this.sent = JSON.stringify(summary);
    void this.post('init', { tuneDir: this.tuneDir, summary, curves: this.newTrials(summary) });
    this.syncFollows(summary);
  }

  private tuneChanged(c: TuneChange): void {
    this.summary = c.summary;
    this.syncFollows(c.summary);
    if (!this.ready || this.disposed) return;
    const json = JSON.stringify(c.summary);
    if (json !== this.sent) {
      this.sent = json;
      void this.post('summary', { summary: c.summary });
    }
    const curves = this.newTrials(c.summary);
    if (curves.length) void this.post('curves', { curves });
  }

  /** A trial's run changed: its new points. */
  private runChanged(c: RunChange): void {
    const trial = this.trials.get(c.runDir);
    if (!trial || !this.ready || this.disposed) return;
    const curves = trialCurves(trial, c.events, c.reset);
    if (curves.reset || curves.steps.length || curves.evalSteps.length) void this.post('curves', { curves: [curves] });
  }

  /** The whole curves of trials whose run folder the page has not had yet. */
  private newTrials(s: TuneSummary): TrialCurves[] {
    const out: TrialCurves[] = [];
    for (const t of s.trials) {
      const dir = t.run_dir && path.resolve(t.run_dir);
      if (!dir || this.trials.has(dir) || !fs.existsSync(dir)) continue;
      this.trials.set(dir, t.trial);
      out.push(trialCurves(t.trial, this.owner.feeds.history(dir), true));
    }
    return out;
  }

  /** While the tune runs, the trials still training are followed live; the rest need no watching. */
  private syncFollows(s: TuneSummary): void {
    const want = new Set<string>();
    if (s.status === 'running' && !this.disposed)
      for (const t of s.trials)
        if (t.run_dir && (t.state === 'training' || t.state === 'continues')) want.add(path.resolve(t.run_dir));
    for (const [dir, d] of this.follows)
      if (!want.has(dir)) {
        d.dispose();
        this.follows.delete(dir);
      }
    for (const dir of want) if (!this.follows.has(dir)) this.follows.set(dir, this.owner.feeds.follow(dir));
  }

  private post<K extends keyof TuneHostMessages>(type: K, payload: TuneHostMessages[K]): Thenable<boolean> {
    return this.disposed ? Promise.resolve(false) : this.panel.webview.postMessage(tuneHostMessage(type, payload));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const d of [...this.subscriptions, ...this.follows.values()]) d.dispose();
    this.follows.clear();
    this.onDispose();
    this.panel.dispose();
  }
}
