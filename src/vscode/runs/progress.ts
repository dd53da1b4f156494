// What a live run shows outside its dashboard: a status bar item (step, loss, tokens/s, ETA; click opens the
// dashboard) for the most recently active run, and a cancellable progress notification per run (cancel = stop,
// which saves a checkpoint first).
import * as path from 'node:path';
import * as vscode from 'vscode';
import { fmtTime } from '../../engine/runs/render';
import type { EngineEvent, RunStartEvent } from '../../protocol/events';
import type { LiveRun, RunManager } from './run-manager';

export class RunProgress implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('loraplus.run', vscode.StatusBarAlignment.Left, 10);
  private readonly starts = new Map<string, RunStartEvent>();
  private readonly subscription: vscode.Disposable;

  constructor(private readonly runs: RunManager) {
    this.item.name = 'LoRA+ training';
    this.subscription = runs.onEvent(({ runDir, event }) => this.update(runDir, event));
  }

  /** Shows the notification for a run just started; resolves when the run ends. */
  track(run: LiveRun): void {
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LoRA+ ${path.basename(run.configFile)}`,
        cancellable: true,
      },
      async (progress, token) => {
        token.onCancellationRequested(() => void this.runs.stop(run));
        let done = 0;
        const sub = this.runs.onEvent(({ event }) => {
          if (run.last !== event) return; // another run's event
          if (event.type === 'run_start')
            progress.report({ message: `starting on ${event.backend} (${event.device})` });
          if (event.type === 'step') {
            const total = this.starts.get(run.runDir ?? '')?.total_steps ?? event.step;
            const pct = (100 * event.step) / total;
            progress.report({
              increment: pct - done,
              message: `step ${event.step}/${total} · loss ${event.loss.toFixed(4)}`,
            });
            done = pct;
          }
          if (event.type === 'eval')
            progress.report({ message: `eval @ ${event.step}: loss ${event.loss.toFixed(4)}` });
        });
        try {
          await run.ended;
        } finally {
          sub.dispose();
        }
      },
    );
  }

  private update(runDir: string, e: EngineEvent): void {
    if (e.type === 'run_start') this.starts.set(runDir, e);
    const start = this.starts.get(runDir);
    const name = start?.run_name ?? path.basename(runDir);
    this.item.command = { title: 'Open Dashboard', command: 'loraplus.openDashboard', arguments: [runDir] };
    if (e.type === 'step' && start) {
      const rate = (e.step - start.start_step) / Math.max(1e-3, e.elapsed_s);
      const eta = (start.total_steps - e.step) / Math.max(1e-9, rate);
      this.item.text = `$(sync~spin) LoRA+ ${e.step}/${start.total_steps} · loss ${e.loss.toFixed(3)} · ${Math.round(e.tokens_per_s)} tok/s · ETA ${fmtTime(eta)}`;
      this.item.tooltip = `${name}: click to open its dashboard`;
      this.item.show();
    } else if (e.type === 'run_start') {
      this.item.text = `$(sync~spin) LoRA+ ${name}: starting on ${e.backend}`;
      this.item.show();
    } else if (e.type === 'end') {
      this.item.text = `${e.status === 'finished' ? '$(check)' : e.status === 'stopped' ? '$(debug-pause)' : '$(error)'} LoRA+ ${name}: ${e.status} at step ${e.step}`;
      this.item.tooltip = `${name}: click to open its dashboard`;
    }
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
