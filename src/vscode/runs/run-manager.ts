// The runs this window started: one engine process each (engine-process.ts), so a crash or an out-of-memory in
// training never takes the extension host down. It forwards the engine's events to whoever listens (dashboards,
// the status bar, the run explorer, the output channel); it owns the processes and nothing else.
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { createRenderer } from '../../engine/runs/render';
import { formatError, type ErrorInfo } from '../../protocol/errors';
import type { EngineEvent } from '../../protocol/events';
import { startEngine, type EngineCall } from '../engine-process';

export interface RunEvent {
  runDir: string;
  event: EngineEvent;
}

export interface LiveRun {
  configFile: string;
  runDir: string | null; // known after run_start
  child: ChildProcess;
  call: EngineCall<'train'>;
  last: EngineEvent | null;
  stopping: boolean;
  ended: Promise<{ status: 'finished' | 'stopped' | 'failed'; error?: ErrorInfo; runDir: string | null }>;
}

export class RunManager implements vscode.Disposable {
  private readonly live = new Set<LiveRun>();
  private readonly eventEmitter = new vscode.EventEmitter<RunEvent>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  /** Every engine event of every live run, with its run folder. */
  readonly onEvent = this.eventEmitter.event;
  /** A run started or ended. */
  readonly onDidChange = this.changeEmitter.event;

  constructor(
    private readonly extensionPath: string,
    private readonly output: (line: string) => void,
  ) {}

  private log(line: string): void {
    if (!this.closed) this.output(line); // the output channel is gone once the window closes
  }

  private closed = false;

  /** True once the window is closing: what a run does after that is no longer shown. */
  get disposed(): boolean {
    return this.closed;
  }

  runs(): LiveRun[] {
    return [...this.live];
  }

  /** The live run training `runDir`, if this window started it. */
  find(runDir: string): LiveRun | undefined {
    const want = path.resolve(runDir);
    return this.runs().find((r) => r.runDir && path.resolve(r.runDir) === want);
  }

  /** Starts the run in its own engine process. */
  start(configFile: string, opts: { resume?: boolean; runDir?: string } = {}): LiveRun {
    const tag = () => path.basename(run.runDir ?? configFile);
    const log = (l: string) => this.log(`[${tag()}] ${l}`);
    // The engine's lines in the output channel, as the CLI prints them without a terminal (plain, every ~2 s).
    const lines = { isTTY: false, write: (s: string) => s.split('\n').filter(Boolean).forEach(log) };
    const render = createRenderer(lines as unknown as NodeJS.WriteStream);
    const call = startEngine(
      this.extensionPath,
      'train',
      { configFile, runDir: opts.runDir, resume: Boolean(opts.resume) },
      {
        cwd: path.dirname(configFile),
        onOutput: log,
        onEvent: (event) => {
          if (event.type === 'run_start') run.runDir = event.run_dir;
          run.last = event;
          render(event);
          if (run.runDir) this.eventEmitter.fire({ runDir: run.runDir, event });
        },
      },
    );
    const ended = call.outcome.then((o): Awaited<LiveRun['ended']> => {
      this.live.delete(run);
      const result = o.ok
        ? { status: o.result.status, runDir: o.result.runDir }
        : { status: 'failed' as const, error: o.error, runDir: run.runDir };
      if (result.error && run.last?.type !== 'end') log(`error: ${formatError(result.error)}`);
      this.changeEmitter.fire();
      return result;
    });
    const run: LiveRun = {
      configFile,
      runDir: opts.runDir ?? null,
      child: call.child,
      call,
      last: null,
      stopping: false,
      ended,
    };
    this.live.add(run);
    this.changeEmitter.fire();
    return run;
  }

  /** Asks the run to save a checkpoint and end; resolves when it has. */
  async stop(run: LiveRun): Promise<void> {
    if (!run.stopping) {
      run.stopping = true;
      run.call.stop();
    }
    await run.ended;
  }

  dispose(): void {
    this.closed = true;
    // Closing the window: each child sees its IPC channel close, saves a checkpoint and exits on its own.
    for (const r of this.live) r.call.stop();
    this.eventEmitter.dispose();
    this.changeEmitter.dispose();
  }
}
