// Just enough of the `vscode` module to run the run explorer's provider (src/vscode/runs/run-tree.ts) under node's test
// runner: events, a workspace over one real folder (findFiles walks it), file watchers the test fires by hand, and
// the TreeItem value classes. installVscodeStub() makes `require('vscode')` load this file.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Disposable, EventEmitter, resolveVscodeTo } from '../helpers/vscode-stub-core';
export { Disposable, EventEmitter };

export const Uri = { file: (p: string) => ({ scheme: 'file', fsPath: p, toString: () => `file://${p}` }) };
export type Uri = ReturnType<typeof Uri.file>;

export enum TreeItemCollapsibleState {
  None = 0,
  Collapsed = 1,
  Expanded = 2,
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: MarkdownString;
  iconPath?: ThemeIcon;
  contextValue?: string;
  collapsibleState?: TreeItemCollapsibleState;
  command?: { command: string; title: string; arguments?: unknown[] };
  resourceUri?: Uri;
  constructor(readonly label: string) {}
}

export class MarkdownString {
  constructor(readonly value = '') {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class ThemeIcon {
  constructor(
    readonly id: string,
    readonly color?: ThemeColor,
  ) {}
}

// ---- The workspace: one folder on disk ----------------------------------------------------------------------------

export const stub = {
  root: '',
  findCalls: 0,
  settings: new Map<string, unknown>(),
  watchers: [] as {
    glob: string;
    create: EventEmitter<Uri>;
    change: EventEmitter<Uri>;
    delete: EventEmitter<Uri>;
    disposed: boolean;
  }[],
  folders: new EventEmitter<void>(),
  configuration: new EventEmitter<{ affectsConfiguration(section: string): boolean }>(),
};

function walk(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

export const workspace = {
  /** Only what the tree asks: every `<name>` file, minus an exclude of the form `** /folder/ **`. */
  async findFiles(glob: string, exclude?: string, max = Infinity): Promise<Uri[]> {
    const name = /^\*\*\/([\w.]+)$/.exec(glob)?.[1];
    if (!name) throw new Error(`stub findFiles: unsupported glob ${glob}`);
    stub.findCalls++;
    const skip = exclude ? /^\*\*\/([\w.-]+)\/\*\*$/.exec(exclude)?.[1] : undefined;
    return walk(stub.root)
      .filter((f) => path.basename(f) === name && !(skip && f.split(path.sep).includes(skip)))
      .slice(0, max)
      .map(Uri.file);
  },
  createFileSystemWatcher(glob: string, _ignoreCreate = false, _ignoreChange = false, _ignoreDelete = false) {
    const w = {
      glob,
      create: new EventEmitter<Uri>(),
      change: new EventEmitter<Uri>(),
      delete: new EventEmitter<Uri>(),
      disposed: false,
    };
    stub.watchers.push(w);
    return {
      onDidCreate: w.create.event,
      onDidChange: w.change.event,
      onDidDelete: w.delete.event,
      dispose: () => (w.disposed = true),
    };
  },
  getConfiguration(section: string) {
    return {
      get: <T>(key: string, fallback?: T) =>
        stub.settings.has(`${section}.${key}`) ? (stub.settings.get(`${section}.${key}`) as T) : fallback,
    };
  },
  get workspaceFolders() {
    return [{ uri: Uri.file(stub.root), name: path.basename(stub.root), index: 0 }];
  },
  asRelativePath(p: string): string {
    return path.relative(stub.root, p) || p; // as VS Code: a workspace folder itself stays absolute
  },
  onDidChangeWorkspaceFolders: stub.folders.event,
  onDidChangeConfiguration: stub.configuration.event,
};

/** Makes `require('vscode')` (and so `import * as vscode from 'vscode'`) load this file. */
export function installVscodeStub(): void {
  resolveVscodeTo(__filename);
}
