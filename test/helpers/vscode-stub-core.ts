// What every `vscode` stub under test/vscode shares: Disposable, EventEmitter, and the hook that makes
// `require('vscode')` (and so `import * as vscode from 'vscode'`) load a given stub file. Each test file runs in its
// own process, so each installs the one stub it needs.
import Module from 'node:module';

type Listener<T> = (e: T) => unknown;

export class Disposable {
  constructor(private readonly fn: () => void = () => {}) {}
  dispose(): void {
    this.fn();
  }
}

export class EventEmitter<T> {
  private listeners = new Set<Listener<T>>();
  readonly event = (l: Listener<T>) => {
    this.listeners.add(l);
    return new Disposable(() => this.listeners.delete(l));
  };
  fire(e: T): void {
    for (const l of [...this.listeners]) l(e);
  }
  get size(): number {
    return this.listeners.size;
  }
  dispose(): void {
    this.listeners.clear();
  }
}

/** Resolves the module name 'vscode' to `stubFile` from now on. */
export function resolveVscodeTo(stubFile: string): void {
  const m = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = m._resolveFilename;
  m._resolveFilename = function (request: string, ...rest: unknown[]) {
    return request === 'vscode' ? stubFile : original.call(this, request, ...rest);
  };
}
