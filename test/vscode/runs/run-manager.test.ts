// The extension host's RunManager with real child processes: two runs train at once, each event reaches the listeners
// tagged with its own run folder, and stopping one (a checkpoint first) leaves the other running to the end. A tune
// (a `train` of a config that says auto, or a `tune` request) reports its tune events with its folder and its
// trials' run events with theirs, and a stop ends it with the current trial's checkpoint saved.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { listCheckpoints } from '../../../src/engine/runs/checkpoints';
import type { EngineEvent } from '../../../src/protocol/events';
import type { TuneEvent } from '../../../src/protocol/tune';
import { SST2, STORIES, tempDir } from '../../helpers/shared';
import { installVscodeStub } from '../vscode-stub';

installVscodeStub();
const { RunManager } =
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require('../../../src/vscode/runs/run-manager') as typeof import('../../../src/vscode/runs/run-manager');

/** An "extension folder" whose dist/engine-child.js loads src/cli/child.ts through tsx (no build needed). */
function extensionDir(): string {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'dist'));
  const child = path.resolve(__dirname, '..', '..', '..', 'src', 'cli', 'child.ts');
  fs.writeFileSync(
    path.join(dir, 'dist', 'engine-child.js'),
    `require(${JSON.stringify(require.resolve('tsx/cjs'))});\nrequire(${JSON.stringify(child)});\n`,
  );
  return dir;
}

function config(dir: string, name: string, maxSteps: number, auto = false): string {
  const file = path.join(dir, `${name}.lora.yaml`);
  // auto: the tuner picks learning_rate and λ, judging trials on a held-out quarter of the rows.
  const rates = auto ? { learning_rate: 'auto', loraplus_lr_ratio: 'auto' } : { learning_rate: 1e-3 };
  fs.writeFileSync(
    file,
    stringify({
      model: STORIES,
      task: 'causal-lm',
      device: 'wasm',
      output_dir: 'runs',
      run_name: name,
      data: {
        train: path.join(SST2, 'dev.tsv'),
        text_field: 'sentence',
        max_length: 32,
        max_train_samples: 64,
        ...(auto ? { eval_fraction: 0.25 } : {}),
      },
      lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { ...rates, batch_size: 4, max_steps: maxSteps, log_every: 1 },
    }),
  );
  return file;
}

describe('RunManager', () => {
  let ext: string;
  before(() => (ext = extensionDir()));

  it('runs two trainings at once, each in its own process, and stops one without touching the other', async () => {
    const dir = tempDir();
    const lines: string[] = [];
    const manager = new RunManager(ext, (l) => lines.push(l));
    const seen = new Map<string, EngineEvent[]>();
    manager.onEvent(({ runDir, event }) => seen.set(runDir, [...(seen.get(runDir) ?? []), event]));
    const long = manager.start(config(dir, 'long', 500));
    const short = manager.start(config(dir, 'short', 6));
    assert.notEqual(long.child.pid, short.child.pid);
    assert.equal(manager.runs().length, 2);
    // Stop the long run once both have logged a step: the other keeps going.
    const stopped = new Promise<void>((resolve) => {
      const sub = manager.onEvent(({ event }) => {
        const stepped = (r: typeof long) => r.runDir && seen.get(r.runDir)?.some((e) => e.type === 'step');
        if (event.type === 'step' && stepped(long) && stepped(short)) {
          sub.dispose();
          void manager.stop(long).then(resolve);
        }
      });
    });
    const [a, b] = await Promise.all([long.ended, short.ended, stopped]);
    assert.deepEqual([a.status, b.status], ['stopped', 'finished']);
    const [longDir, shortDir] = [path.join(dir, 'runs', 'long'), path.join(dir, 'runs', 'short')];
    assert.deepEqual([a.runDir, b.runDir], [longDir, shortDir]);
    assert.deepEqual([...seen.keys()].sort(), [longDir, shortDir]);
    for (const [runDir, events] of seen)
      assert.ok(
        events.every((e) => e.type !== 'run_start' || e.run_dir === runDir),
        'events carry their own run folder',
      );
    assert.equal(seen.get(shortDir)!.filter((e) => e.type === 'step').length, 6);
    const longCheckpoints = listCheckpoints(longDir);
    assert.ok(
      longCheckpoints.length === 1 && longCheckpoints[0].step < 500,
      'the stopped run left a resumable checkpoint',
    );
    assert.equal(manager.runs().length, 0);
    assert.ok(
      lines.some((l) => l.startsWith('[long] stopped at step')) &&
        lines.some((l) => l.startsWith('[short] finished at step 6')),
      lines.join('\n'),
    );
    manager.dispose();
  });

  it('a tune: tune events with its folder, trial events with theirs, the winner as result; a stop saves', async () => {
    const dir = tempDir();
    const manager = new RunManager(ext, () => {});
    const tuneEvents: { tuneDir: string; event: TuneEvent }[] = [];
    const runDirs = new Set<string>();
    manager.onTune((e) => tuneEvents.push(e));
    manager.onEvent(({ runDir }) => runDirs.add(runDir));
    // (Start Training of a config that says auto goes the same way: start() and tune() share launch(), and the engine
    // process's `train` runs the same tune; test/engine/tune covers that. Two trials keep this short.)
    const grid = ['lr=5e-4', 'ratio=1,16'];
    const auto = manager.tune({ configFile: config(dir, 'auto', 3, true), grid, evalSamples: 8 });
    const done = await auto.ended;
    const tuneDir = path.join(dir, 'runs', 'auto');
    assert.equal(done.status, 'finished');
    assert.equal(done.tuneDir, tuneDir);
    assert.ok(done.runDir?.startsWith(path.join(tuneDir, 'trials')), String(done.runDir));
    assert.ok(tuneEvents.every((e) => e.tuneDir === tuneDir));
    assert.deepEqual([tuneEvents[0].event.type, tuneEvents.at(-1)!.event.type], ['tune_start', 'tune_end']);
    assert.equal(runDirs.size, 2, "every trial's run events, each with its own folder");
    assert.ok([...runDirs].every((d) => path.dirname(d) === path.join(tuneDir, 'trials')));
    assert.equal(manager.findTune(tuneDir), undefined, 'no longer live');

    // Stopped while the first trial trains: the tune ends stopped, that trial keeps a checkpoint to resume from.
    const long = manager.tune({ configFile: config(dir, 'long', 400, true), grid, rungs: 1 });
    const stopped = new Promise<void>((resolve) => {
      const sub = manager.onEvent(({ event }) => {
        if (event.type !== 'step' || event.step < 2) return;
        sub.dispose();
        assert.ok(long.tuneDir && manager.findTune(long.tuneDir) === long);
        void manager.stop(long).then(resolve);
      });
    });
    const [r] = await Promise.all([long.ended, stopped]);
    assert.equal(r.status, 'stopped');
    assert.equal(r.tuneDir, path.join(dir, 'runs', 'long'));
    const first = path.join(r.tuneDir!, 'trials', 'lr5e-4-ratio1');
    assert.equal(listCheckpoints(first).length, 1, 'the trial training at the stop saved its checkpoint');
    manager.dispose();
  });
});
