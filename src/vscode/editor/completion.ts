// Completion in training configs: keys with their description and a snippet of the default, enum values, the
// selected model's module names for target_modules, the data's columns, and paths relative to the config's folder.
// What to offer is decided in config-suggest.ts (no `vscode` there); this turns it into CompletionItems.
import * as vscode from 'vscode';
import { configDirOf, isCheckedDocument } from './diagnostics';
import { suggestionsAt } from './suggest';
import type { Suggestion } from './suggest';

/** `:` and space open values, `/` paths, `[` and `,` module names in a flow list. */
export const TRIGGER_CHARACTERS = [':', ' ', '/', '[', ','];

const KIND: Record<Suggestion['kind'], vscode.CompletionItemKind> = {
  key: vscode.CompletionItemKind.Property,
  section: vscode.CompletionItemKind.Module,
  value: vscode.CompletionItemKind.EnumMember,
  module: vscode.CompletionItemKind.Field,
  folder: vscode.CompletionItemKind.Folder,
  file: vscode.CompletionItemKind.File,
  field: vscode.CompletionItemKind.Value,
};

export class ConfigCompletions implements vscode.CompletionItemProvider {
  provideCompletionItems(
    doc: vscode.TextDocument,
    position: vscode.Position,
    _token: vscode.CancellationToken,
    context: vscode.CompletionContext,
  ): vscode.CompletionItem[] | undefined {
    if (!isCheckedDocument(doc)) return undefined;
    const trigger =
      context.triggerKind === vscode.CompletionTriggerKind.TriggerCharacter ? context.triggerCharacter : undefined;
    const found = suggestionsAt(doc.getText(), doc.offsetAt(position), configDirOf(doc), trigger);
    return found.length ? found.map((s) => item(doc, position, s)) : undefined;
  }
}

function item(doc: vscode.TextDocument, position: vscode.Position, s: Suggestion): vscode.CompletionItem {
  const it = new vscode.CompletionItem(s.label, KIND[s.kind]);
  it.insertText = s.snippet ? new vscode.SnippetString(s.insertText) : s.insertText;
  it.detail = s.detail;
  if (s.documentation) it.documentation = new vscode.MarkdownString(s.documentation);
  if (s.preselect) it.preselect = true;
  if (s.sortText) it.sortText = s.sortText;
  // Typing filters on what is left of the cursor; accepting replaces the whole word or value.
  const start = doc.positionAt(s.start);
  const end = doc.positionAt(Math.max(s.end, doc.offsetAt(position)));
  it.range = { inserting: new vscode.Range(start, position), replacing: new vscode.Range(start, end) };
  if (s.retrigger) it.command = { command: 'editor.action.triggerSuggest', title: 'Suggest' };
  return it;
}
