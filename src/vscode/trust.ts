// Workspace trust (capabilities.untrustedWorkspaces: limited): what runs code on the user's machine (training,
// merging, evaluation) asks here first. In an untrusted workspace it says why it refuses and offers the trust editor.
import * as vscode from 'vscode';

/** True when the workspace is trusted; else shows "LoRA+: <what> runs code ... <todo>." and returns false. */
export async function requireTrust(what: string, todo: string): Promise<boolean> {
  if (vscode.workspace.isTrusted) return true;
  const manage = 'Manage Workspace Trust';
  const pick = await vscode.window.showErrorMessage(
    `LoRA+: ${what} runs code on your machine, so it is disabled in an untrusted workspace. Trust this workspace to ${todo}.`,
    manage,
  );
  if (pick === manage) await vscode.commands.executeCommand('workbench.trust.manage');
  return false;
}
