// The engine process as the extension host drives it (src/vscode/engine-process.ts): a train request → events →
// {id, result}; stop → a checkpoint, then 'stopped'; a bad config → {id, error} with the config's own error, and no
// run folder.
import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { listCheckpoints } from '../../src/engine/runs/checkpoints';
import type { EngineToHost, HostToEngine } from '../../src/protocol/host';
import { SST2, STORIES, tempDir } from '../helpers/shared';

const CHILD = path.resolve(__dirname, '..', '..', 'src', 'cli', 'child.ts');

function writeConfig(dir: string, maxSteps: number, extra: Record<string, unknown> = {}): string {
  const file = path.join(dir, 'tiny.lora.yaml');
  fs.writeFileSync(
    file,
    stringify({
      model: STORIES,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: 'runs',
      run_name: 'child',
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 32, max_train_samples: 64 },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { learning_rate: 1e-3, batch_size: 4, max_steps: maxSteps, log_every: 1, ...extra },
    }),
  );
  return file;
}

/** Forks the engine process, sends a train request, collects its messages; `onMessage` may send more (e.g. stop). */
function runChild(
  params: { configFile: string; resume: boolean },
  onMessage?: (m: EngineToHost, send: (m: HostToEngine) => void) => void,
): Promise<{ messages: EngineToHost[]; code: number | null }> {
  const child = fork(CHILD, [], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, LORAPLUS_WASM_THREADS: '1' },
  });
  const messages: EngineToHost[] = [];
  child.on('message', (m: EngineToHost) => {
    messages.push(m);
    onMessage?.(m, (x) => child.connected && child.send(x));
  });
  child.send({ type: 'request', id: 7, method: 'train', params } satisfies HostToEngine);
  return new Promise((resolve) => child.on('exit', (code) => resolve({ messages, code })));
}

describe('engine child process', () => {
  it('trains, forwards every engine event over IPC, and reports done', async () => {
    const dir = tempDir();
    const { messages, code } = await runChild({ configFile: writeConfig(dir, 3), resume: false });
    assert.equal(code, 0);
    const events = messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
    assert.deepEqual([events[0].type, events.at(-1)!.type], ['run_start', 'end']);
    assert.equal(events.filter((e) => e.type === 'step').length, 3);
    const done = messages.at(-1)!;
    assert.deepEqual(done, {
      type: 'response',
      id: 7,
      result: { status: 'finished', runDir: path.join(dir, 'runs', 'child') },
    });
  });

  it('stops on request after saving a resumable checkpoint', async () => {
    const dir = tempDir();
    const { messages, code } = await runChild({ configFile: writeConfig(dir, 200), resume: false }, (m, send) => {
      if (m.type === 'event' && m.event.type === 'step' && m.event.step === 2) send({ type: 'stop' });
    });
    assert.equal(code, 0);
    const done = messages.at(-1)!;
    assert.equal(done.type, 'response');
    assert.equal(done.type === 'response' && 'result' in done && (done.result as { status: string }).status, 'stopped');
    const checkpoints = listCheckpoints(path.join(dir, 'runs', 'child'));
    assert.ok(
      checkpoints.length === 1 && checkpoints[0].step >= 2 && checkpoints[0].step < 200,
      JSON.stringify(checkpoints),
    );
  });

  it('fails with the config error, and creates no run folder, when the config is bad', async () => {
    const dir = tempDir();
    const { messages, code } = await runChild({
      configFile: writeConfig(dir, 3, { loraplus_lr_ratio: 0.5 }),
      resume: false,
    });
    assert.equal(code, 1);
    const last = messages.at(-1)!;
    assert.equal(last.type === 'response' && 'error' in last, true);
    assert.match(last.type === 'response' && 'error' in last ? last.error.message : '', /loraplus_lr_ratio/);
    assert.equal(fs.existsSync(path.join(dir, 'runs')), false);
  });
});
