// Problems of open training configs as diagnostics (source "LoRA+", code = the problem's code), checked on open and
// save at once and 300 ms after typing stops.
//
// The checks against the model folder and the data files (engine/checks/config.ts) read files, but through
// inspect.ts's cache keyed by size and mtime, so re-reading a model or data file already read costs a few stat calls
// (5 ms for the README's config, against 300 ms for the first read of SST-2's train.tsv). So while typing, the full
// checks run whenever the config still names the files of the last full check, and only the schema checks (paths
// must exist, but nothing is read) when a model or data path has just been typed: a large data file is then first
// read on save, never halfway through typing its name.
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { parseConfigText } from '../../config/load';
import type { LocatedProblem } from '../../config/load';
import type { Severity } from '../../config/problem';
import { checkConfigText } from '../../engine/checks/config';
import { configFiles, diagnosticMessage, isConfigDocument, isConfigFileName, relatedFiles } from './ranges';

export const DIAGNOSTIC_SOURCE = 'LoRA+';
const DEBOUNCE_MS = 300;

const SEVERITY: Record<Severity, vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
  hint: vscode.DiagnosticSeverity.Hint,
};

/** Documents a user edits: not git's old versions, output channels and the like. */
const SCHEMES = new Set(['file', 'untitled']);

export function isCheckedDocument(doc: vscode.TextDocument): boolean {
  return SCHEMES.has(doc.uri.scheme) && isConfigDocument(doc);
}

/** Relative paths resolve against the config's folder (an unsaved one: the first workspace folder). */
export function configDirOf(doc: vscode.TextDocument): string {
  if (doc.uri.scheme === 'file') return path.dirname(doc.uri.fsPath);
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? os.homedir();
}

interface Checked {
  version: number;
  text: string;
  problems: LocatedProblem[];
}

export class ConfigDiagnostics implements vscode.Disposable {
  private readonly collection = vscode.languages.createDiagnosticCollection('loraplus');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly checked = new Map<string, Checked>();
  private readonly fullyCheckedFiles = new Map<string, string>(); // uri → the files the last full check read
  private readonly subscriptions: vscode.Disposable[];

  constructor() {
    this.subscriptions = [
      this.collection,
      vscode.workspace.onDidOpenTextDocument((doc) => this.check(doc, true)),
      vscode.workspace.onDidChangeTextDocument((e) => {
        const doc = e.document;
        if (
          e.contentChanges.length &&
          SCHEMES.has(doc.uri.scheme) &&
          (doc.languageId === 'yaml' || isConfigFileName(doc.fileName))
        )
          this.schedule(doc);
      }),
      vscode.workspace.onDidSaveTextDocument((doc) => {
        if (isCheckedDocument(doc)) this.check(doc, true);
        // A saved data file or model config.json may change what an open config's checks find.
        else
          for (const d of vscode.workspace.textDocuments) if (this.checked.has(d.uri.toString())) this.check(d, true);
      }),
      vscode.workspace.onDidCloseTextDocument((doc) => this.forget(doc.uri)),
    ];
    for (const doc of vscode.workspace.textDocuments) this.check(doc, true);
  }

  /** The problems of the document as it is now (checked again when it changed since the last check). */
  current(doc: vscode.TextDocument): Checked {
    const hit = this.checked.get(doc.uri.toString());
    return hit?.version === doc.version ? hit : this.check(doc, false);
  }

  private schedule(doc: vscode.TextDocument): void {
    const key = doc.uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        if (!doc.isClosed) this.check(doc, false);
      }, DEBOUNCE_MS),
    );
  }

  private check(doc: vscode.TextDocument, full: boolean): Checked {
    const key = doc.uri.toString();
    const text = doc.getText();
    if (!isCheckedDocument(doc)) {
      // Not a config (any more: its `loraplus: 1` marker may have just been deleted).
      if (this.checked.has(key)) this.forget(doc.uri);
      return { version: doc.version, text, problems: [] };
    }
    const dir = configDirOf(doc);
    const files = configFiles(text, dir);
    const filesKey = JSON.stringify(files);
    const withFiles = full || this.fullyCheckedFiles.get(key) === filesKey;
    let problems: LocatedProblem[];
    try {
      problems = (withFiles ? checkConfigText(text, dir) : parseConfigText(text, dir)).problems;
      if (withFiles) this.fullyCheckedFiles.set(key, filesKey);
    } catch (err) {
      // A bug in a check must not leave the user without the others: say so where they look.
      const message = err instanceof Error ? err.message : String(err);
      problems = [
        {
          severity: 'warning',
          code: 'config/check-failed',
          message: `LoRA+ could not finish checking this config: ${message}`,
          path: [],
          yamlPath: '',
          at: 'value',
          line: 1,
          col: 1,
          endLine: 1,
          endCol: 1,
          offset: 0,
          endOffset: 0,
        },
      ];
    }
    const checked = { version: doc.version, text, problems };
    this.checked.set(key, checked);
    this.collection.set(
      doc.uri,
      problems.map((p) => toDiagnostic(doc, p, files)),
    );
    return checked;
  }

  private forget(uri: vscode.Uri): void {
    const key = uri.toString();
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
    this.checked.delete(key);
    this.fullyCheckedFiles.delete(key);
    this.collection.delete(uri);
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    for (const s of this.subscriptions) s.dispose();
  }
}

function toDiagnostic(
  doc: vscode.TextDocument,
  p: LocatedProblem,
  files: ReturnType<typeof configFiles>,
): vscode.Diagnostic {
  const range = rangeOf(doc, p);
  const d = new vscode.Diagnostic(range, diagnosticMessage(p), SEVERITY[p.severity]);
  d.source = DIAGNOSTIC_SOURCE;
  d.code = p.code;
  const related = relatedFiles(p, files);
  if (related.length) {
    d.relatedInformation = related.map(
      (r) =>
        new vscode.DiagnosticRelatedInformation(
          new vscode.Location(vscode.Uri.file(r.file), new vscode.Position(r.line, 0)),
          r.message,
        ),
    );
  }
  // A key that does nothing (ignored for this task, or overridden): faded, as unused code is.
  if (p.severity !== 'error' && p.fix?.kind === 'removeKey') d.tags = [vscode.DiagnosticTag.Unnecessary];
  return d;
}

export function rangeOf(doc: vscode.TextDocument, p: LocatedProblem): vscode.Range {
  return new vscode.Range(doc.positionAt(p.offset), doc.positionAt(p.endOffset));
}
