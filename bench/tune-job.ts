// One job of `npm run bench:tune` (bench/tune.ts): one task at one seed. It runs the real tuner (tune(), the default
// grid and schedule), then completes the full grid from the tuner's own trial folders: every trial the tuner stopped
// early resumes from its checkpoint to the budget (a resumed run trains exactly as an uninterrupted one, so this is
// the grid, at no extra cost for the steps the tuner already trained). Every cell's final adapter, and the tuner's
// winner, is then evaluated on the whole dev set; so is one run with the riemannian optimizer at the default learning
// rate. The job writes its result as JSON; the parent prints the table.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tunableConfigFromObject } from '../src/config/load';
import { defaults } from '../src/config/schema';
import type { TrainConfig, TunableConfig } from '../src/config/schema';
import { withAutoDefaults } from '../src/config/auto';
import { selectBackend } from '../src/engine/backend/select';
import { train } from '../src/engine/train/train';
import { evaluateAdapter } from '../src/engine/tune/final-eval';
import { optimizerChoices, planTune, trialConfig, trialDir, type TunePlan } from '../src/engine/tune/plan';
import { tune } from '../src/engine/tune/tune';
import { LoraPlusError } from '../src/protocol/errors';
import type { EvalFigures, RungResultEvent, TuneEvent, TuneResult } from '../src/protocol/tune';

export type TaskId = 'cls' | 'lm';
export const TASKS: Record<TaskId, { label: string; steps: number }> = {
  cls: { label: 'SST-2 classification (fresh head, LoRA r 8 on all linear layers)', steps: 600 },
  lm: { label: 'causal-LM adaptation on SST-2 sentences (LoRA r 8 on q, v)', steps: 300 },
};

export interface Cell {
  trial: string;
  learning_rate: number;
  loraplus_lr_ratio: number;
  final: EvalFigures | null; // the adapter at the budget on the whole dev set; null when it diverged
  diverged: string | null; // why the tuner or the completion stopped it
}

export interface JobResult {
  task: TaskId;
  seed: number;
  steps: number;
  metric: 'accuracy' | 'perplexity';
  cells: Cell[];
  tuner: { trial: string; eval: EvalFigures; spent_steps: number; full_grid_steps: number; elapsed_s: number };
  riemannian: { learning_rate: number; final: EvalFigures | null; diverged: string | null } | null;
  elapsed_s: number;
  grid_from?: string; // the grid (and riemannian) came from this earlier result; only the tuner ran this time
}

const SHARED = path.resolve(__dirname, '..', '..', 'shared');
const log = (s: string) => process.stderr.write(`${s}\n`);

/** The task's config with learning_rate and loraplus_lr_ratio auto: the demo's settings at the lengths. */
function taskConfig(task: TaskId, seed: number, dir: string, steps: number): TunableConfig {
  const cls = task === 'cls';
  const doc = {
    model: path.join(SHARED, 'models', 'stories260k'),
    task: cls ? 'sequence-classification' : 'causal-lm',
    device: 'wasm',
    output_dir: dir,
    data: {
      train: path.join(SHARED, 'data', 'glue-sst2', 'train.tsv'),
      eval: path.join(SHARED, 'data', 'glue-sst2', 'dev.tsv'),
      text_field: 'sentence',
      label_field: 'label',
      max_length: cls ? 40 : 32,
      max_train_samples: cls ? 10000 : 20000,
    },
    lora: { r: 8, lora_alpha: 16, target_modules: cls ? 'all-linear' : ['q_proj', 'v_proj'] },
    training: {
      learning_rate: 'auto',
      loraplus_lr_ratio: 'auto',
      batch_size: 32,
      lr_scheduler: 'linear',
      warmup_steps: Math.round(steps / 15),
      max_steps: steps,
      log_every: 10,
      seed,
    },
  };
  return tunableConfigFromObject(doc, dir);
}

/**
 * One task × seed. With `gridFrom` (an earlier result of the same task, seed and steps: `--grid-from`), only the
 * tuner runs: its trials train exactly as that grid's cells did (same seed, data, schedule), so the grid stands;
 * the tuner's pick evaluated again must equal its grid cell, which the report checks.
 */
export async function runJob(
  task: TaskId,
  seed: number,
  steps: number,
  dir: string,
  gridFrom?: { file: string; result: JobResult },
): Promise<JobResult> {
  const began = Date.now();
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  await selectBackend('wasm');
  const config = taskConfig(task, seed, dir, steps);
  const events: TuneEvent[] = [];
  const onEvent = (e: TuneEvent) => {
    events.push(e);
    if (e.type === 'rung_result') log(`[${task} s${seed}] ${e.trial} step ${e.step}: ${e.metric ?? e.diverged}`);
  };
  const r = await tune(config, onEvent, undefined, { budget: { steps }, tuneDir: path.join(dir, 'tune') });
  const plan = planTune(config, { budget: { steps } }, () => steps);
  const results = events.filter((e): e is RungResultEvent => e.type === 'rung_result');
  const cells: Cell[] = gridFrom ? gridFrom.result.cells : [];
  for (const t of gridFrom ? [] : plan.trials) {
    const mine = results.filter((x) => x.trial === t.trial);
    const stoppedAs = mine.find((x) => x.diverged)?.diverged ?? null;
    const cell = await completeCell(plan, config, r, t, stoppedAs);
    cells.push(cell);
    log(`[${task} s${seed}] grid ${t.trial}: ${cell.final ? JSON.stringify(cell.final) : cell.diverged}`);
  }
  const winner = r.eval && r.trial ? r.trial : null;
  if (!winner || !r.eval) throw new Error(`the tune of ${task} seed ${seed} ended without a winner (${r.status})`);
  return {
    task,
    seed,
    steps,
    metric: task === 'cls' ? 'accuracy' : 'perplexity',
    cells,
    tuner: {
      trial: winner,
      eval: r.eval,
      spent_steps: r.spent_steps,
      full_grid_steps: r.full_grid_steps,
      elapsed_s: tuneElapsed(events),
    },
    riemannian: gridFrom ? gridFrom.result.riemannian : await riemannian(config, dir),
    elapsed_s: (Date.now() - began) / 1000,
    ...(gridFrom ? { grid_from: gridFrom.file } : {}),
  };
}

/** One grid cell at the budget: resumed from the tuner's trial folder where the tuner stopped it early. */
async function completeCell(
  plan: TunePlan,
  config: TunableConfig,
  r: TuneResult,
  t: TunePlan['trials'][number],
  stoppedAs: string | null,
): Promise<Cell> {
  const trialsDir = path.join(r.tune_dir, 'trials');
  const runDir = trialDir(trialsDir, t);
  const cell = { trial: t.trial, ...t.settings, final: null, diverged: stoppedAs };
  if (stoppedAs) return cell; // a diverged trial is diverged in the grid too (its last checkpoint may be NaN)
  const finalDir = path.join(runDir, 'final');
  if (!fs.existsSync(finalDir)) {
    try {
      await train(trialConfig(plan, t, trialsDir, plan.budget.steps), () => {}, undefined, { runDir, resume: true });
    } catch (err) {
      if (!(err instanceof LoraPlusError && err.code === 'train/non-finite')) throw err;
      return { ...cell, diverged: err.info.message };
    }
  }
  return { ...cell, final: await evaluateAdapter(fullData(plan, t, trialsDir, config), finalDir) };
}

/** A trial's config with the whole dev set (rungs were judged on a subset). */
function fullData(plan: TunePlan, t: TunePlan['trials'][number], trialsDir: string, c: TunableConfig): TrainConfig {
  const tc = trialConfig(plan, t, trialsDir, 0);
  return { ...tc, data: { ...c.data } };
}

/** PEFT's riemannian optimizer at the config's default learning rate (no λ), trained to the budget. */
async function riemannian(config: TunableConfig, dir: string): Promise<JobResult['riemannian']> {
  if (!optimizerChoices().values.includes('riemannian')) return null;
  const learning_rate = defaults.training.learning_rate;
  const c = withAutoDefaults(config);
  const run: TrainConfig = {
    ...c,
    run_name: 'riemannian',
    training: {
      ...c.training,
      learning_rate,
      loraplus_lr_ratio: 1,
      optimizer: 'riemannian',
    } as TrainConfig['training'],
  };
  try {
    const res = await train(run, () => {}, undefined, { runDir: path.join(dir, 'riemannian') });
    return { learning_rate, final: await evaluateAdapter(run, res.finalAdapter!), diverged: null };
  } catch (err) {
    if (!(err instanceof LoraPlusError && err.code === 'train/non-finite')) throw err;
    return { learning_rate, final: null, diverged: err.info.message };
  }
}

function tuneElapsed(events: TuneEvent[]): number {
  const end = events.find((e) => e.type === 'tune_end');
  return end && end.type === 'tune_end' ? end.elapsed_s : NaN;
}
