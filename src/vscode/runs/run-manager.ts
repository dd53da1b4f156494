// The runs this window started: one child process each (dist/engine-child.js), so a crash or an out-of-memory in
// training never takes the extension host down. It forwards the engine's events to whoever listens (dashboards,
// the status bar, the run explorer, the output channel); it owns the processes and nothing else.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { createRenderer } from '../../engine/runs/render';
import { formatError, type ErrorInfo } from '../../protocol/errors';
import type { EngineEvent } from '../../protocol/events';
import type { ChildToHost, HostToChild } from '../../protocol/host';

export interface RunEvent {
  runDir: string;
  event: EngineEvent;
}

export interface LiveRun {
  configFile: string;
  runDir: string | null; // known after run_start
  child: ChildProcess;
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

  /** Forks the engine and starts the run; resolves once the child has been told what to run. */
  start(configFile: string, opts: { resume?: boolean; runDir?: string } = {}): LiveRun {
    const child = fork(path.join(this.extensionPath, 'dist', 'engine-child.js'), [], {
      cwd: path.dirname(configFile),
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [], // not the host's own flags (an --inspect of a debugged extension host would clash)
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
    });
    let settle!: (v: Awaited<LiveRun['ended']>) => void;
    const run: LiveRun = {
      configFile,
      runDir: opts.runDir ?? null,
      child,
      last: null,
      stopping: false,
      ended: new Promise((r) => (settle = r)),
    };
    this.live.add(run);
    const tag = () => path.basename(run.runDir ?? configFile);
    child.stdout?.on('data', (d: Buffer) =>
      d
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => this.log(`[${tag()}] ${l}`)),
    );
    child.stderr?.on('data', (d: Buffer) =>
      d
        .toString()
        .split('\n')
        .filter(Boolean)
        .forEach((l) => this.log(`[${tag()}] ${l}`)),
    );
    // The engine's lines in the output channel, as the CLI prints them without a terminal (plain, every ~2 s).
    const lines = {
      isTTY: false,
      write: (s: string) =>
        s
          .split('\n')
          .filter(Boolean)
          .forEach((l) => this.log(`[${tag()}] ${l}`)),
    };
    const render = createRenderer(lines as unknown as NodeJS.WriteStream);
    let outcome: Awaited<LiveRun['ended']> | null = null;
    child.on('message', (m: ChildToHost) => {
      if (m.type === 'event') {
        if (m.event.type === 'run_start') run.runDir = m.event.run_dir;
        run.last = m.event;
        render(m.event);
        if (run.runDir) this.eventEmitter.fire({ runDir: run.runDir, event: m.event });
      } else if (m.type === 'done') outcome = { status: m.status, runDir: m.runDir };
      else outcome = { status: 'failed', error: m.error, runDir: m.runDir };
    });
    child.on('exit', (code, signal) => {
      this.live.delete(run);
      const result = outcome ?? {
        status: 'failed' as const,
        runDir: run.runDir,
        error: {
          code: 'run/crashed',
          message: `the training process ended unexpectedly (${signal ?? `exit code ${code}`})`,
          hint: 'See the LoRA+ output channel; resume from the last checkpoint once fixed.',
        },
      };
      if (result.error && run.last?.type !== 'end') this.log(`[${tag()}] error: ${formatError(result.error)}`);
      settle(result);
      this.changeEmitter.fire();
    });
    child.send({ type: 'start', configFile, runDir: opts.runDir, resume: Boolean(opts.resume) } satisfies HostToChild);
    this.changeEmitter.fire();
    return run;
  }

  /** Asks the run to save a checkpoint and end; resolves when it has. */
  async stop(run: LiveRun): Promise<void> {
    if (!run.stopping && run.child.connected) {
      run.stopping = true;
      run.child.send({ type: 'stop' } satisfies HostToChild);
    }
    await run.ended;
  }

  dispose(): void {
    this.closed = true;
    // Closing the window: each child sees its IPC channel close, saves a checkpoint and exits on its own.
    for (const r of this.live) if (r.child.connected) r.child.send({ type: 'stop' } satisfies HostToChild);
    this.eventEmitter.dispose();
    this.changeEmitter.dispose();
  }
}
