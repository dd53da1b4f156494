// The one model of tunes in the extension host, as RunFeeds is of runs: a TuneFeed (src/engine/runs/tune-feed.ts) per
// tune folder and one event when a tune changes, which the run explorer and the tune dashboards subscribe to. A feed
// reads its tune.jsonl when told something changed: this window's tune processes (their tune events arrive after the
// engine appended them to the file), the explorer's file watcher (tunes from a terminal), or fs.watch and a 1 s poll
// while a dashboard follows it. Its trials are runs: RunFeeds follows those. A tune without tune_end is running while
// this window tunes it or its files keep changing; one whose process of this window ended without it is interrupted.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Followers, watchFile } from './folder-watch';
import { TuneFeed } from '../../engine/runs/tune-feed';
import { TUNE_FILE, type TuneEvent, type TuneSummary } from '../../protocol/tune';
import type { RunManager } from './run-manager';

export interface TuneChange {
  tuneDir: string;
  events: TuneEvent[]; // new since the last change
  summary: TuneSummary; // status decided
  statusChanged: boolean;
}

const READ_MS = 100;

export class TuneFeeds implements vscode.Disposable {
  private readonly feeds = new Map<string, TuneFeed>(); // by resolved tune folder
  private readonly statuses = new Map<string, string>();
  private readonly ended = new Set<string>(); // tunes whose process of this window has ended
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly followers = new Followers();
  private liveDirs = new Set<string>();
  private readonly emitter = new vscode.EventEmitter<TuneChange>();
  private readonly subscriptions: vscode.Disposable[];
  private expiry: NodeJS.Timeout | undefined;
  private disposed = false;
  /** A tune changed: new events, or its status (also by time alone: running → interrupted). */
  readonly onDidChange = this.emitter.event;

  constructor(
    readonly runs: RunManager,
    private readonly clock: () => number = Date.now,
  ) {
    this.subscriptions = [
      runs.onTune(({ tuneDir }) => {
        this.liveDirs.add(path.resolve(tuneDir)); // its folder is known only from tune_start on
        this.changed(tuneDir, 0);
      }),
      runs.onDidChange(() => this.liveChanged()),
    ];
  }

  /** The tune's summary with its status decided as of now; reads the folder the first time. */
  summary(tuneDir: string): TuneSummary {
    const dir = path.resolve(tuneDir);
    // A tune whose process here ended is judged by its file alone: no "recently written, so still running".
    return this.entry(dir).summary(this.alive(dir), this.ended.has(dir) ? Infinity : this.clock());
  }

  /** Every tune event read so far. */
  history(tuneDir: string): TuneEvent[] {
    return this.entry(path.resolve(tuneDir)).history();
  }

  /** Something changed in the tune folder: read it soon (`ms` coalesces bursts). */
  changed(tuneDir: string, ms = READ_MS): void {
    const dir = path.resolve(tuneDir);
    if (this.disposed) return;
    if (!this.feeds.has(dir)) return void this.entry(dir, true);
    const pending = this.timers.get(dir);
    if (pending && ms > 0) return;
    clearTimeout(pending);
    this.timers.set(
      dir,
      setTimeout(() => this.read(dir), ms),
    );
  }

  /** Follows the tune live while the returned Disposable is kept: fs.watch on its folder and a 1 s poll. */
  follow(tuneDir: string): vscode.Disposable {
    const dir = path.resolve(tuneDir);
    this.entry(dir);
    return this.followers.follow(dir, () => watchFile(dir, TUNE_FILE, () => this.changed(dir)));
  }

  /** Drops a tune (its folder is gone): its next use reads it afresh. */
  forget(tuneDir: string): void {
    const dir = path.resolve(tuneDir);
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

  private entry(dir: string, announce = false): TuneFeed {
    let feed = this.feeds.get(dir);
    if (!feed) {
      feed = new TuneFeed(dir);
      this.feeds.set(dir, feed);
      const r = feed.read();
      if (announce) this.announce(dir, r.events);
      else this.statuses.set(dir, statusKey(this.summary(dir)));
      this.scheduleExpiry();
    }
    return feed;
  }

  private read(dir: string): void {
    this.timers.delete(dir);
    const feed = this.feeds.get(dir);
    if (!feed || this.disposed) return;
    this.announce(dir, feed.read().events);
  }

  private announce(dir: string, events: TuneEvent[]): void {
    const summary = this.summary(dir);
    const key = statusKey(summary);
    const statusChanged = this.statuses.get(dir) !== key;
    this.statuses.set(dir, key);
    this.scheduleExpiry();
    if (events.length || statusChanged) this.emitter.fire({ tuneDir: dir, events, summary, statusChanged });
  }

  /** Whether this window tunes it; a tune whose process here ended is judged by its file alone (no recency). */
  private alive(dir: string): boolean {
    return this.runs.findTune(dir) !== undefined;
  }

  /** This window's tunes started or ended: read those tunes again (their status changes). */
  private liveChanged(): void {
    const now = new Set(this.runs.runs().flatMap((r) => (r.tuneDir ? [path.resolve(r.tuneDir)] : [])));
    for (const dir of this.liveDirs) if (!now.has(dir)) this.ended.add(dir);
    for (const dir of new Set([...this.liveDirs, ...now]))
      if (this.liveDirs.has(dir) !== now.has(dir)) this.changed(dir, 0);
    this.liveDirs = now;
  }

  /** Announces the first quiet tune without an end turning from running to interrupted. */
  private scheduleExpiry(): void {
    clearTimeout(this.expiry);
    if (this.disposed) return;
    const now = this.clock();
    const times: number[] = [];
    for (const [dir, feed] of this.feeds) {
      if (this.ended.has(dir)) continue;
      const t = feed.expires(this.alive(dir), now);
      if (t !== null) times.push(t);
    }
    if (!times.length) return;
    this.expiry = setTimeout(
      () => {
        for (const dir of this.feeds.keys()) this.announce(dir, []);
      },
      Math.min(...times) - now + 1000,
    );
  }
}

function statusKey(s: TuneSummary): string {
  return `${s.status}\u0000${s.error?.message ?? ''}`;
}
