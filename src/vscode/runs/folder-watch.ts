// Following one file of a folder live, for RunFeeds (metrics.jsonl) and TuneFeeds (tune.jsonl): fs.watch on the
// folder, and a 1 s poll of the file's size that catches what the watcher misses (some file systems drop events,
// and a folder that does not exist yet cannot be watched); shared by reference count while views follow it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

const POLL_MS = 1000;

/** Calls `onChange` when `dir/file` may have changed, until the returned function is called. */
export function watchFile(dir: string, file: string, onChange: () => void): () => void {
  let watcher: fs.FSWatcher | null = null;
  try {
    watcher = fs.watch(dir, (_kind, name) => (!name || name.toString() === file) && onChange());
    watcher.on('error', () => watcher?.close());
  } catch {
    watcher = null; // no folder (yet): the poll notices it appearing
  }
  const size = () => {
    try {
      return fs.statSync(path.join(dir, file)).size;
    } catch {
      return -1;
    }
  };
  let last = size();
  const poll = setInterval(() => {
    const now = size();
    if (now === last) return;
    last = now;
    onChange();
  }, POLL_MS);
  return () => {
    watcher?.close();
    clearInterval(poll);
  };
}

/** One watch per folder however many views follow it; it stops when the last lets go. */
export class Followers {
  private readonly byDir = new Map<string, { count: number; stop: () => void }>();

  follow(dir: string, start: () => () => void): vscode.Disposable {
    const f = this.byDir.get(dir) ?? { count: 0, stop: start() };
    f.count++;
    this.byDir.set(dir, f);
    return new vscode.Disposable(() => {
      if (--f.count > 0) return;
      f.stop();
      this.byDir.delete(dir);
    });
  }

  dispose(): void {
    for (const f of this.byDir.values()) f.stop();
    this.byDir.clear();
  }
}
