// What a live run shows outside its dashboard: a status bar item (step, loss, tokens/s, "evaluating n/N", an ETA
// that counts the evals to come; click opens the dashboard) for the most recently active run, and while a run starts
// (loading, the baseline eval) a cancellable notification (cancel = stop, which saves a checkpoint first) that closes
// at the first step, so it never covers a chart for the whole run. All read the run's feed (feeds.ts), as the
// explorer and the dashboard do.
import * as path from 'node:path';
import * as vscode from 'vscode';
import { backendSummary } from '../../protocol/backend';
import { formatDuration, phaseText, RunTiming } from '../../protocol/progress';
import type { RunSummary } from '../../engine/runs/summary';
import type { RunChange, RunFeeds } from './feeds';
import type { LiveRun } from './run-manager';

export class RunProgress implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('loraplus.run', vscode.StatusBarAlignment.Left, 10);
  private readonly subscription: vscode.Disposable;
  private readonly speed = new Map<string, number>(); // tokens/s of each run's last step
  private readonly timings = new Map<string, RunTiming>(); // each run's phase and ETA, folded from its events

  constructor(private readonly feeds: RunFeeds) {
    this.item.name = 'LoRA+ training';
    this.subscription = feeds.onDidChange((c) => this.update(c));
  }

  /** Shows the notification while the run starts; it closes at the first step (or when the run ends first). */
  track(run: LiveRun): void {
    void vscode.window.withProgress(
      {
        location: vscode.ProgressLocation.Notification,
        title: `LoRA+ ${path.basename(run.configFile)}`,
        cancellable: true,
      },
      (progress, token) =>
        new Promise<void>((resolve) => {
          token.onCancellationRequested(() => void this.feeds.runs.stop(run));
          const sub = this.feeds.onDidChange((c) => {
            if (!run.runDir || path.resolve(run.runDir) !== c.runDir) return; // another run
            if (c.events.some((e) => e.type === 'step' || e.type === 'end')) return done();
            const message = startMessage(c);
            if (message) progress.report({ message });
          });
          const done = () => {
            sub.dispose();
            resolve();
          };
          void run.ended.then(done);
        }),
    );
  }

  private update(c: RunChange): void {
    const s = c.summary;
    const timing = this.fold(c);
    for (const e of c.events) if (e.type === 'step') this.speed.set(s.dir, e.tokens_per_s);
    const live = s.status === 'running';
    if (!live && !c.statusChanged) return; // old runs read by the explorer say nothing here
    this.item.command = { title: 'Open Dashboard', command: 'loraplus.openDashboard', arguments: [s.dir] };
    this.item.tooltip = `${s.name}: click to open its dashboard`;
    if (live) this.item.text = `$(sync~spin) LoRA+ ${statusText(s, this.speed.get(s.dir), timing)}`;
    else {
      const icon = s.status === 'finished' ? '$(check)' : s.status === 'stopped' ? '$(debug-pause)' : '$(error)';
      this.item.text = `${icon} LoRA+ ${s.name}: ${s.status} at step ${s.step}`;
    }
    this.item.show();
  }

  /** The run's timing with this change's events folded in (a rewritten file starts it afresh). */
  private fold(c: RunChange): RunTiming {
    let t = this.timings.get(c.runDir);
    if (!t || c.reset) this.timings.set(c.runDir, (t = new RunTiming()));
    for (const e of c.events) {
      if (e.type === 'run_start') this.timings.set(c.runDir, (t = new RunTiming()));
      t.fold(e);
    }
    return t;
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}

/** "12/300 · loss 2.431 · 812 tok/s · ETA 3m 05s", or "run: evaluating 32/64 at step 100 · ETA 3m 05s". */
export function statusText(s: RunSummary, tokensPerS: number | undefined, timing: RunTiming): string {
  const st = s.start;
  const eta = timing.eta();
  const etaText = eta === null ? '' : ` · ETA ${formatDuration(eta)}`;
  const phase = timing.phase;
  if (phase.kind === 'evaluating') return `${s.name}: ${phaseText(phase)} at step ${phase.step}${etaText}`;
  if (!st || !s.step || s.step <= st.start_step)
    return `${s.name}: starting${st ? ` on ${backendSummary(st).text}` : ''}`;
  const loss = s.lastLoss !== null ? ` · loss ${s.lastLoss.toFixed(3)}` : '';
  const speed = tokensPerS !== undefined ? ` · ${Math.round(tokensPerS)} tok/s` : '';
  return `${s.step}/${st.total_steps}${loss}${speed}${etaText}`;
}

/** The notification's line while the run starts: where it computes, then the baseline eval's progress. */
function startMessage(c: RunChange): string | undefined {
  const last = c.events.at(-1);
  if (last?.type === 'run_start') return `starting on ${backendSummary(last).text}`;
  if (last?.type === 'eval_progress') return `baseline eval: ${last.done}/${last.total} examples`;
  if (last?.type === 'eval') return `baseline eval loss ${last.loss.toFixed(4)}; first step…`;
  return undefined;
}
