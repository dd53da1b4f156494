// One tune folder followed as it grows: the events appended to its tune.jsonl (each line read once, folded into a
// TuneRecord) and its summary. The extension host's tune explorer and tune dashboard read a tune through one
// TuneFeed each (src/vscode/runs/tune-feeds.ts), as RunFeed does for a run's metrics.jsonl.
import * as path from 'node:path';
import { isTuneEvent, TUNE_FILE, TuneRecord, type TuneEvent, type TuneSummary } from '../../protocol/tune';
import { MetricsTail } from './tail';
import { RECENT_MS } from './summary';
import { lastWrite } from './tune-folder';

export class TuneFeed {
  private readonly tail: MetricsTail<unknown>;
  private record = new TuneRecord();
  private events: TuneEvent[] = [];

  constructor(readonly dir: string) {
    this.tail = new MetricsTail<unknown>(path.join(dir, TUNE_FILE));
  }

  /** Reads what was appended since the last read and folds it in; returns the new tune events. */
  read(): { events: TuneEvent[]; reset: boolean } {
    const r = this.tail.read();
    if (r.reset) [this.record, this.events] = [new TuneRecord(), []];
    const events = r.events.filter(isTuneEvent);
    this.record.add(events);
    this.events.push(...events);
    return { events, reset: r.reset };
  }

  /** Every tune event read so far. */
  history(): TuneEvent[] {
    return [...this.events];
  }

  /**
   * The tune as of the last read. Without a tune_end it is running while `alive` (a process of this window tunes
   * it) or while its files changed in the last RECENT_MS, else interrupted.
   */
  summary(alive: boolean, now = Date.now()): TuneSummary {
    return this.record.summarize(alive || now - lastWrite(this.dir) < RECENT_MS);
  }

  /** When a quiet tune without an end turns from running to interrupted (ms), or null when it never will by time. */
  expires(alive: boolean, now = Date.now()): number | null {
    if (alive || this.record.summarize(false).status !== 'interrupted') return null;
    const at = lastWrite(this.dir) + RECENT_MS;
    return at > now ? at : null;
  }
}
