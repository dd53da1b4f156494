// Hover in training configs: the key's description, type, bounds, default and (for LoRA+ keys such as
// loraplus_lr_ratio) what it means, from src/config/docs.ts; over `model` and the data files also what they hold.
import * as vscode from 'vscode';
import { configDirOf, isCheckedDocument } from './diagnostics';
import { hoverAt } from './suggest';

export class ConfigHover implements vscode.HoverProvider {
  provideHover(doc: vscode.TextDocument, position: vscode.Position): vscode.Hover | undefined {
    if (!isCheckedDocument(doc)) return undefined;
    const h = hoverAt(doc.getText(), doc.offsetAt(position), configDirOf(doc));
    if (!h) return undefined;
    const md = new vscode.MarkdownString(h.markdown, true); // `$(error)` icons in model/data summaries
    return new vscode.Hover(md, new vscode.Range(doc.positionAt(h.start), doc.positionAt(h.end)));
  }
}
