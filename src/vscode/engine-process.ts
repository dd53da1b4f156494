// The one way the extension host starts the engine: a Node child process (dist/engine-child.js, src/cli/child.ts)
// that answers one typed request (src/protocol/host.ts). Training, merge, compare and evaluation all go through
// here, so the host never loads TensorFlow.js and a crash or an out-of-memory in the engine never takes the editor
// down. The outcome is the engine's answer, or a structured error when the process ended without one. A chat lives
// on: the host sends it more with `send` and hears its answers through `onChat` until it stops it.
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import type { ChatCommand, ChatToHost } from '../protocol/chat';
import type { ErrorInfo } from '../protocol/errors';
import type { EngineEvent } from '../protocol/events';
import { isEngineToHost, type EngineMethod, type EngineRequests, type HostToEngine } from '../protocol/host';
import type { TuneEvent } from '../protocol/tune';

export type Outcome<M extends EngineMethod> =
  { ok: true; result: EngineRequests[M]['result'] } | { ok: false; error: ErrorInfo; cancelled: boolean };

export interface EngineCall<M extends EngineMethod> {
  readonly child: ChildProcess;
  /** Never rejects: the answer, or why there is none (a crash, a kill, a failed start). */
  readonly outcome: Promise<Outcome<M>>;
  /** Asks the engine to stop (training saves a checkpoint first); the outcome still comes. */
  stop(): void;
  /** Ends the process now (a merge or comparison nobody waits for any more). */
  cancel(): void;
  /** A further message for the running request (a chat's say, reset, …), tagged with its id. */
  send(m: ChatCommand): void;
}

export interface EngineHandlers {
  cwd: string;
  onEvent?: (event: EngineEvent) => void; // training
  onLog?: (line: string) => void; // progress of merge, compare, evaluate
  onChat?: (m: ChatToHost) => void; // a chat's answers
  onTune?: (event: TuneEvent) => void; // a tune's events (its trials' run events come through onEvent)
  onOutput?: (line: string) => void; // the process's own stdout/stderr, less native noise (setEngineDebugLog)
}

let nextId = 1;
let debugLog: (line: string) => void = () => {};

/** Where native libraries' chatter goes (activate: the output channel at debug level); never a user's eyes. */
export function setEngineDebugLog(sink: (line: string) => void): void {
  debugLog = sink;
}

// What native libraries print on the engine process's stderr while a backend starts: Dawn (WebGPU) probing Vulkan
// ("Warning: Couldn't load Vulkan … BackendVk.cpp:368", "…artificially reduced…"), Mesa, TensorFlow's C++ logs and
// Node's own warnings. None of it is news for the user; a crash's message and stack are, and stay in the log.
const NATIVE_NOISE = [
  /\.(?:cpp|cc|cxx|mm|h):\d+/, // a native source location
  /\b(?:Dawn|Vulkan|vulkan|BackendVk|Vk[A-Z]\w*|lavapipe|llvmpipe|MESA|Mesa|libvulkan|SwiftShader|D3D12)\b/,
  /^Warning: /, // Dawn's log prefix (Node's own warnings start "(node:<pid>)")
  /artificially reduced/,
  /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?: [IWEF] /, // TensorFlow's C++ logging
  /^[IWEF]\d{4} \d\d:\d\d:\d\d/, // glog
  /^\(node:\d+\) \w*Warning/,
  /^\(Use `node --trace-\w+/,
];

/** Whether a line of the engine's stdout/stderr is native library chatter (debug level) rather than news. */
export function isNativeNoise(line: string): boolean {
  return NATIVE_NOISE.some((re) => re.test(line));
}

export function startEngine<M extends EngineMethod>(
  extensionPath: string,
  method: M,
  params: EngineRequests[M]['params'],
  h: EngineHandlers,
): EngineCall<M> {
  const id = nextId++;
  const child = fork(path.join(extensionPath, 'dist', 'engine-child.js'), [], {
    cwd: h.cwd,
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    execArgv: [], // not the host's own flags (an --inspect of a debugged extension host would clash)
    env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
  });
  for (const stream of [child.stdout, child.stderr])
    stream?.on(
      'data',
      lines((l) => (isNativeNoise(l) ? debugLog(l) : h.onOutput?.(l))),
    );
  let answer: Outcome<M> | null = null;
  let cancelled = false;
  child.on('message', (m: unknown) => {
    if (!isEngineToHost(m) || m.id !== id) return;
    if (m.type === 'event') h.onEvent?.(m.event);
    else if (m.type === 'log') h.onLog?.(m.line);
    else if (m.type === 'tune') h.onTune?.(m.event);
    else if (m.type !== 'response') h.onChat?.(m);
    else if ('error' in m) answer = { ok: false, error: m.error, cancelled: false };
    else answer = { ok: true, result: m.result as EngineRequests[M]['result'] };
  });
  const outcome = new Promise<Outcome<M>>((resolve) => {
    child.on('error', (err) =>
      resolve({ ok: false, cancelled, error: { code: 'engine/start-failed', message: err.message } }),
    );
    child.on('exit', (code, signal) => {
      if (answer) return resolve(answer);
      const how = signal ?? `exit code ${code}`;
      resolve({
        ok: false,
        cancelled,
        error: cancelled
          ? { code: 'engine/cancelled', message: `the ${method} was cancelled` }
          : {
              code: 'engine/crashed',
              message: `the engine process ended unexpectedly (${how})`,
              hint: 'See the LoRA+ output channel; a training run resumes from its last checkpoint once fixed.',
            },
      });
    });
  });
  const send = (m: HostToEngine) => child.connected && child.send(m);
  send({ type: 'request', id, method, params } as HostToEngine);
  return {
    child,
    outcome,
    stop: () => void send({ type: 'stop' }),
    send: (m) => void send({ ...m, id } as HostToEngine),
    cancel: () => {
      cancelled = true;
      child.kill();
    },
  };
}

/** A 'data' listener that calls `each` once per whole line. */
function lines(each: (line: string) => void): (chunk: Buffer) => void {
  let partial = '';
  return (chunk) => {
    const parts = (partial + chunk.toString('utf8')).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) if (l.trim()) each(l);
  };
}
