// Following a run's metrics.jsonl as it grows (the run feed reads it through this; the tune feed reads tune.jsonl the
// same way, with E its TuneEvent): each read returns the complete lines appended since the last one. The engine
// appends one JSON line per event (src/engine/runs/writer.ts), so a line is whole once its newline is there; a partly
// written last line waits for the next read. A resumed run rewrites the file (atomic replace, shorter): that shows
// as a new inode or a smaller size, and the read starts over with `reset`.
import * as fs from 'node:fs';
import type { EngineEvent } from '../../protocol/events';

const CHUNK = 8 * 1024 * 1024; // read big files in pieces: a 100,000-step run's file can be hundreds of MB

export interface TailRead<E = EngineEvent> {
  events: E[];
  reset: boolean; // the file was replaced or truncated: `events` is the whole file again
}

export class MetricsTail<E = EngineEvent> {
  private offset = 0;
  private ino = -1;

  constructor(
    readonly file: string,
    private readonly chunkBytes = CHUNK,
  ) {}

  /** Reads from the start again (a webview that reloaded wants everything). */
  readAll(): E[] {
    [this.offset, this.ino] = [0, -1];
    return this.read().events;
  }

  read(): TailRead<E> {
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
    const events: E[] = [];
    this.offset = this.parse(this.offset, st.size, events);
    return { events, reset };
  }

  /** The events before the read position: what a reader that starts now has not had from this tail's reads. */
  history(): E[] {
    const events: E[] = [];
    if (this.offset > 0) this.parse(0, this.offset, events);
    return events;
  }

  /** Parses the whole lines in [from, to) into `out`; returns the offset after the last whole line. */
  private parse(from: number, to: number, out: E[]): number {
    let offset = from;
    const fd = fs.openSync(this.file, 'r');
    try {
      let carry = Buffer.alloc(0); // bytes of a line that continues into the next chunk
      while (offset + carry.length < to) {
        const start = offset + carry.length;
        const buf = Buffer.alloc(Math.min(this.chunkBytes, to - start));
        const n = fs.readSync(fd, buf, 0, buf.length, start);
        if (n <= 0) break;
        const bytes = carry.length ? Buffer.concat([carry, buf.subarray(0, n)]) : buf.subarray(0, n);
        const end = bytes.lastIndexOf(0x0a); // only whole lines; UTF-8 never splits inside a newline byte
        if (end < 0) {
          carry = bytes;
          continue;
        }
        parseLines(bytes.toString('utf8', 0, end), out);
        offset += end + 1;
        carry = bytes.subarray(end + 1);
      }
    } finally {
      fs.closeSync(fd);
    }
    return offset;
  }
}

function parseLines<E>(text: string, out: E[]): void {
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      out.push(JSON.parse(line) as E);
    } catch {
      // A line torn by a crash (then appended after on resume): skip it, as readMetrics does for a torn last line.
    }
  }
}
