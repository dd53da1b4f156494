// The one model of runs in the extension host: a RunFeed (src/engine/runs/feed.ts) per run folder, and one event
// when a run changes, which the run explorer, the dashboards, the status bar and the progress all subscribe to. A
// feed reads its metrics.jsonl when told something changed: this window's engine processes (their events arrive
// after the engine appended them to the file), file watchers (runs from a terminal), or a 1 s poll while a view
// follows it live (some file systems drop watch events). Its status is decided here once: the file's end event,
// else running while this window trains it or the file keeps changing, else interrupted; a process of this window
// that died without an end event makes its run failed, with the reason.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Followers, watchFile } from './folder-watch';
import { RunFeed } from '../../engine/runs/feed';
import { statusExpires, withStatus, type RunSummary } from '../../engine/runs/summary';
import { METRICS_FILE } from '../../engine/runs/writer';
import type { EngineEvent } from '../../protocol/events';
import type { LiveRun, RunManager } from './run-manager';

export interface RunChange {
  runDir: string;
  events: EngineEvent[]; // new since the last change
  reset: boolean; // the file was rewritten (a resume): `events` is all of it
  summary: RunSummary; // status decided
  statusChanged: boolean;
}

const READ_MS = 100; // reads of one run are coalesced: at most ~10 a second

export class RunFeeds implements vscode.Disposable {
  private readonly feeds = new Map<string, { feed: RunFeed; read: RunSummary }>(); // by resolved run folder
  private readonly statuses = new Map<string, string>(); // the status (and error) last announced per run
  private readonly crashed = new Map<string, string>(); // runs whose process of this window died without an end
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly followers = new Followers();
  private readonly known = new Set<LiveRun>();
  private liveDirs = new Set<string>(); // run folders this window trained at the last change
  private readonly emitter = new vscode.EventEmitter<RunChange>();
  private readonly subscriptions: vscode.Disposable[];
  private expiry: NodeJS.Timeout | undefined;
  private disposed = false;
  /** A run changed: new events, a rewrite, or its status (also by time alone: running → interrupted). */
  readonly onDidChange = this.emitter.event;

  /** `clock`: what "now" is when deciding whether a quiet run still runs (tests pass their own). */
  constructor(
    readonly runs: RunManager,
    private readonly clock: () => number = Date.now,
  ) {
    this.subscriptions = [
      runs.onEvent(({ runDir, event: e }) =>
        this.changed(runDir, e.type === 'step' || e.type === 'eval_progress' ? READ_MS : 0),
      ),
      runs.onDidChange(() => this.liveChanged()),
    ];
  }

  /** The run's summary with its status decided as of now; reads the folder the first time. */
  summary(runDir: string): RunSummary {
    const dir = path.resolve(runDir);
    return this.decide(dir, this.entry(dir).read);
  }

  /** Every event read so far (for a view that opens now; later ones come with onDidChange). */
  history(runDir: string): EngineEvent[] {
    return this.entry(path.resolve(runDir)).feed.history();
  }

  /** Something changed in the run folder: read it soon (`ms` coalesces bursts). */
  changed(runDir: string, ms = READ_MS): void {
    const dir = path.resolve(runDir);
    if (this.disposed) return;
    if (!this.feeds.has(dir)) return void this.entry(dir, true); // the first read is the news
    const pending = this.timers.get(dir);
    if (pending && ms > 0) return;
    clearTimeout(pending);
    this.timers.set(
      dir,
      setTimeout(() => this.read(dir), ms),
    );
  }

  /** Follows the run live while the returned Disposable is kept: fs.watch on its folder and a 1 s poll. */
  follow(runDir: string): vscode.Disposable {
    const dir = path.resolve(runDir);
    this.entry(dir);
    return this.followers.follow(dir, () => watchFile(dir, METRICS_FILE, () => this.changed(dir)));
  }

  /** Drops a run (its folder is gone, or it is not a run): its next use reads it afresh. */
  forget(runDir: string): void {
    const dir = path.resolve(runDir);
    this.feeds.delete(dir);
    this.statuses.delete(dir);
    clearTimeout(this.timers.get(dir));
    this.timers.delete(dir);
  }

  dispose(): void {
    this.disposed = true;
    for (const t of this.timers.values()) clearTimeout(t);
    clearTimeout(this.expiry);
    this.followers.dispose();
    for (const d of this.subscriptions) d.dispose();
    this.emitter.dispose();
  }

  // ---- reading ----------------------------------------------------------------------------------------------------

  private entry(dir: string, announce = false): { feed: RunFeed; read: RunSummary } {
    let e = this.feeds.get(dir);
    if (!e) {
      const feed = new RunFeed(dir);
      const r = feed.read();
      e = { feed, read: feed.summary() };
      this.feeds.set(dir, e);
      if (announce) this.announce(dir, r);
      else this.statuses.set(dir, statusKey(this.decide(dir, e.read)));
      this.scheduleExpiry();
    }
    return e;
  }

  private read(dir: string): void {
    this.timers.delete(dir);
    const e = this.feeds.get(dir);
    if (!e || this.disposed) return;
    const r = e.feed.read();
    e.read = e.feed.summary();
    this.announce(dir, r);
  }

  /** The status: the end event, a crash of this window's process, else running or interrupted (alive, quiet). */
  private decide(dir: string, s: RunSummary): RunSummary {
    const crash = this.crashed.get(dir);
    const ended = s.status !== 'running' && s.status !== 'interrupted';
    if (crash && !ended && !this.alive(dir)) return { ...s, status: 'failed', error: s.error ?? crash };
    return withStatus(s, this.alive(dir), this.clock());
  }

  private announce(dir: string, r: { events: EngineEvent[]; reset: boolean }, reschedule = true): void {
    const summary = this.summary(dir);
    const key = statusKey(summary);
    const statusChanged = this.statuses.get(dir) !== key;
    this.statuses.set(dir, key);
    if (reschedule) this.scheduleExpiry();
    if (r.events.length || r.reset || statusChanged) {
      this.emitter.fire({ runDir: dir, events: r.events, reset: r.reset, summary, statusChanged });
    }
  }

  /** Whether this window trains the run; a run seen alive is watched for a crash (an end without `end`). */
  private alive(dir: string): boolean {
    const run = this.runs.find(dir);
    if (run) this.track(run);
    return run !== undefined;
  }

  private track(run: LiveRun): void {
    if (this.known.has(run)) return;
    this.known.add(run);
    if (run.runDir) this.crashed.delete(path.resolve(run.runDir)); // a resumed run starts clean
    void run.ended.then((result) => {
      this.known.delete(run);
      const dir = result.runDir ?? run.runDir;
      if (!dir || this.disposed) return;
      if (result.error) this.crashed.set(path.resolve(dir), result.error.message);
      this.changed(dir, 0);
    });
  }

  /** This window's runs started or ended: read those runs again (their status changes). */
  private liveChanged(): void {
    const now = new Set<string>();
    for (const run of this.runs.runs()) {
      this.track(run);
      if (run.runDir) now.add(path.resolve(run.runDir));
    }
    for (const dir of new Set([...this.liveDirs, ...now]))
      if (this.liveDirs.has(dir) !== now.has(dir)) this.changed(dir, 0);
    this.liveDirs = now;
  }

  /** Announces the first quiet run without an end turning from running to interrupted. */
  private scheduleExpiry(): void {
    clearTimeout(this.expiry);
    if (this.disposed) return;
    const now = this.clock();
    const times: number[] = [];
    for (const [dir, e] of this.feeds) {
      const t = statusExpires(e.read, this.alive(dir), now);
      if (t !== null) times.push(t);
    }
    if (!times.length) return;
    const wait = Math.min(...times) - now + 1000;
    this.expiry = setTimeout(() => {
      for (const dir of this.feeds.keys()) this.announce(dir, { events: [], reset: false }, false);
      this.scheduleExpiry();
    }, wait);
  }
}

function statusKey(s: RunSummary): string {
  return `${s.status}\u0000${s.error ?? ''}`;
}
