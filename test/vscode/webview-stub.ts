// Just enough of the `vscode` module to run the dashboard hosts (src/vscode/panels/dashboard.ts, tune-dashboard.ts)
// under node's test runner: webview panels that record what the host posts and let the test play the page, the panel
// serializer, showTextDocument, notifications the test answers, and executeCommand. installWebviewStub() makes
// `require('vscode')` load this file.
import * as path from 'node:path';
import { Disposable, EventEmitter, resolveVscodeTo } from '../helpers/vscode-stub-core';
export { Disposable, EventEmitter };

export interface StubUri {
  scheme: string;
  fsPath: string;
  path: string;
  toString(): string;
}
const file = (p: string): StubUri => ({ scheme: 'file', fsPath: p, path: p, toString: () => `file://${p}` });
export const Uri = { file, joinPath: (base: StubUri, ...parts: string[]) => file(path.join(base.fsPath, ...parts)) };

export enum ViewColumn {
  Active = -1,
  Beside = -2,
  One = 1,
}

/** A panel: `posted` is what the host sent its page; `fromPage` delivers a message as the page would. */
export class FakePanel {
  readonly posted: { type: string; [k: string]: unknown }[] = [];
  readonly received = new EventEmitter<unknown>();
  readonly viewState = new EventEmitter<void>();
  readonly disposed = new EventEmitter<void>();
  visible = true;
  isDisposed = false;
  reveals = 0;
  title: string;
  iconPath: unknown;
  readonly webview = {
    options: {} as unknown,
    html: '',
    cspSource: 'https://webview.test',
    asWebviewUri: (u: StubUri) => ({ toString: () => `https://webview.test${u.fsPath}` }),
    postMessage: (m: { type: string }) => {
      if (this.isDisposed) throw new Error('posted to a disposed panel');
      this.posted.push(m);
      return Promise.resolve(true);
    },
    onDidReceiveMessage: this.received.event,
  };
  readonly onDidChangeViewState = this.viewState.event;
  readonly onDidDispose = this.disposed.event;

  constructor(
    readonly viewType: string,
    title: string,
  ) {
    this.title = title;
  }
  reveal(): void {
    this.reveals++;
  }
  dispose(): void {
    if (this.isDisposed) return;
    this.isDisposed = true;
    this.disposed.fire();
  }
  fromPage(m: unknown): void {
    this.received.fire(m);
  }
  /** Messages of one type, in order. */
  of(type: string) {
    return this.posted.filter((m) => m.type === type);
  }
}

interface Serializer {
  deserializeWebviewPanel(panel: FakePanel, state: unknown): Promise<void>;
}

export const stub = {
  panels: [] as FakePanel[],
  serializers: new Map<string, Serializer>(),
  opened: [] as string[], // showTextDocument paths
  messages: [] as { kind: 'info' | 'warning' | 'error'; text: string; items: string[] }[], // notifications shown
  answers: [] as (string | undefined)[], // what the user picks in the next notifications (undefined: dismissed)
  commands: [] as { id: string; args: unknown[] }[], // executeCommand calls
};

/** A notification: recorded, answered with the next of stub.answers. Options ({modal}) are skipped. */
function notify(kind: 'info' | 'warning' | 'error') {
  return async (text: string, ...rest: unknown[]) => {
    stub.messages.push({ kind, text, items: rest.filter((x): x is string => typeof x === 'string') });
    return stub.answers.shift();
  };
}

export const commands = {
  async executeCommand(id: string, ...args: unknown[]) {
    stub.commands.push({ id, args });
  },
};

export const window = {
  activeTextEditor: undefined,
  createWebviewPanel(viewType: string, title: string) {
    const p = new FakePanel(viewType, title);
    stub.panels.push(p);
    return p;
  },
  registerWebviewPanelSerializer(viewType: string, s: Serializer) {
    stub.serializers.set(viewType, s);
    return new Disposable(() => stub.serializers.delete(viewType));
  },
  async showTextDocument(u: StubUri) {
    stub.opened.push(u.fsPath);
  },
  showInformationMessage: notify('info'),
  showWarningMessage: notify('warning'),
  showErrorMessage: notify('error'),
};

/** Makes `require('vscode')` (and so `import * as vscode from 'vscode'`) load this file. */
export function installWebviewStub(): void {
  resolveVscodeTo(__filename);
}
