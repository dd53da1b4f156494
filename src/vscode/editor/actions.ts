// Quick fixes (Ctrl+. and the lightbulb) for the diagnostics of ConfigDiagnostics: each problem's own fix from
// src/config (rename a typo, set λ to 16, add a missing key, ...) as a WorkspaceEdit, the other allowed values of an
// enum, and one action that adds every missing required key at once.
import * as vscode from 'vscode';
import type { TextEdit } from '../../config/fixes';
import type { LocatedProblem } from '../../config/load';
import { addMissingKeysEdit, diagnosticMessage, fixActions } from './ranges';
import { configDirOf, DIAGNOSTIC_SOURCE, isCheckedDocument, rangeOf } from './diagnostics';
import type { ConfigDiagnostics } from './diagnostics';

export class ConfigActions implements vscode.CodeActionProvider {
  static readonly metadata: vscode.CodeActionProviderMetadata = {
    providedCodeActionKinds: [vscode.CodeActionKind.QuickFix],
  };

  constructor(private readonly diagnostics: ConfigDiagnostics) {}

  provideCodeActions(
    doc: vscode.TextDocument,
    _range: vscode.Range,
    context: vscode.CodeActionContext,
  ): vscode.CodeAction[] | undefined {
    if (context.only && !vscode.CodeActionKind.QuickFix.intersects(context.only)) return undefined;
    const ours = context.diagnostics.filter((d) => d.source === DIAGNOSTIC_SOURCE);
    if (!ours.length || !isCheckedDocument(doc)) return undefined;
    const { text, problems } = this.diagnostics.current(doc);
    const actions: vscode.CodeAction[] = [];
    for (const diagnostic of ours) {
      const p = problemOf(doc, problems, diagnostic);
      if (!p) continue;
      for (const fix of fixActions(text, p))
        actions.push(action(doc, fix.title, fix.edits, [diagnostic], fix.preferred));
    }
    const missing = ours.filter((d) => d.code === 'config/missing-key');
    if (missing.length) {
      const all = addMissingKeysEdit(text, configDirOf(doc));
      if (all) actions.push(action(doc, all.title, all.edits, missing, false));
    }
    return actions;
  }
}

function action(
  doc: vscode.TextDocument,
  title: string,
  edits: readonly TextEdit[],
  diagnostics: vscode.Diagnostic[],
  preferred: boolean,
): vscode.CodeAction {
  const a = new vscode.CodeAction(title, vscode.CodeActionKind.QuickFix);
  a.edit = new vscode.WorkspaceEdit();
  for (const e of edits)
    a.edit.replace(doc.uri, new vscode.Range(doc.positionAt(e.offset), doc.positionAt(e.endOffset)), e.newText);
  a.diagnostics = diagnostics;
  a.isPreferred = preferred;
  return a;
}

/**
 * The problem a diagnostic was made from. VS Code hands back copies of diagnostics (and moves their ranges as the
 * text changes), so match on code and message, and take the nearest range when a message repeats.
 */
function problemOf(
  doc: vscode.TextDocument,
  problems: readonly LocatedProblem[],
  d: vscode.Diagnostic,
): LocatedProblem | undefined {
  const same = problems.filter((p) => p.code === d.code && diagnosticMessage(p) === d.message);
  const distance = (p: LocatedProblem): number =>
    Math.abs(doc.offsetAt(rangeOf(doc, p).start) - doc.offsetAt(d.range.start));
  return same.sort((a, b) => distance(a) - distance(b))[0];
}
