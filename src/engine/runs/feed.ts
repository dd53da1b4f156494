// One run folder followed as it grows: the events appended to its metrics.jsonl (each line read once) and its
// summary, kept current by folding each new event in. Everything in the extension host that shows a run (the
// explorer, the dashboards, the status bar and the progress) reads it through one RunFeed, so they agree on its
// status, step, checkpoints and elapsed time.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { EngineEvent } from '../../protocol/events';
import { readConfig, RunRecord, type RunSummary } from './summary';
import { MetricsTail, type TailRead } from './tail';
import { CONFIG_FILE, METRICS_FILE } from './writer';

export class RunFeed {
  private readonly tail: MetricsTail;
  private record = new RunRecord();
  private config: { mtime: number; value: Record<string, unknown> | null } = { mtime: -1, value: null };

  constructor(readonly dir: string) {
    this.tail = new MetricsTail(path.join(dir, METRICS_FILE));
  }

  /** Reads what was appended since the last read and folds it in. `reset`: the file was rewritten (a resume). */
  read(): TailRead {
    const r = this.tail.read();
    if (r.reset) this.record = new RunRecord();
    this.record.add(r.events);
    return r;
  }

  /** Every event read so far: what a view that opens now needs before the next read's events. */
  history(): EngineEvent[] {
    return this.tail.history();
  }

  /** The run as of the last read. `alive`: whether a process of this window trains it (see decideStatus). */
  summary(alive?: boolean): RunSummary {
    return this.record.summarize(this.dir, alive, this.runConfig());
  }

  /** config.yaml, read again only when it changed (a resume rewrites it). */
  private runConfig(): Record<string, unknown> | null {
    let mtime = 0;
    try {
      mtime = fs.statSync(path.join(this.dir, CONFIG_FILE)).mtimeMs;
    } catch {
      mtime = 0; // none (yet)
    }
    if (mtime !== this.config.mtime) this.config = { mtime, value: mtime ? readConfig(this.dir) : null };
    return this.config.value;
  }
}
