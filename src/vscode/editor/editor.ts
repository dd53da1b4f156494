// The editor side of training configs (*.lora.yaml, *.loraplus.yaml, loraplus.yaml, or any YAML with a top-level
// `loraplus: 1`): diagnostics, completion, hover and quick fixes, all from src/config and the engine's checks, with no
// need for the Red Hat YAML extension (package.json's yamlValidation gives that one the JSON Schema when installed).
// Also keeps the context key `loraplus.isConfig` for the active editor (package.json's editor/title menu uses it).
import * as vscode from 'vscode';
import { ConfigActions } from './actions';
import { ConfigCompletions, TRIGGER_CHARACTERS } from './completion';
import { ConfigDiagnostics, isCheckedDocument } from './diagnostics';
import { ConfigHover } from './hover';

/** Every YAML document (the providers then keep to configs) and the config names in whatever language they open. */
const SELECTOR: vscode.DocumentSelector = [
  { language: 'yaml' },
  { pattern: '**/{*.lora.yaml,*.loraplus.yaml,loraplus.yaml}' },
];

export const IS_CONFIG_CONTEXT = 'loraplus.isConfig';

/** Registers everything; the one Disposable returned owns it all. */
export function registerConfigEditor(): vscode.Disposable {
  const diagnostics = new ConfigDiagnostics();
  let isConfig: boolean | undefined;
  const updateContext = (): void => {
    const doc = vscode.window.activeTextEditor?.document;
    const now = doc ? isCheckedDocument(doc) : false;
    if (now === isConfig) return;
    isConfig = now;
    void vscode.commands.executeCommand('setContext', IS_CONFIG_CONTEXT, now);
  };
  updateContext();
  return vscode.Disposable.from(
    diagnostics,
    vscode.languages.registerCompletionItemProvider(SELECTOR, new ConfigCompletions(), ...TRIGGER_CHARACTERS),
    vscode.languages.registerHoverProvider(SELECTOR, new ConfigHover()),
    vscode.languages.registerCodeActionsProvider(SELECTOR, new ConfigActions(diagnostics), ConfigActions.metadata),
    vscode.window.onDidChangeActiveTextEditor(updateContext),
    // Typing or deleting the `loraplus: 1` marker makes a YAML file a config or not.
    vscode.workspace.onDidChangeTextDocument((e) => {
      if (e.document === vscode.window.activeTextEditor?.document) updateContext();
    }),
  );
}
