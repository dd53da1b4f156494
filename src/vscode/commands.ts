// Every command's handler, in one table keyed by the ids of command-table.ts (the type makes a missing handler a
// compile error). Handlers take what VS Code passes: a tree node (run explorer), a Uri (explorer, editor title),
// a run folder path (status bar, dashboards), or nothing (the palette, which then asks).
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { autoKeys } from '../config/auto';
import { isRunDir } from '../engine/runs/summary';
import { formatError } from '../protocol/errors';
import type { CommandId } from './command-table';
import { chatWithModel } from './chat-command';
import { compareCheckpoints } from './compare-command';
import { checkedConfig, configFileOf } from './config-pick';
import { downloadModel } from './download-model';
import { exportJobCommand } from './export-command';
import { mergeAdapter } from './merge';
import { pythonInterpreter } from './python';
import { newConfig } from './editor/new-config';
import { renameRunFolder } from './rename-run';
import type { RunNode } from './runs/run-tree';
import type { Studio } from './studio';
import { requireTrust } from './trust';
import { announce, followTune, openTuneDashboard, startTune } from './tune-command';

type Handler = (studio: Studio, arg?: unknown, selected?: unknown[]) => unknown;

export const HANDLERS: Record<CommandId, Handler> = {
  'loraplus.newConfig': (_s, arg) => newConfig(arg instanceof vscode.Uri ? arg : undefined),
  'loraplus.startTraining': (s, arg) => startTraining(s, arg, false),
  'loraplus.resumeTraining': (s, arg) => startTraining(s, arg, true),
  'loraplus.stopTraining': stopTraining,
  'loraplus.openLog': (s) => s.output.show(true),
  'loraplus.openDashboard': async (s, arg) => {
    const dir = await runDirOf(s, arg, 'Open the dashboard of which run?');
    if (dir) s.dashboards.open(dir);
  },
  'loraplus.openRunConfig': async (s, arg) => {
    const dir = await runDirOf(s, arg, 'Open the config of which run?');
    if (dir) await vscode.window.showTextDocument(vscode.Uri.file(path.join(dir, 'config.yaml')));
  },
  'loraplus.revealRun': (_s, arg) => {
    const dir = nodePath(arg);
    if (dir) return vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(dir));
  },
  'loraplus.renameRun': async (s, arg) => renameRunFolder(s, await runDirOf(s, arg, 'Rename which run?')),
  'loraplus.deleteRun': deleteRun,
  'loraplus.refreshRuns': (s) => s.tree.refresh(),
  'loraplus.mergeAdapter': (s, arg) => mergeAdapter(s, nodePath(arg)),
  'loraplus.openModelCard': (_s, arg) => {
    const dir = nodePath(arg);
    if (dir)
      return vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(path.join(dir, 'README.md')));
  },
  'loraplus.compareCheckpoints': (s, arg, selected) => compareCheckpoints(s, selectedPaths(arg, selected)),
  'loraplus.downloadModel': (s) => downloadModel(s),
  'loraplus.chat': (s, arg) => chatWithModel(s, nodePath(arg)),
  'loraplus.tune': startTune,
  'loraplus.openTuneDashboard': openTuneDashboard,
  'loraplus.exportJob': exportJobCommand,
};

export function registerCommands(studio: Studio): vscode.Disposable[] {
  return Object.entries(HANDLERS).map(([id, run]) =>
    vscode.commands.registerCommand(id, async (arg?: unknown, selected?: unknown[]) => {
      try {
        return await run(studio, arg, selected);
      } catch (err) {
        if (studio.runs.disposed) return; // the window is closing; its output channel is gone
        studio.output.appendLine(`${id}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
        void vscode.window.showErrorMessage(`LoRA+: ${err instanceof Error ? err.message : String(err)}`);
      }
    }),
  );
}

// ---- Training -------------------------------------------------------------------------------------------------------

async function startTraining(s: Studio, arg: unknown, resume: boolean): Promise<void> {
  if (!(await requireTrust('training', 'start training'))) return;
  // Resume from a run in the explorer: its config.yaml as run, into the same folder.
  const runDir = resume ? await runDirOf(s, arg, 'Resume which run?') : undefined;
  if (resume && !runDir) return;
  const configFile = runDir
    ? path.join(runDir, 'config.yaml')
    : await configFileOf(arg, 'LoRA+: Train with which config?');
  if (!configFile) return;
  const config = await checkedConfig(configFile, 'run');
  if (!config) return;
  if (runDir && s.runs.find(runDir)) {
    void vscode.window.showInformationMessage(`LoRA+: ${path.basename(runDir)} is already running.`);
    return;
  }
  // device: torch trains with the user's Python (the Python extension's interpreter for this config's folder).
  const python = config.device === 'torch' ? await pythonInterpreter(vscode.Uri.file(configFile)) : undefined;
  if (python) s.output.appendLine(`device: torch with ${python}`);
  const run = s.runs.start(configFile, { resume, runDir, python });
  s.output.appendLine(`${resume ? 'resuming' : 'starting'} ${configFile}`);
  // `auto`: the engine tunes first (the tune's dashboard and progress), then the winner's run is the result.
  if (autoKeys(config).length && !resume) return void (await announce(s, await followTune(s, run), run.tuneDir));
  s.progress.track(run);
  const opened = s.feeds.onDidChange(({ runDir: dir, events }) => {
    if (!run.runDir || path.resolve(run.runDir) !== dir || !events.some((e) => e.type === 'run_start')) return;
    opened.dispose();
    if (vscode.workspace.getConfiguration('loraplus').get<boolean>('openDashboardOnStart', true))
      s.dashboards.open(dir);
  });
  const result = await run.ended;
  opened.dispose();
  if (s.runs.disposed) return; // the window closed: the run saved a checkpoint and ended; nothing left to show
  if (result.status === 'failed') {
    const log = 'Open Log';
    const pick = await vscode.window.showErrorMessage(
      `LoRA+: the run failed: ${result.error ? formatError(result.error) : 'see the log'}`,
      log,
    );
    if (pick === log) s.output.show(true);
  } else if (result.status === 'stopped' && result.runDir) {
    await offerResume(s, result.runDir);
  } else if (result.status === 'finished' && result.runDir) {
    const [dash, merge] = ['Open Dashboard', 'Merge Adapter'];
    const pick = await vscode.window.showInformationMessage(
      `LoRA+: ${path.basename(result.runDir)} finished.`,
      dash,
      merge,
    );
    if (pick === dash) s.dashboards.open(result.runDir);
    if (pick === merge) await mergeAdapter(s, path.join(result.runDir, 'final'));
  }
}

/** A stopped run saved a checkpoint: say where it stands and offer to continue it. */
async function offerResume(s: Studio, runDir: string): Promise<void> {
  const [resume, dash] = ['Resume', 'Open Dashboard'];
  const step = s.feeds.summary(runDir).step;
  const pick = await vscode.window.showInformationMessage(
    `LoRA+: ${path.basename(runDir)} stopped at step ${step}; its checkpoint is saved.`,
    resume,
    dash,
  );
  if (pick === resume) await vscode.commands.executeCommand('loraplus.resumeTraining', runDir);
  if (pick === dash) s.dashboards.open(runDir);
}

async function stopTraining(s: Studio, arg: unknown): Promise<void> {
  const live = s.runs.runs();
  const dir = nodePath(arg);
  const run = dir ? (s.runs.find(dir) ?? s.runs.findTune(dir)) : live.length === 1 ? live[0] : await pickLive(s);
  if (!run) {
    if (dir)
      void vscode.window.showInformationMessage(
        `LoRA+: ${path.basename(dir)} is training in another process (a terminal or another window); stop it there (Ctrl-C saves a checkpoint).`,
      );
    else if (!live.length) void vscode.window.showInformationMessage('LoRA+: no run is training in this window.');
    return;
  }
  await vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `LoRA+: stopping ${path.basename(run.runDir ?? run.configFile)} (saving a checkpoint)`,
    },
    () => s.runs.stop(run),
  );
}

async function pickLive(s: Studio) {
  const items = s.runs
    .runs()
    .map((r) => ({ label: path.basename(r.runDir ?? r.configFile), description: r.configFile, run: r }));
  return (await vscode.window.showQuickPick(items, { title: 'LoRA+: Stop which run?' }))?.run;
}

async function deleteRun(s: Studio, arg: unknown): Promise<void> {
  const dir = nodePath(arg);
  if (!dir || !isRunDir(dir)) return;
  if (s.runs.find(dir)) {
    void vscode.window.showWarningMessage('LoRA+: stop the run before deleting it.');
    return;
  }
  const yes = 'Delete';
  const pick = await vscode.window.showWarningMessage(
    `Delete the run ${path.basename(dir)} with its checkpoints and adapter? This cannot be undone.`,
    { modal: true },
    yes,
  );
  if (pick !== yes) return;
  await fs.promises.rm(dir, { recursive: true, force: true });
  s.tree.refresh();
}

// ---- What a command was invoked on ------------------------------------------------------------------------------

/** A tree node's folder, a Uri's path, or a path string. */
function nodePath(arg: unknown): string | undefined {
  if (typeof arg === 'string') return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (arg && typeof arg === 'object' && 'dir' in arg) return (arg as RunNode).dir;
  return undefined;
}

function selectedPaths(arg: unknown, selected: unknown[] | undefined): string[] {
  const all = selected?.length ? selected : arg ? [arg] : [];
  return all.map(nodePath).filter((p): p is string => Boolean(p));
}

/** The run folder a command is about: the node's run, else a quick pick of the runs in the explorer. */
async function runDirOf(s: Studio, arg: unknown, title: string): Promise<string | undefined> {
  if (arg && typeof arg === 'object' && 'runDir' in arg) return (arg as { runDir: string }).runDir;
  const dir = nodePath(arg);
  if (dir) return dir;
  const runs = s.tree.allRuns();
  if (!runs.length) {
    void vscode.window.showInformationMessage('LoRA+: there are no runs in this workspace yet.');
    return undefined;
  }
  const items = runs.map((r) => ({
    label: r.name,
    description: `${r.status} · step ${r.step}${r.totalSteps ? `/${r.totalSteps}` : ''}`,
    detail: r.dir,
    dir: r.dir,
  }));
  return (await vscode.window.showQuickPick(items, { title: `LoRA+: ${title}` }))?.dir;
}
