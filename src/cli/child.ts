// The entry of a run's child process (dist/engine-child.js), forked by the extension host: it receives one 'start'
// message, trains, forwards every engine event over IPC, and exits. 'stop', a closed IPC channel (the host went away)
// and SIGTERM all abort the run the same way the CLI's Ctrl-C does: a checkpoint first, then the end.
import * as path from 'node:path';
import { toErrorInfo } from '../protocol/errors';
import type { ChildToHost, HostToChild } from '../protocol/host';
import { requireCheckedConfig } from '../engine/checks/config';
import { train } from '../engine/train/train';

const controller = new AbortController();
let runDir: string | null = null;

function send(m: ChildToHost): void {
  if (process.connected) process.send!(m);
}

async function run(m: Extract<HostToChild, { type: 'start' }>): Promise<void> {
  try {
    const config = requireCheckedConfig(path.resolve(m.configFile));
    const r = await train(
      config,
      (event) => {
        if (event.type === 'run_start') runDir = event.run_dir;
        send({ type: 'event', event });
      },
      controller.signal,
      { runDir: m.runDir, resume: m.resume },
    );
    send({ type: 'done', status: r.status, runDir: r.runDir });
    process.exitCode = 0;
  } catch (err) {
    send({ type: 'failed', error: toErrorInfo(err), runDir });
    process.exitCode = 1;
  } finally {
    // Let IPC flush, then leave even if a backend keeps handles open (wasm threads, Dawn).
    setTimeout(() => process.exit(), 200).unref();
    process.disconnect?.();
  }
}

process.on('message', (m: HostToChild) => {
  if (m.type === 'start') void run(m);
  else if (m.type === 'stop') controller.abort();
});
process.on('disconnect', () => controller.abort());
process.on('SIGTERM', () => controller.abort());
process.on('SIGINT', () => controller.abort());
