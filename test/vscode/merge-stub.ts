// The slice of the `vscode` module that src/vscode/merge.ts uses, scripted: each dialog answers from a queue the
// test fills, and every message shown is recorded. installMergeStub() makes `require('vscode')` load this file.
import { resolveVscodeTo } from '../helpers/vscode-stub-core';

export interface Shown {
  kind: 'info' | 'warning' | 'error';
  text: string;
  actions: string[];
}

export const script = {
  trusted: true,
  quickPick: [] as ((items: { label: string; dir?: string; browse?: boolean }[]) => unknown)[],
  openDialog: [] as (string | undefined)[],
  inputBox: [] as ((value: string | undefined, validate: (v: string) => string | undefined) => string | undefined)[],
  answer: [] as (string | undefined)[], // the action picked on the next message
  shown: [] as Shown[],
  commands: [] as unknown[][],
  progress: [] as string[],
};

export const Uri = { file: (p: string) => ({ scheme: 'file', fsPath: p }) };
export const ProgressLocation = { Notification: 15 };

const message =
  (kind: Shown['kind']) =>
  async (text: string, ...actions: unknown[]) => {
    script.shown.push({ kind, text, actions: actions.filter((a): a is string => typeof a === 'string') });
    return script.answer.shift();
  };

export const window = {
  showInformationMessage: message('info'),
  showWarningMessage: message('warning'),
  showErrorMessage: message('error'),
  async showQuickPick(items: { label: string }[]) {
    return script.quickPick.shift()?.(items);
  },
  async showOpenDialog() {
    const p = script.openDialog.shift();
    return p ? [Uri.file(p)] : undefined;
  },
  async showInputBox(o: { value?: string; validateInput: (v: string) => string | undefined }) {
    return script.inputBox.shift()?.(o.value, o.validateInput);
  },
  async withProgress<T>(
    _o: unknown,
    task: (p: { report(m: { message?: string }): void }, token: unknown) => Promise<T>,
  ): Promise<T> {
    const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) };
    return task({ report: (m) => void (m.message && script.progress.push(m.message)) }, token);
  },
};

export const workspace = {
  get isTrusted() {
    return script.trusted;
  },
  workspaceFolders: undefined,
  asRelativePath: (p: string) => p, // no workspace folder: VS Code gives the path as it is
};

export const commands = {
  async executeCommand(...args: unknown[]) {
    script.commands.push(args);
  },
};

export function installMergeStub(): void {
  resolveVscodeTo(__filename);
}
