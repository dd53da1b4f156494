// Messages between the extension host and the engine process (dist/engine-child.js, Node IPC: `child_process.fork`
// + `process.send`). The host never loads TensorFlow.js: training, merging, comparing and evaluating all run in an
// engine process, one request per process, so a crash or an out-of-memory there never takes the editor down. A
// request carries an id and gets `{id, result}` or `{id, error}` (the engine's structured error); while it works,
// the engine sends training events and progress lines tagged with the same id. A `chat` request lives until the
// host stops it: the host sends it further messages (say, reset, …) and the engine streams answers (./chat.ts).
// A `tune` request (./tune.ts) sends its tune events as `tune` messages (tune.jsonl's lines) and the events of the
// trial runs it trains as `event` messages (each trial's run_start names its run folder); so does a `train` request
// whose config says `learning_rate: auto` or `loraplus_lr_ratio: auto`, which tunes first.
import { CHAT_TO_HOST_TYPES, type ChatRequest, type ChatToHost, type HostToChat } from './chat';
import type { CompareReport, ItemEval } from './compare';
import type { ErrorInfo } from './errors';
import type { EngineEvent } from './events';
import type { Device, MergeRequest, MergeSummary } from './merge';
import type { TuneEvent, TuneRequest, TuneResult } from './tune';

export interface TrainRequest {
  configFile: string;
  runDir?: string; // default: <output_dir>/<run_name>
  resume: boolean; // continue from the run's newest checkpoint
  python?: string; // device: torch: the Python that runs the job (VS Code's Python extension picks it)
}

export interface CompareRequest {
  paths: string[];
  pairs?: 'all' | 'first';
  grid?: boolean;
}

/** Evaluates adapter folders on the eval set of `evalConfig`, each with its own r, lora_alpha and head. */
export interface EvaluateRequest {
  adapters: string[];
  evalConfig: string;
  device?: Device;
}

/** Fetches a Hub model into the Hugging Face cache (`loraplus download`); progress comes as `log` lines. */
export interface DownloadRequest {
  repoId: string; // org/name
  revision?: string; // branch, tag or commit; default main
}

export interface DownloadSummary {
  repoId: string;
  revision: string;
  commit: string;
  snapshot: string; // the cached folder a config's `model:` resolves to
  modelType: string;
  files: string[];
  bytes: number; // the files' total size
  downloaded: number; // bytes that came over the network this time (0: all cached already)
}

/** `loraplus export CONFIG --to accelerate --out DIR [--run-dir RUN]`: a job folder for PyTorch + accelerate. */
export interface ExportRequest {
  configFile: string;
  out: string; // the job folder: new or empty
  runDir?: string; // where the job writes its run folder; default runs/<run name> inside the job folder
}

export interface ExportSummary {
  dir: string;
  runDir: string; // as job.json says it: relative to the job folder unless given absolute
  trainExamples: number;
  evalExamples: number;
  steps: number;
}

/** Each method's parameters and result. */
export interface EngineRequests {
  train: { params: TrainRequest; result: { status: 'finished' | 'stopped'; runDir: string } };
  merge: { params: MergeRequest; result: MergeSummary };
  compare: { params: CompareRequest; result: CompareReport };
  evaluate: { params: EvaluateRequest; result: ItemEval[] };
  download: { params: DownloadRequest; result: DownloadSummary };
  chat: { params: ChatRequest; result: { turns: number } }; // ends on `stop` or when the host goes away
  tune: { params: TuneRequest; result: TuneResult };
  export: { params: ExportRequest; result: ExportSummary };
}

export type EngineMethod = keyof EngineRequests;

export type EngineRequest = {
  [M in EngineMethod]: { type: 'request'; id: number; method: M; params: EngineRequests[M]['params'] };
}[EngineMethod];

/** Host → engine: one request, then perhaps a stop (training saves a checkpoint first: the engine's AbortSignal). */
export type HostToEngine = EngineRequest | { type: 'stop' } | HostToChat;

/** Engine → host: what happens while a request runs, then its answer. */
export type EngineToHost =
  | { type: 'event'; id: number; event: EngineEvent } // a training run's events
  | { type: 'tune'; id: number; event: TuneEvent } // a tune's events
  | { type: 'log'; id: number; line: string } // progress of a merge, a comparison, an evaluation or a download
  | ChatToHost // a chat's answers
  | EngineResponse;

export type EngineResponse =
  | {
      [M in EngineMethod]: { type: 'response'; id: number; result: EngineRequests[M]['result'] };
    }[EngineMethod]
  | { type: 'response'; id: number; error: ErrorInfo };

export function isEngineToHost(m: unknown): m is EngineToHost {
  if (typeof m !== 'object' || m === null) return false;
  const { type, id } = m as { type?: unknown; id?: unknown };
  return (
    typeof id === 'number' &&
    (type === 'event' ||
      type === 'log' ||
      type === 'tune' ||
      type === 'response' ||
      CHAT_TO_HOST_TYPES.includes(String(type)))
  );
}
