// The engine process (dist/engine-child.js), forked by the extension host: it receives one request (train, merge,
// compare, evaluate, download, tune or export; src/protocol/host.ts), does it, answers `{id, result}` or `{id, error}`, and
// exits. Training forwards every engine event; a tune (or a train whose config says auto) its tune events and its
// trials' engine events; the others send their progress lines. 'stop', a closed IPC channel (the host
// went away) and SIGTERM abort a run the way the CLI's Ctrl-C does: a checkpoint first, then the end (a download keeps
// what arrived, for the next one to continue). A chat stays: it answers the host's further messages until the host
// stops it or goes away.
import * as path from 'node:path';
import { autoKeys, requireResolved, resumeAutoError } from '../config/auto';
import type { TunableConfig } from '../config/schema';
import { requireCheckedTunable } from '../engine/checks/config';
import { compare, evaluateAdapters } from '../engine/compare/compare';
import { downloadModel, progressLine, type DownloadProgress } from '../engine/hub/download';
import { exportJob } from '../engine/export/job';
import { mergeAdapters } from '../engine/merge/merge';
import { serveChat } from '../engine/train/chat-serve';
import { train } from '../engine/train/train';
import { tuneSettings } from '../engine/tune/plan';
import { tune, type TuneOptions } from '../engine/tune/tune';
import { isHostToChat, type HostToChat } from '../protocol/chat';
import { toErrorInfo } from '../protocol/errors';
import type { EngineMethod, EngineRequest, EngineRequests, EngineToHost, HostToEngine } from '../protocol/host';

const controller = new AbortController();
let busy = false;
let toChat: ((m: HostToChat) => void) | null = null; // the running chat's inbox

function send(m: EngineToHost): void {
  if (process.connected) process.send!(m);
}

type Handler<M extends EngineMethod> = (
  params: EngineRequests[M]['params'],
  id: number,
) => Promise<EngineRequests[M]['result']>;

const HANDLERS: { [M in EngineMethod]: Handler<M> } = {
  train: async (p, id) => {
    const file = path.resolve(p.configFile);
    const tunable = requireCheckedTunable(file);
    if (autoKeys(tunable).length) {
      if (p.resume) throw resumeAutoError(tunable, file);
      // `auto`: the tune's last step trains the winner to the full length; that is the run.
      const r = await runTune(tunable, id, { configFile: file, tuneDir: p.runDir });
      return { status: r.status, runDir: r.run_dir ?? r.tune_dir };
    }
    const config = requireResolved(tunable, file); // nothing is auto here
    const onEvent = (event: Parameters<Parameters<typeof train>[1]>[0]) => send({ type: 'event', id, event });
    const opts = { runDir: p.runDir, resume: p.resume, configFile: file, python: p.python };
    const r = await train(config, onEvent, controller.signal, opts);
    return { status: r.status, runDir: r.runDir };
  },
  tune: (p, id) => {
    const file = path.resolve(p.configFile);
    const settings = tuneSettings({
      grid: p.grid,
      budget: p.budget,
      eta: p.eta,
      rungs: p.rungs,
      evalSamples: p.evalSamples,
    });
    return runTune(requireCheckedTunable(file), id, { ...settings, configFile: file, tuneDir: p.tuneDir });
  },
  merge: (p, id) => mergeAdapters({ ...p, log: (line) => send({ type: 'log', id, line }) }),
  compare: async (p) => compare(p.paths, { pairs: p.pairs, grid: p.grid }),
  evaluate: (p) => evaluateAdapters(p.adapters, path.resolve(p.evalConfig), p.device),
  download: (p, id) => {
    const log = (line: string) => send({ type: 'log', id, line });
    let last = 0; // progress lines at most twice a second, and when a file is done
    const onProgress = (d: DownloadProgress) => {
      if (Date.now() - last < 500 && d.fileBytes < d.fileSize) return;
      last = Date.now();
      log(progressLine(d));
    };
    return downloadModel(p.repoId, { revision: p.revision, signal: controller.signal, log, onProgress });
  },
  export: (p) => {
    const file = path.resolve(p.configFile);
    const config = requireResolved(requireCheckedTunable(file), file);
    return exportJob(config, { out: path.resolve(path.dirname(file), p.out), runDir: p.runDir, configFile: file });
  },
  chat: (p, id) => {
    const server = serveChat(p, id, send, controller.signal);
    toChat = server.deliver;
    return server.done;
  },
};

function runTune(config: TunableConfig, id: number, opts: TuneOptions) {
  return tune(config, (event) => send({ type: 'tune', id, event }), controller.signal, {
    ...opts,
    onTrialEvent: (_, event) => send({ type: 'event', id, event }),
  });
}

async function handle(m: EngineRequest): Promise<void> {
  if (busy) return; // one request per process
  busy = true;
  try {
    const handler = HANDLERS[m.method] as Handler<EngineMethod>;
    const result = await handler(m.params, m.id);
    send({ type: 'response', id: m.id, result } as EngineToHost);
    process.exitCode = 0;
  } catch (err) {
    send({ type: 'response', id: m.id, error: toErrorInfo(err) });
    process.exitCode = 1;
  } finally {
    // Let IPC flush, then leave even if a backend keeps handles open (wasm threads, Dawn).
    setTimeout(() => process.exit(), 200).unref();
    if (process.connected) process.disconnect?.(); // the host may have gone first
  }
}

process.on('message', (m: HostToEngine) => {
  if (m.type === 'request') void handle(m);
  else if (m.type === 'stop') controller.abort();
  else if (isHostToChat(m)) toChat?.(m);
});
process.on('disconnect', () => controller.abort());
process.on('SIGTERM', () => controller.abort());
process.on('SIGINT', () => controller.abort());
