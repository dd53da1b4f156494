// "LoRA+: Find λ and Learning Rate" (`loraplus tune` in an engine process), and what any tune started from this
// window shows, also one that Start Training runs for a config with `learning_rate: auto` or `loraplus_lr_ratio:
// auto`: the tune dashboard once tune_start names the folder, a cancellable progress notification (cancel = stop: the
// trial training now saves its checkpoint first), and at the end the winner with what to do next.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fmtSetting, usesRatio, type TuneSummary } from '../protocol/tune';
import { formatError } from '../protocol/errors';
import { checkedConfig, configFileOf } from './config-pick';
import { mergeAdapter } from './merge';
import type { LiveRun, RunResult } from './runs/run-manager';
import { fmtEvalHeadline } from './runs/tree-model';
import { settingsText, tuneProgress } from './runs/tune-model';
import type { RunNode } from './runs/run-tree';
import type { Studio } from './studio';
import { requireTrust } from './trust';
import { trainWithWinner } from './tune-winner';

/** The palette's and a config's context menu's command. */
export async function startTune(s: Studio, arg: unknown): Promise<void> {
  if (!(await requireTrust('tuning', 'find λ and the learning rate'))) return;
  const configFile = await configFileOf(arg, 'LoRA+: Find λ and the learning rate for which config?');
  if (!configFile || !(await checkedConfig(configFile, 'tune'))) return;
  s.output.appendLine(`tuning ${configFile}`);
  const run = s.runs.tune({ configFile });
  const result = await followTune(s, run);
  if (s.runs.disposed) return;
  await announce(s, result, run.tuneDir);
}

/**
 * What a tune of this window shows while it runs: its dashboard when it starts (loraplus.openDashboardOnStart) and a
 * progress notification whose cancel stops it. Resolves with the run's result when the process has ended.
 */
export async function followTune(s: Studio, run: LiveRun): Promise<RunResult> {
  const opened = s.runs.onTune(({ event }) => {
    if (event.type !== 'tune_start' || !run.tuneDir || s.runs.findTune(event.tune_dir) !== run) return;
    opened.dispose();
    if (vscode.workspace.getConfiguration('loraplus').get<boolean>('openDashboardOnStart', true))
      s.tuneDashboards.open(run.tuneDir);
  });
  void vscode.window.withProgress(
    {
      location: vscode.ProgressLocation.Notification,
      title: `LoRA+ tune ${path.basename(run.configFile)}`,
      cancellable: true,
    },
    async (progress, token) => {
      token.onCancellationRequested(() => void s.runs.stop(run));
      let done = 0;
      const sub = s.tunes.onDidChange((c) => {
        if (!run.tuneDir || path.resolve(run.tuneDir) !== c.tuneDir) return;
        const p = tuneProgress(c.summary);
        progress.report({ increment: p.percent - done, message: p.message });
        done = p.percent;
      });
      try {
        await run.ended;
      } finally {
        sub.dispose();
      }
    },
  );
  try {
    return await run.ended;
  } finally {
    opened.dispose();
  }
}

/** The end of a tune: failed (with the log), stopped, or its winner with what to do next. */
export async function announce(s: Studio, result: RunResult, tuneDir: string | null): Promise<void> {
  if (result.status === 'failed') {
    const log = 'Open Log';
    const why = result.error ? formatError(result.error) : 'see the log';
    if ((await vscode.window.showErrorMessage(`LoRA+: the tune failed: ${why}`, log)) === log) s.output.show(true);
    return;
  }
  const summary = tuneDir ? s.tunes.summary(tuneDir) : null;
  const w = summary?.winner;
  if (result.status !== 'finished' || !tuneDir || !summary || !w) {
    const name = tuneDir ? path.basename(tuneDir) : path.basename(result.runDir ?? '');
    void vscode.window.showInformationMessage(
      `LoRA+: the tune ${name} was stopped; its trials keep their checkpoints.`,
    );
    return;
  }
  const [dash, train, merge] = ['Open Tune Dashboard', 'Train with These Settings', 'Merge Adapter'];
  const lrB = fmtSetting(Number((w.settings.learning_rate * w.settings.loraplus_lr_ratio).toPrecision(4)));
  const rates = usesRatio(w.settings.optimizer) ? `${settingsText(w)} (lr_B ${lrB})` : settingsText(w);
  const pick = await vscode.window.showInformationMessage(
    `LoRA+: ${summary.start?.tune_name ?? path.basename(tuneDir)} picked ${rates}: ` +
      `${fmtEvalHeadline(w.eval)} after ${summary.spent_steps} of the full grid's ${summary.full_grid_steps} steps.`,
    dash,
    train,
    merge,
  );
  if (pick === dash) s.tuneDashboards.open(tuneDir);
  if (pick === train) await trainWithWinner(summary);
  if (pick === merge && w.final_adapter) await mergeAdapter(s, w.final_adapter);
}

/** "Open Tune Dashboard": the explorer's tune node, a path, else a quick pick of the workspace's tunes. */
export async function openTuneDashboard(s: Studio, arg: unknown): Promise<void> {
  const dir = await tuneDirOf(s, arg);
  if (dir) s.tuneDashboards.open(dir);
}

async function tuneDirOf(s: Studio, arg: unknown): Promise<string | undefined> {
  if (typeof arg === 'string') return arg;
  if (arg instanceof vscode.Uri) return arg.fsPath;
  if (arg && typeof arg === 'object' && (arg as RunNode).kind === 'tune') return (arg as RunNode).dir;
  const tunes = s.tree.allTunes();
  if (!tunes.length) {
    void vscode.window.showInformationMessage('LoRA+: there are no tunes in this workspace yet.');
    return undefined;
  }
  const items = tunes.map(({ dir, summary }) => ({ label: path.basename(dir), description: describe(summary), dir }));
  return (await vscode.window.showQuickPick(items, { title: 'LoRA+: Open the dashboard of which tune?' }))?.dir;
}

function describe(s: TuneSummary): string {
  return s.winner ? `${s.status} · winner ${settingsText(s.winner)}` : s.status;
}
