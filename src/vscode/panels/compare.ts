// The compare webviews (viewType loraplus.compare): each panel asks an engine process for the CompareReport of its
// items (the extension host never loads TensorFlow.js) and shows it; evaluations are engine requests too, one per
// button. Each panel owns its engine processes and ends them when it closes; a serializer reopens panels after a
// reload by recomputing from the saved item paths. The command that picks the items is ../compare-command.ts.
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  hostMessage,
  isCompareState,
  isCompareToHost,
  type CompareReport,
  type CompareState,
  type HostMessages,
  type HostToCompare,
} from '../../protocol/compare';
import { formatError, type ErrorInfo } from '../../protocol/errors';
import type { EngineRequests } from '../../protocol/host';
import { startEngine, type EngineCall, type Outcome } from '../engine-process';
import { webviewHtml, webviewOptions } from './html';

export const COMPARE_VIEW_TYPE = 'loraplus.compare';
const TITLE = 'LoRA+ Compare';

export class ComparePanels implements vscode.Disposable {
  private readonly panels = new Set<ComparePanel>();
  private readonly serializer: vscode.Disposable;
  /** Where child-process output goes (the LoRA+ output channel, once a command has run). */
  log: (line: string) => void = () => {};

  constructor(readonly extensionUri: vscode.Uri) {
    this.serializer = vscode.window.registerWebviewPanelSerializer(COMPARE_VIEW_TYPE, {
      deserializeWebviewPanel: async (panel, state: unknown) => {
        if (!isCompareState(state)) return panel.dispose(); // nothing to recompute from
        this.attach(panel, state.paths);
      },
    });
  }

  open(paths: string[]): void {
    const panel = vscode.window.createWebviewPanel(
      COMPARE_VIEW_TYPE,
      TITLE,
      vscode.ViewColumn.Active,
      webviewOptions(this.extensionUri),
    );
    this.attach(panel, paths);
  }

  private attach(panel: vscode.WebviewPanel, paths: string[]): void {
    const p = new ComparePanel(panel, this.extensionUri, paths, (line) => this.log(line));
    this.panels.add(p);
    panel.onDidDispose(() => this.panels.delete(p));
  }

  dispose(): void {
    // The panels themselves stay: VS Code closes (and later restores) them with the window.
    for (const p of this.panels) p.dispose();
    this.serializer.dispose();
  }
}

class ComparePanel {
  private readonly disposables: vscode.Disposable[] = [];
  private readonly calls = new Set<EngineCall<'compare' | 'evaluate'>>();
  private ready = false;
  private report: CompareReport | null = null;
  private readonly sent: HostToCompare[] = []; // report and eval results, replayed when the webview reloads

  constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly extensionUri: vscode.Uri,
    private readonly paths: string[],
    private readonly log: (line: string) => void,
  ) {
    panel.title = TITLE;
    panel.iconPath = vscode.Uri.joinPath(extensionUri, 'media', 'icon.svg');
    panel.webview.options = webviewOptions(extensionUri);
    panel.webview.html = webviewHtml(panel.webview, extensionUri, {
      title: TITLE,
      scripts: ['compare.js'],
      styles: ['compare.css'],
      state: { paths } satisfies CompareState,
    });
    this.disposables.push(
      panel.webview.onDidReceiveMessage((m: unknown) => this.receive(m)),
      // Hidden panels lose their page (retainContextWhenHidden is off); a shown one reloads and says `ready` again.
      panel.onDidChangeViewState(() => (this.ready &&= panel.visible)),
      panel.onDidDispose(() => this.dispose()),
    );
    void this.compute();
  }

  private receive(m: unknown): void {
    if (!isCompareToHost(m)) return;
    switch (m.type) {
      case 'ready':
        // A fresh page (first load, or shown again after being hidden) gets everything so far.
        this.ready = true;
        for (const msg of this.sent) void this.panel.webview.postMessage(msg);
        return;
      case 'runEval':
        return void this.evaluate(m.item);
      default:
        m satisfies never;
    }
  }

  private post<K extends keyof HostMessages>(type: K, payload: HostMessages[K]): void {
    const msg = hostMessage(type, payload);
    this.sent.push(msg);
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private async compute(): Promise<void> {
    const o = await this.engine('compare', { paths: this.paths, grid: true });
    if (o.ok) {
      this.report = o.result;
      this.post('report', { report: this.report });
    } else if (!o.cancelled) {
      this.post('reportError', { error: o.error });
      void vscode.window.showErrorMessage(`LoRA+: could not compare: ${formatError(o.error)}`);
    }
  }

  /** One item on the report's eval set, with its own r, lora_alpha and head (`eval CONFIG --adapter DIR` would
   *  use the config's). */
  private async evaluate(index: number): Promise<void> {
    const item = this.report?.items[index];
    const config = this.report?.eval_config;
    const fail = (error: ErrorInfo) => this.post('evalError', { item: index, error });
    if (!item) return;
    if (!vscode.workspace.isTrusted) {
      fail({
        code: 'workspace/untrusted',
        message: 'evaluation runs code on your machine, so it is disabled in an untrusted workspace',
        hint: 'Trust this workspace to evaluate.',
      });
      return;
    }
    if (!config) {
      fail({
        code: 'compare/no-eval-config',
        message: 'none of the compared items is a run with a config.yaml, so there is no eval set',
        hint: 'Run `loraplus compare … --eval --eval-config CONFIG` in a terminal.',
      });
      return;
    }
    const o = await this.engine('evaluate', { adapters: [item.adapter_dir], evalConfig: config });
    if (!o.ok) return void (o.cancelled || fail(o.error));
    const e = o.result[0];
    if (!e) fail({ code: 'internal', message: 'the evaluation returned nothing' });
    else if ('error' in e) fail(e.error);
    else this.post('evalResult', { item: index, result: e });
  }

  /** A request to an engine process of this panel's own (killed when the panel closes). */
  private async engine<M extends 'compare' | 'evaluate'>(
    method: M,
    params: EngineRequests[M]['params'],
  ): Promise<Outcome<M>> {
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(this.paths[0]);
    const call = startEngine(this.extensionUri.fsPath, method, params, {
      cwd,
      onLog: (l) => this.log(`[${method}] ${l}`),
      onOutput: (l) => this.log(`[${method}] ${l}`),
    });
    this.calls.add(call);
    const o = await call.outcome;
    this.calls.delete(call);
    return o;
  }

  dispose(): void {
    for (const c of this.calls) c.cancel();
    this.calls.clear();
    for (const d of this.disposables) d.dispose();
  }
}
