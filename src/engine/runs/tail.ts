// What the dashboard host reads from a run folder, free of `vscode` so plain Node tests it. MetricsTail follows a
// run's metrics.jsonl as it grows: each read returns the complete lines appended since the last one. The engine
// appends one JSON line per event (src/engine/runs/writer.ts), so a line is whole once its newline is there; a partly
// written last line waits for the next read. A resumed run rewrites the file (atomic replace, shorter): that shows
// as a new inode or a smaller size, and the read starts over with `reset`. toDashboardSummary turns the engine's
// RunSummary into the header's DashboardSummary.
import * as fs from 'node:fs';
import type { RunSummary } from '../../engine/runs/summary';
import type { DashboardStatus, DashboardSummary } from '../../protocol/dashboard';
import type { EngineEvent } from '../../protocol/events';

const CHUNK = 8 * 1024 * 1024; // read big files in pieces: a 100,000-step run's file can be hundreds of MB

export interface TailRead {
  events: EngineEvent[];
  reset: boolean; // the file was replaced or truncated: `events` is the whole file again
}

export class MetricsTail {
  private offset = 0;
  private ino = -1;

  constructor(
    readonly file: string,
    private readonly chunkBytes = CHUNK,
  ) {}

  /** Reads from the start again (a webview that reloaded wants everything). */
  readAll(): EngineEvent[] {
    [this.offset, this.ino] = [0, -1];
    return this.read().events;
  }

  read(): TailRead {
    let st: fs.Stats;
    try {
      st = fs.statSync(this.file);
    } catch {
      // Not there (yet, or any more): nothing to read; start over when it appears.
      const reset = this.offset > 0;
      [this.offset, this.ino] = [0, -1];
      return { events: [], reset };
    }
    let reset = false;
    if ((this.ino !== -1 && st.ino !== this.ino) || st.size < this.offset) [reset, this.offset] = [true, 0];
    this.ino = st.ino;
    if (st.size === this.offset) return { events: [], reset };
    const events: EngineEvent[] = [];
    const fd = fs.openSync(this.file, 'r');
    try {
      let carry = Buffer.alloc(0); // bytes of a line that continues into the next chunk
      while (this.offset + carry.length < st.size) {
        const start = this.offset + carry.length;
        const buf = Buffer.alloc(Math.min(this.chunkBytes, st.size - start));
        const n = fs.readSync(fd, buf, 0, buf.length, start);
        if (n <= 0) break;
        const bytes = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
        const end = bytes.lastIndexOf(0x0a); // only whole lines; UTF-8 never splits inside a newline byte
        if (end < 0) {
          carry = bytes;
          continue;
        }
        parseLines(bytes.toString('utf8', 0, end), events);
        this.offset += end + 1;
        carry = bytes.subarray(end + 1);
      }
    } finally {
      fs.closeSync(fd);
    }
    return { events, reset };
  }
}

function parseLines(text: string, out: EngineEvent[]): void {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as EngineEvent);
    } catch {
      // A line torn by a crash (then appended after on resume): skip it, as readMetrics does for a torn last line.
    }
  }
}

/** The engine's RunSummary, reduced to what the page's header shows (the protocol cannot import the engine). */
export function toDashboardSummary(
  s: RunSummary,
  live: { status: DashboardStatus; error: string | null },
): DashboardSummary {
  const c = s.config ?? {};
  const section = (k: string) => (isObject(c[k]) ? (c[k] as Record<string, unknown>) : {});
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const [lora, training] = [section('lora'), section('training')];
  // An end event in the file decides; without one, what the host knows of the process (live, quiet, crashed).
  const status = s.status === 'running' || s.status === 'interrupted' ? live.status : s.status;
  return {
    name: s.name,
    runDir: s.dir,
    status,
    step: s.step,
    totalSteps: s.totalSteps,
    lastLoss: s.lastLoss,
    checkpoints: s.checkpoints.length,
    finalAdapter: s.finalAdapter,
    error: s.error ?? live.error,
    config: s.config
      ? {
          model: str(c.model),
          task: str(c.task),
          r: num(lora.r),
          lora_alpha: num(lora.lora_alpha),
          learning_rate: num(training.learning_rate),
          loraplus_lr_ratio: num(training.loraplus_lr_ratio),
          device: str(c.device),
        }
      : null,
  };
}

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}
