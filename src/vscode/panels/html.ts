// The one HTML shell of every LoRA+ webview: a strict Content-Security-Policy with a fresh nonce, scripts and styles
// only from the extension's media/ folder, no inline code, no remote loads. The page's script reads its initial
// state from the `data-state` attribute of <body> (JSON), so nothing is ever injected as code.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions & vscode.WebviewPanelOptions {
  return {
    enableScripts: true,
    localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'media')],
    retainContextWhenHidden: false,
  };
}

/** `scripts` and `styles` are file names inside media/ (e.g. 'dashboard.js'). */
export function webviewHtml(
  webview: vscode.Webview,
  extensionUri: vscode.Uri,
  page: { title: string; scripts: string[]; styles: string[]; state?: unknown },
): string {
  const nonce = randomBytes(16).toString('base64');
  const media = (f: string) => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'media', f)).toString();
  const csp = [
    `default-src 'none'`,
    `img-src ${webview.cspSource} data:`,
    `font-src ${webview.cspSource}`,
    `style-src ${webview.cspSource} 'nonce-${nonce}'`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  const state = page.state === undefined ? '' : ` data-state="${escapeAttr(JSON.stringify(page.state))}"`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>${escapeAttr(page.title)}</title>
${page.styles.map((s) => `<link rel="stylesheet" nonce="${nonce}" href="${media(s)}">`).join('\n')}
</head>
<body${state}>
${page.scripts.map((s) => `<script nonce="${nonce}" src="${media(s)}"></script>`).join('\n')}
</body>
</html>`;
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
