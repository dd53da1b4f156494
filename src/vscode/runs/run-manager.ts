// The runs this window started: one engine process each (engine-process.ts), so a crash or an out-of-memory in
// training never takes the extension host down. It forwards the engine's events to whoever listens (dashboards,
// the status bar, the run explorer, the output channel); it owns the processes and nothing else. A tune (`tune`, or
// `train` of a config with `auto`) is one live run too: its runDir follows the trial training now (each trial's
// run_start), its tuneDir comes with tune_start, and its tune events go to onTune.
import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { createRenderer } from '../../engine/runs/render';
import { formatError, type ErrorInfo } from '../../protocol/errors';
import type { EngineEvent } from '../../protocol/events';
import type { TuneEvent, TuneRequest } from '../../protocol/tune';
import { startEngine, type EngineCall, type EngineHandlers, type Outcome } from '../engine-process';

export interface RunEvent {
  runDir: string;
  event: EngineEvent;
}

export interface TuneRunEvent {
  tuneDir: string;
  event: TuneEvent;
}

export interface RunResult {
  status: 'finished' | 'stopped' | 'failed';
  error?: ErrorInfo;
  runDir: string | null; // a tune's: its winner's, trained to the budget
  tuneDir: string | null;
}

export interface LiveRun {
  configFile: string;
  runDir: string | null; // known after run_start; a tune's: the trial training now
  tuneDir: string | null; // a tune's folder, known after tune_start
  child: ChildProcess;
  call: EngineCall<'train'> | EngineCall<'tune'>;
  last: EngineEvent | null;
  stopping: boolean;
  ended: Promise<RunResult>;
}

export class RunManager implements vscode.Disposable {
  private readonly live = new Set<LiveRun>();
  private readonly eventEmitter = new vscode.EventEmitter<RunEvent>();
  private readonly changeEmitter = new vscode.EventEmitter<void>();
  private readonly tuneEmitter = new vscode.EventEmitter<TuneRunEvent>();
  /** Every engine event of every live run, with its run folder. */
  readonly onEvent = this.eventEmitter.event;
  /** Every tune event of every live tune, with its tune folder. */
  readonly onTune = this.tuneEmitter.event;
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

  /** The live tune writing `tuneDir`, if this window started it. */
  findTune(tuneDir: string): LiveRun | undefined {
    const want = path.resolve(tuneDir);
    return this.runs().find((r) => r.tuneDir && path.resolve(r.tuneDir) === want);
  }

  /** Starts the run in its own engine process (a config with `auto` tunes first: see onTune). */
  start(configFile: string, opts: { resume?: boolean; runDir?: string; python?: string } = {}): LiveRun {
    const params = { configFile, runDir: opts.runDir, resume: Boolean(opts.resume), python: opts.python };
    return this.launch(configFile, opts.runDir ?? null, (h) => {
      const call = startEngine(this.extensionPath, 'train', params, h);
      const result = (o: Outcome<'train'>) => (o.ok ? { status: o.result.status, runDir: o.result.runDir } : null);
      return { call, result: call.outcome.then(result) };
    });
  }

  /** Starts a tune (`loraplus tune`) in its own engine process. */
  tune(request: TuneRequest): LiveRun {
    return this.launch(request.configFile, null, (h) => {
      const call = startEngine(this.extensionPath, 'tune', request, h);
      const result = (o: Outcome<'tune'>) => {
        if (!o.ok) return null;
        return { status: o.result.status, runDir: o.result.run_dir, tuneDir: o.result.tune_dir };
      };
      return { call, result: call.outcome.then(result) };
    });
  }

  private launch(
    configFile: string,
    runDir: string | null,
    begin: (h: EngineHandlers) => { call: LiveRun['call']; result: Promise<Partial<RunResult> | null> },
  ): LiveRun {
    const tag = () => path.basename(run.runDir ?? configFile);
    const log = (l: string) => this.log(`[${tag()}] ${l}`);
    // The engine's lines in the output channel, as the CLI prints them without a terminal (plain, every ~2 s).
    const lines = { isTTY: false, write: (s: string) => s.split('\n').filter(Boolean).forEach(log) };
    const render = createRenderer(lines as unknown as NodeJS.WriteStream);
    const { call, result } = begin({
      cwd: path.dirname(configFile),
      onOutput: log,
      onEvent: (event) => {
        if (event.type === 'run_start') run.runDir = event.run_dir;
        run.last = event;
        render(event);
        if (run.runDir) this.eventEmitter.fire({ runDir: run.runDir, event });
      },
      onTune: (event) => {
        if (event.type === 'tune_start') run.tuneDir = event.tune_dir;
        if (event.type === 'rung_result') log(`tune: ${event.trial} ${rungLine(event)}`);
        if (run.tuneDir) this.tuneEmitter.fire({ tuneDir: run.tuneDir, event });
      },
    });
    const ended = Promise.all([call.outcome, result]).then(([o, r]): RunResult => {
      this.live.delete(run);
      const error = o.ok ? undefined : o.error;
      const out: RunResult = { status: 'failed', error, runDir: run.runDir, tuneDir: run.tuneDir, ...r };
      if (error && run.last?.type !== 'end') log(`error: ${formatError(error)}`);
      this.changeEmitter.fire();
      return out;
    });
    const run: LiveRun = {
      configFile,
      runDir,
      tuneDir: null,
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
    this.tuneEmitter.dispose();
  }
}

/** "rung 1, step 3: accuracy 59.4% · eval loss 0.6731" or "diverged at step 1: …", for the output channel. */
function rungLine(e: Extract<TuneEvent, { type: 'rung_result' }>): string {
  if (e.diverged) return `diverged at step ${e.step}: ${e.diverged}`;
  const acc = e.accuracy !== undefined ? `accuracy ${(100 * e.accuracy).toFixed(1)}% · ` : '';
  return `rung ${e.rung + 1}, step ${e.step}: ${acc}eval loss ${e.loss?.toFixed(4) ?? '–'}`;
}
