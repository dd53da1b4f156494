// What a live run shows outside its dashboard: a status bar item (step, loss, tokens/s, ETA; click opens the
// dashboard) for the most recently active run, and a cancellable progress notification per run (cancel = stop,
// which saves a checkpoint first). Both read the run's feed (feeds.ts), as the explorer and the dashboard do.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fmtTime } from '../../engine/runs/render';
import type { RunSummary } from '../../engine/runs/summary';
import type { RunChange, RunFeeds } from './feeds';
import type { LiveRun } from './run-manager';

export class RunProgress implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('loraplus.run', vscode.StatusBarAlignment.Left, 10);
  private readonly subscription: vscode.Disposable;
  private readonly speed = new Map<string, number>(); // tokens/s of each run's last step

  constructor(private readonly feeds: RunFeeds) {
    this.item.name = 'LoRA+ training';
    this.subscription = feeds.onDidChange((c) => this.update(c));
  }

  /** Shows the notification for a run just started; it closes when the run ends. */
  track(run: LiveRun): void {
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LoRA+ ${path.basename(run.configFile)}`,
        cancellable: true,
      },
      async (progress, token) => {
        token.onCancellationRequested(() => void this.feeds.runs.stop(run));
        let done = 0;
        const sub = this.feeds.onDidChange((c) => {
          if (!run.runDir || path.resolve(run.runDir) !== c.runDir) return; // another run
          const message = progressMessage(c);
          const total = c.summary.totalSteps;
          const pct = total ? (100 * c.summary.step) / total : done;
          progress.report({ increment: pct - done, message });
          done = pct;
        });
        try {
          await run.ended;
        } finally {
          sub.dispose();
        }
      },
    );
  }

  private update(c: RunChange): void {
    const s = c.summary;
    for (const e of c.events) if (e.type === 'step') this.speed.set(s.dir, e.tokens_per_s);
    const live = s.status === 'running';
    if (!live && !c.statusChanged) return; // old runs read by the explorer say nothing here
    this.item.command = { title: 'Open Dashboard', command: 'loraplus.openDashboard', arguments: [s.dir] };
    this.item.tooltip = `${s.name}: click to open its dashboard`;
    if (live) this.item.text = `$(sync~spin) LoRA+ ${statusText(s, this.speed.get(s.dir))}`;
    else {
      const icon = s.status === 'finished' ? '$(check)' : s.status === 'stopped' ? '$(debug-pause)' : '$(error)';
      this.item.text = `${icon} LoRA+ ${s.name}: ${s.status} at step ${s.step}`;
    }
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

/** "12/300 · loss 2.431 · 812 tok/s · ETA 3m05s", from the feed's summary and the last step. */
function statusText(s: RunSummary, tokensPerS: number | undefined): string {
  const st = s.start;
  if (!st || !s.step || s.step <= st.start_step) return `${s.name}: starting${st ? ` on ${st.backend}` : ''}`;
  const rate = (s.step - st.start_step) / Math.max(1e-3, s.elapsed ?? 0);
  const eta = (st.total_steps - s.step) / Math.max(1e-9, rate);
  const loss = s.lastLoss !== null ? ` · loss ${s.lastLoss.toFixed(3)}` : '';
  const speed = tokensPerS !== undefined ? ` · ${Math.round(tokensPerS)} tok/s` : '';
  return `${s.step}/${st.total_steps}${loss}${speed} · ETA ${fmtTime(eta)}`;
}

function progressMessage(c: RunChange): string | undefined {
  const s = c.summary;
  const last = c.events.at(-1);
  if (last?.type === 'run_start') return `starting on ${last.backend} (${last.device})`;
  if (last?.type === 'eval') return `eval @ ${last.step}: loss ${last.loss.toFixed(4)}`;
  if (s.lastLoss === null) return undefined;
  return `step ${s.step}/${s.totalSteps ?? '?'} · loss ${s.lastLoss.toFixed(4)}`;
}
