// The tuner end to end on the real stories260k checkpoint (tiny budgets): successive halving promotes the best
// fraction and continues it from its own checkpoint (no step trained twice), every trial sees the same data, a
// diverging cell is stopped and never wins, the steps spent are what the trials trained, tune.jsonl reads back with
// the typed reader, and the CLI: `tune --json`, the table, and `train` of a config with `learning_rate: auto`.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { tunableConfigFromObject } from '../../../src/config/load';
import { readMetrics } from '../../../src/engine/runs/writer';
import { readTuneEvents, summarizeTuneFolder } from '../../../src/engine/runs/tune-folder';
import { tuneTable } from '../../../src/engine/runs/tune-table';
import { tune } from '../../../src/engine/tune/tune';
import type { EngineEvent, StepEvent } from '../../../src/protocol/events';
import {
  TUNE_EVENT_TYPES,
  type PromoteEvent,
  type RungResultEvent,
  type TuneEvent,
  type TuneResult,
} from '../../../src/protocol/tune';
import { runCli } from '../../helpers/cli';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

/** SST-2 sentiment on 256 rows, batch 8: sentences of different lengths make each batch's token count its own. */
function document(dir: string, training: Record<string, unknown> = {}) {
  return {
    model: STORIES,
    task: 'sequence-classification',
    device: 'wasm',
    output_dir: path.join(dir, 'runs'),
    data: {
      train: path.join(SST2, 'dev.tsv'),
      eval_fraction: 0.25,
      text_field: 'sentence',
      label_field: 'label',
      max_length: 32,
      max_train_samples: 256,
    },
    lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
    training: { learning_rate: 'auto', loraplus_lr_ratio: 'auto', batch_size: 8, max_steps: 9, seed: 5, ...training },
  };
}

const steps = (events: EngineEvent[]) => events.filter((e): e is StepEvent => e.type === 'step');
const of = <T extends TuneEvent['type']>(events: TuneEvent[], type: T) =>
  events.filter((e): e is Extract<TuneEvent, { type: T }> => e.type === type);

describe('tune()', () => {
  before(() => useBackend());

  it('successive halving: the best third continue from their checkpoints; divergence stops a trial; steps add up', async () => {
    const dir = tempDir();
    const events: TuneEvent[] = [];
    const config = tunableConfigFromObject(document(dir), dir);
    // 3 × 2 = 6 trials; lr_A 1 (the fresh head trains at lr_A too) blows up at once: 2 cells diverge, 4 learn.
    const grid = { learning_rate: [5e-4, 2e-3, 1], loraplus_lr_ratio: [1, 16] };
    const r = await tune(config, (e) => events.push(e), undefined, { grid, evalSamples: 32 });
    assert.equal(r.status, 'finished');
    const start = of(events, 'tune_start')[0];
    assert.deepEqual(start.rungs, [1, 3, 9]);
    assert.equal(start.full_grid_steps, 6 * 9);
    assert.equal(r.full_grid_steps, 54);

    // Rung 1: all six; the diverging cells are out, the best ⌈6/3⌉ = 2 of the rest continue, best first.
    const results = of(events, 'rung_result');
    const rung = (k: number) => results.filter((x) => x.rung === k);
    assert.equal(rung(0).length, 6);
    const diverged = rung(0).filter((x) => x.diverged);
    const blowUp = (x: RungResultEvent) => x.trial.startsWith('lr1-');
    assert.deepEqual(
      diverged.map((x) => x.trial).sort(),
      rung(0)
        .filter(blowUp)
        .map((x) => x.trial)
        .sort(),
    );
    const [first, second] = of(events, 'promote') as PromoteEvent[];
    const healthy = rung(0)
      .filter((x) => !x.diverged)
      .sort((a, b) => b.metric! - a.metric! || a.loss! - b.loss!);
    assert.equal(healthy.length, 4);
    assert.deepEqual(
      first.continue,
      healthy.slice(0, 2).map((x) => x.trial),
    );
    assert.deepEqual(
      first.stopped,
      healthy.slice(2).map((x) => x.trial),
    );
    assert.deepEqual(
      rung(1).map((x) => x.trial),
      first.continue,
    );
    assert.equal(second.continue.length, 1);
    assert.deepEqual(
      rung(2).map((x) => x.trial),
      second.continue,
    );
    for (const x of diverged) {
      const end = of(events, 'trial_end').find((e) => e.trial === x.trial)!;
      assert.equal(end.outcome, 'diverged');
      assert.ok(!first.continue.includes(x.trial));
    }
    assert.ok(!blowUp({ trial: r.trial! } as RungResultEvent), 'a diverging cell never wins');
    assert.equal(r.trial, second.continue[0]);

    // The winner's metrics.jsonl: one uninterrupted run with a resume at each rung, every step once.
    const winner = readMetrics(r.run_dir!);
    assert.deepEqual(
      steps(winner).map((e) => e.step),
      [1, 2, 3, 4, 5, 6, 7, 8, 9],
    );
    const starts = winner.flatMap((e) => (e.type === 'run_start' ? [e.start_step] : []));
    assert.deepEqual(starts, [0, 1, 3]);
    assert.deepEqual(winner.filter((e) => e.type === 'end').length, 1, 'earlier rungs’ stops are not in the file');
    assert.ok(fs.existsSync(path.join(r.run_dir!, 'final', 'adapter_model.safetensors')));
    assert.equal(r.eval!.examples, 218, 'the winner is evaluated on the whole held-out set (25% of 872 rows)');

    // Every trial saw the same data: the same batches (their real-token counts) and, before any update, the same loss.
    const trials = start.trials.map((t) => readMetrics(path.join(r.tune_dir, 'trials', t.trial)));
    const tokens = trials.map((m) => steps(m).map((e) => e.tokens_seen));
    for (const t of tokens) assert.deepEqual(t, tokens[0].slice(0, t.length));
    assert.ok(new Set(tokens[0].map((x, i) => x - (tokens[0][i - 1] ?? 0))).size > 1, 'batches differ in size');
    const firstLoss = trials.map((m) => steps(m)[0].loss);
    for (const l of firstLoss) assert.ok(Math.abs(l - firstLoss[0]) < 1e-6, `${l} vs ${firstLoss[0]}`);

    // The steps spent are the steps the trials trained (their metrics), against 6 trials × 9 steps.
    const trained = trials.reduce((s, m) => s + new Set(steps(m).map((e) => e.step)).size, 0);
    const reached = trials.reduce((s, m) => s + Math.max(0, ...steps(m).map((e) => e.step)), 0);
    assert.equal(trained, reached, 'no step trained twice');
    assert.equal(r.spent_steps, trained);
    assert.equal(
      r.spent_steps,
      results.reduce((s, x) => s + x.steps_trained, 0),
    );
    assert.ok(r.spent_steps < r.full_grid_steps);

    // tune.jsonl reads back, typed, as the CLI and the explorer read it.
    const read = readTuneEvents(r.tune_dir);
    assert.deepEqual(read, JSON.parse(JSON.stringify(events)));
    for (const type of TUNE_EVENT_TYPES.filter((t) => t !== 'error')) assert.ok(of(read, type).length, type);
    const s = summarizeTuneFolder(r.tune_dir);
    assert.equal(s.status, 'finished');
    assert.equal(s.winner?.trial, r.trial);
    assert.equal(s.spent_steps, r.spent_steps);
    assert.equal(s.trials.find((t) => t.trial === r.trial)?.state, 'winner');
    assert.equal(s.trials.filter((t) => t.state === 'diverged').length, diverged.length);
    assert.equal(s.trials.filter((t) => t.state === 'eliminated').length, 6 - diverged.length - 1);
  });

  it('loraplus tune --json ends with one JSON object: the winner, its run, its eval, the steps', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'tune.lora.yaml');
    fs.writeFileSync(file, stringify(document(dir, { max_steps: 3 })));
    const { code, out } = await runCli(['tune', file, '--grid', 'lr=5e-4,2e-3', 'ratio=1,16', '--json']);
    assert.equal(code, 0);
    const r = JSON.parse(out) as TuneResult;
    assert.deepEqual(Object.keys(r).sort(), [
      'eval',
      'final_adapter',
      'full_grid_steps',
      'learning_rate',
      'loraplus_lr_ratio',
      'optimizer',
      'run_dir',
      'spent_steps',
      'status',
      'trial',
      'tune_dir',
    ]);
    assert.ok([5e-4, 2e-3].includes(r.learning_rate!) && [1, 16].includes(r.loraplus_lr_ratio!));
    assert.equal(r.optimizer, 'adamw');
    assert.equal(r.run_dir, path.join(r.tune_dir, 'trials', r.trial!));
    assert.ok(r.eval!.accuracy! >= 0 && r.eval!.loss > 0);
    assert.equal(r.full_grid_steps, 4 * 3);
    assert.equal(r.spent_steps, 4 * 1 + 1 * 2); // rungs 1 and 3: four trials 1 step, the winner alone two more
  });

  it('tune --grid optimizer=adamw,riemannian: riemannian trials per learning rate (no λ), each trains its optimizer', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'opt.lora.yaml');
    fs.writeFileSync(file, stringify(document(dir, { max_steps: 3 })));
    const grid = ['lr=5e-4,2e-3', 'ratio=1,16', 'optimizer=adamw,riemannian'];
    const { code, out } = await runCli(['tune', file, '--grid', ...grid, '--json']);
    assert.equal(code, 0, out);
    const r = JSON.parse(out) as TuneResult;
    assert.ok(['adamw', 'riemannian'].includes(r.optimizer!));
    assert.equal(r.full_grid_steps, (4 + 2) * 3, '2 × 2 adamw cells and 2 riemannian ones');
    const s = summarizeTuneFolder(r.tune_dir);
    const riemannian = s.trials.filter((t) => t.settings.optimizer === 'riemannian');
    assert.deepEqual(
      riemannian.map((t) => [t.trial, t.settings.loraplus_lr_ratio]),
      [
        ['lr5e-4-riemannian', 1],
        ['lr2e-3-riemannian', 1],
      ],
    );
    for (const t of s.trials) {
      const start = readMetrics(path.join(r.tune_dir, 'trials', t.trial)).find((e) => e.type === 'run_start');
      assert.ok(start?.type === 'run_start', t.trial);
      assert.equal(start.optimizer, t.settings.optimizer, `${t.trial} trains its optimizer`);
      const [a, b] = start.groups;
      assert.ok(Math.abs(b.lr / a.lr - t.settings.loraplus_lr_ratio) < 1e-9, `${t.trial}: lr_B / lr_A`);
    }
    const table = tuneTable(s).join('\n');
    assert.match(table, /^optimizer riemannian\nlr_A\s+no λ$/m);
    assert.match(table, /^lr_A \\ λ\s+1\s+16$/m);
  });

  it('train of a config with learning_rate: auto tunes, trains the winner to max_steps, and prints the table', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'auto.lora.yaml');
    fs.writeFileSync(file, stringify(document(dir, { loraplus_lr_ratio: 16, max_steps: 3, eval_every: 1 })));
    const { code, out } = await runCli(['train', file]);
    assert.equal(code, 0, out);
    const [tuneDir] = fs.readdirSync(path.join(dir, 'runs')).map((n) => path.join(dir, 'runs', n));
    const s = summarizeTuneFolder(tuneDir);
    assert.equal(s.status, 'finished');
    assert.deepEqual(s.start!.axes.loraplus_lr_ratio, [16], 'the number beside auto stays fixed');
    assert.equal(s.start!.axes.learning_rate.length, 4);
    const run = s.winner!.run_dir;
    const winner = readMetrics(run);
    assert.equal(
      winner.at(-1)?.type === 'end' && winner.at(-1),
      winner.find((e) => e.type === 'end'),
    );
    assert.ok(winner.some((e) => e.type === 'end' && e.status === 'finished' && e.step === 3));
    const trialConfig = fs.readFileSync(path.join(run, 'config.yaml'), 'utf8');
    assert.match(trialConfig, new RegExp(`learning_rate: ${s.winner!.settings.learning_rate}`));
    // The table: the grid (one row per lr_A, a column for λ 16), the rungs, the winner, the cost.
    assert.match(out, /^lr_A \\ λ\s+16$/m);
    assert.match(out, /^rung 1 · 1 steps · 4 trials → 1 continue: /m);
    assert.match(out, new RegExp(`^winner  ${s.winner!.trial}: lr_A .* · λ 16 `, 'm'));
    assert.match(out, /^spent   6 of the full grid's 12 steps \(50%\)$/m);
    assert.ok(out.includes('★'));
  });
});
