// "LoRA+: Compare Checkpoints": picks two or more runs/checkpoints/adapters, computes the CompareReport in a child
// process (`dist/cli.js compare … --json`: the extension host never loads TensorFlow.js), and shows it in a webview.
// Evaluations run in a child process too, one per request. Each panel owns its child processes and kills them when
// it closes; a serializer reopens panels after a reload by recomputing from the saved item paths.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { METRICS_FILE } from '../../engine/runs/writer';
import { summarizeRun, type RunSummary } from '../../engine/runs/summary';
import type { CompareReport, CompareState, CompareToHost, HostToCompare } from '../../protocol/compare';
import type { ErrorInfo } from '../../protocol/errors';
import type { Studio } from '../studio';
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
        const paths = (state as CompareState | undefined)?.paths;
        if (!Array.isArray(paths) || !paths.length) {
          panel.dispose(); // nothing to recompute from
          return;
        }
        this.attach(panel, paths);
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
  private readonly children = new Set<ChildProcess>();
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
      panel.webview.onDidReceiveMessage((m: CompareToHost) => this.receive(m)),
      panel.onDidDispose(() => this.dispose()),
    );
    void this.compute();
  }

  private receive(m: CompareToHost): void {
    if (m.type === 'ready') {
      // A hidden webview is torn down (retainContextWhenHidden: false) and says `ready` again when shown.
      this.ready = true;
      for (const msg of this.sent) void this.panel.webview.postMessage(msg);
    } else if (m.type === 'runEval') void this.evaluate(m.item);
  }

  private post(msg: HostToCompare): void {
    this.sent.push(msg);
    if (this.ready) void this.panel.webview.postMessage(msg);
  }

  private async compute(): Promise<void> {
    try {
      const out = await this.cli(['compare', ...this.paths, '--json', '--grid']);
      this.report = JSON.parse(out) as CompareReport;
      this.post({ type: 'report', report: this.report });
    } catch (err) {
      const error = errorInfo(err);
      this.post({ type: 'reportError', error });
      void vscode.window.showErrorMessage(`LoRA+: could not compare: ${error.message}`);
    }
  }

  /** One item on the report's eval set, through `compare ITEM --eval --eval-config CONFIG`: that path loads each
   *  adapter with its own r, lora_alpha and head (`eval CONFIG --adapter DIR` would use the config's). */
  private async evaluate(index: number): Promise<void> {
    const item = this.report?.items[index];
    const config = this.report?.eval_config;
    const fail = (error: ErrorInfo) => this.post({ type: 'evalError', item: index, error });
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
    try {
      const out = await this.cli(['compare', item.path, '--eval', '--eval-config', config, '--json']);
      const evals = (JSON.parse(out) as CompareReport).evals ?? [];
      const e = evals[0];
      if (!e) fail({ code: 'internal', message: 'the evaluation returned nothing' });
      else if ('error' in e) fail(e.error);
      else this.post({ type: 'evalResult', item: index, result: e });
    } catch (err) {
      fail(errorInfo(err));
    }
  }

  /** Runs dist/cli.js in a Node child process; resolves with its stdout, rejects with its error line. */
  private cli(args: string[]): Promise<string> {
    const cwd = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? path.dirname(this.paths[0]);
    return new Promise((resolve, reject) => {
      const child = fork(path.join(this.extensionUri.fsPath, 'dist', 'cli.js'), args, {
        cwd,
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        execArgv: [],
        env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      });
      this.children.add(child);
      const [out, err]: [Buffer[], Buffer[]] = [[], []];
      child.stdout?.on('data', (d: Buffer) => out.push(d));
      child.stderr?.on('data', (d: Buffer) => err.push(d));
      child.on('error', reject);
      child.on('exit', (code, signal) => {
        this.children.delete(child);
        const stderr = Buffer.concat(err).toString().trim();
        if (stderr) stderr.split('\n').forEach((l) => this.log(`[compare] ${l}`));
        const stdout = Buffer.concat(out).toString();
        // compare --eval exits 1 when an item's eval failed but still prints the report with that error.
        if (stdout.trim().startsWith('{')) resolve(stdout);
        else
          reject(
            new CliError(
              stderr
                .split('\n')
                .find((l) => l.startsWith('error: '))
                ?.slice(7) ??
                (stderr || `the compare process ended (${signal ?? `exit code ${code}`})`),
            ),
          );
      });
    });
  }

  dispose(): void {
    for (const c of this.children) c.kill();
    this.children.clear();
    for (const d of this.disposables) d.dispose();
  }
}

class CliError extends Error {}

function errorInfo(err: unknown): ErrorInfo {
  return {
    code: err instanceof CliError ? 'compare/failed' : 'internal',
    message: err instanceof Error ? err.message : String(err),
  };
}

/** The explorer's runs; right after start-up (before its first scan) the workspace's metrics.jsonl files. */
async function workspaceRuns(s: Studio): Promise<RunSummary[]> {
  const known = s.tree.allRuns();
  if (known.length) return known;
  const files = await vscode.workspace.findFiles(`**/${METRICS_FILE}`, '**/node_modules/**', 500);
  return files.map((f) => summarizeRun(path.dirname(f.fsPath))).sort((a, b) => b.updated - a.updated);
}

// ---- the command ----------------------------------------------------------------------------------------------

/** Compares the selected explorer items; with fewer than two, asks which runs, checkpoints or adapters. */
export async function compareCheckpoints(s: Studio, paths: string[]): Promise<void> {
  s.compare.log = (line) => s.output.appendLine(line);
  const picked = paths.length >= 2 ? paths : await pick(s, paths);
  if (!picked) return;
  if (picked.length < 2) {
    void vscode.window.showInformationMessage('LoRA+: pick two or more runs, checkpoints or adapters to compare.');
    return;
  }
  s.compare.open(picked);
}

async function pick(s: Studio, preselected: string[]): Promise<string[] | undefined> {
  const runs = await workspaceRuns(s);
  if (!runs.length) {
    const uris = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: true,
      openLabel: 'Compare',
      title: 'LoRA+: Compare which run, checkpoint or adapter folders? (pick two or more)',
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    return uris && [...preselected, ...uris.map((u) => u.fsPath)];
  }
  const chosen = new Set(preselected.map((p) => path.resolve(p)));
  type Item = vscode.QuickPickItem & { dir?: string };
  const items: Item[] = [];
  for (const r of runs) {
    const runDir = path.resolve(r.dir);
    items.push({
      label: r.name,
      description: `${r.status} · step ${r.step}${r.finalAdapter ? ' · final adapter' : ''}`,
      detail: r.dir,
      dir: r.dir,
      picked: chosen.has(runDir),
    });
    for (const c of [...r.checkpoints].reverse()) {
      const ev = c.eval ? ` · eval loss ${c.eval.loss.toFixed(4)}` : '';
      items.push({
        label: `${r.name}@step-${c.step}`,
        description: `checkpoint${ev}`,
        detail: c.dir,
        dir: c.dir,
        picked: chosen.has(path.resolve(c.dir)),
      });
    }
  }
  // What the explorer selection named but the list does not hold (an adapter folder, final/): offered first, picked.
  const listed = new Set(items.map((i) => path.resolve(i.dir!)));
  const extra = [...chosen]
    .filter((p) => !listed.has(p))
    .map((p): Item => ({
      label: path.join(path.basename(path.dirname(p)), path.basename(p)),
      description: 'selected',
      detail: p,
      dir: p,
      picked: true,
    }));
  const selection = await vscode.window.showQuickPick([...extra, ...items], {
    canPickMany: true,
    title: 'LoRA+: Compare which runs or checkpoints? (pick two or more)',
    matchOnDetail: true,
  });
  return selection?.flatMap((i) => (i.dir ? [i.dir] : []));
}
