// Messages between the extension host and a run's child process (Node IPC: `child_process.fork` + `process.send`).
// The child runs the engine's `train(config, onEvent, signal)` and forwards every event; the host never imports
// TensorFlow.js, so a crash or an out-of-memory in training never takes the extension host down.
import type { ErrorInfo } from './errors';
import type { EngineEvent } from './events';

/** Host → child: what to run, then (maybe) a request to stop. */
export type HostToChild = { type: 'start'; configFile: string; runDir?: string; resume: boolean } | { type: 'stop' }; // save a checkpoint, then end (the engine's AbortSignal)

/** Child → host: the engine's events, then how it ended. */
export type ChildToHost =
  | { type: 'event'; event: EngineEvent }
  | { type: 'done'; status: 'finished' | 'stopped'; runDir: string }
  | { type: 'failed'; error: ErrorInfo; runDir: string | null };
