// What a tune will do, decided before any training: the grid (learning_rate × loraplus_lr_ratio × optimizer), the
// rungs of successive halving, the budget, the eval subset rungs are judged on, and each trial's config. Pure: it
// reads only the config and the options, so the CLI can print the plan and tests can check it without training.
//
// Defaults, from the LoRA+ paper and our own SST-2 measurements on stories260k (README, "Tune"):
//   learning_rate 1e-4, 2.5e-4, 5e-4, 1e-3 × λ 1, 2, 4, 16, 64: the good band there is lr_B = lr_A·λ ≈ 1e-3…2e-3
//     (λ 1 at 1e-3, λ 4 at 2.5e-4…5e-4, λ 16 at 1e-4), λ 16 at 1e-3 and λ 64 anywhere collapse; the paper's 2^4 is
//     the easy-task start and harder tasks want more, so the grid spans 2^0…2^6 around the band.
//   η = 3, 3 rungs: every trial trains budget/9 steps, the best third continue to budget/3, and the best of those
//     (the winner) continues to the budget. 20 trials cost 4.4 budgets (22%) instead of the full grid's 20.
//   300 eval rows judge every rung (data.eval, or the held-out eval_fraction, cut with max_eval_samples).
import * as path from 'node:path';
import { autoKeys } from '../../config/auto';
import { specAt } from '../../config/keys';
import type { TrainConfig, TunableConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import { fmtSetting, usesRatio, type TrialSettings, type TuneMetric } from '../../protocol/tune';

export const DEFAULT_LEARNING_RATES = [1e-4, 2.5e-4, 5e-4, 1e-3];
export const DEFAULT_RATIOS = [1, 2, 4, 16, 64];
export const DEFAULT_ETA = 3;
export const DEFAULT_RUNGS = 3;
export const DEFAULT_EVAL_SAMPLES = 300;
/** A loss this many times the start's (eval at step 0, or the first training steps) stops a trial as diverged. */
export const LOSS_FACTOR = 1.5;

export interface GridAxes {
  learning_rate: number[];
  loraplus_lr_ratio: number[];
  optimizer: string[];
}

export type Budget = { steps: number } | { tokens: number };

export interface TuneSettings {
  grid?: Partial<GridAxes>; // overrides, e.g. from --grid
  budget?: Budget;
  eta?: number;
  rungs?: number; // how many rungs; 1 trains every trial to the budget (the full grid)
  evalSamples?: number; // the eval subset's size; 0: the whole eval set
}

export interface PlannedTrial {
  trial: string; // its id and its folder's name under trials/
  index: number; // grid order: ties rank by it
  settings: TrialSettings;
}

export interface TunePlan {
  base: TunableConfig;
  axes: GridAxes;
  trials: PlannedTrial[];
  eta: number;
  rungs: number[]; // steps; the last is budget
  budget: { steps: number; tokens: number | null; from: 'config' | 'steps' | 'tokens' };
  evalSamples: number | null; // null: the whole eval set
  metric: TuneMetric;
  fullGridSteps: number;
}

/** The optimizers training.optimizer allows, and its default: 'adamw' alone while the schema has no such key. */
export function optimizerChoices(): { values: string[]; default: string; inSchema: boolean } {
  const spec = specAt(['training', 'optimizer']);
  if (spec?.kind === 'enum')
    return { values: [...spec.values], default: spec.default ?? spec.values[0], inSchema: true };
  return { values: ['adamw'], default: 'adamw', inSchema: false };
}

export function planTune(base: TunableConfig, o: TuneSettings, stepsOfEpochs: () => number): TunePlan {
  const t = base.training;
  if (!base.data.eval && !(base.data.eval_fraction > 0)) {
    throw new LoraPlusError({
      code: 'tune/no-eval',
      message: 'a tune judges its trials on evaluation data, and this config has none',
      yamlPath: 'data.eval',
      hint: 'Set data.eval to an evaluation file, or data.eval_fraction (e.g. 0.05) to hold out training rows.',
    });
  }
  // A key the config sets while the other is auto stays fixed; `loraplus tune` of a config without auto searches both.
  const auto = autoKeys(base);
  const fixed = (k: 'learning_rate' | 'loraplus_lr_ratio') =>
    auto.length > 0 && typeof t[k] === 'number' ? [t[k] as number] : null;
  const opt = optimizerChoices();
  const configured = (t as Record<string, unknown>).optimizer;
  const axes: GridAxes = {
    learning_rate: o.grid?.learning_rate ?? fixed('learning_rate') ?? DEFAULT_LEARNING_RATES,
    loraplus_lr_ratio: o.grid?.loraplus_lr_ratio ?? fixed('loraplus_lr_ratio') ?? DEFAULT_RATIOS,
    optimizer: o.grid?.optimizer ?? [typeof configured === 'string' ? configured : opt.default],
  };
  const budget = budgetSteps(base, o.budget, stepsOfEpochs);
  const eta = o.eta ?? DEFAULT_ETA;
  const rungs = rungSteps(budget.steps, eta, o.rungs ?? DEFAULT_RUNGS);
  const trials = gridTrials(axes);
  const samples = o.evalSamples ?? DEFAULT_EVAL_SAMPLES;
  const own = base.data.max_eval_samples;
  return {
    base,
    axes,
    trials,
    eta,
    rungs,
    budget,
    evalSamples: samples > 0 ? Math.min(samples, own ?? Infinity) : own,
    metric:
      base.task === 'sequence-classification'
        ? { name: 'accuracy', goal: 'max', tie_break: 'loss' }
        : { name: 'loss', goal: 'min', tie_break: null },
    fullGridSteps: trials.length * budget.steps,
  };
}

/**
 * Every cell of the grid, optimizer-major, then learning rate, then λ; ids like lr5e-4-ratio16(-adamw). An optimizer
 * without λ (riemannian, lorafa: one learning rate) has one cell per learning rate, recorded as λ 1, ids like
 * lr5e-4(-riemannian): the λ axis would only repeat the same run.
 */
export function gridTrials(axes: GridAxes): PlannedTrial[] {
  const out: PlannedTrial[] = [];
  for (const optimizer of axes.optimizer)
    for (const learning_rate of axes.learning_rate)
      for (const loraplus_lr_ratio of usesRatio(optimizer) ? axes.loraplus_lr_ratio : [1]) {
        const suffix = axes.optimizer.length > 1 ? `-${optimizer}` : '';
        const ratio = usesRatio(optimizer) ? `-ratio${fmtSetting(loraplus_lr_ratio)}` : '';
        const trial = `lr${fmtSetting(learning_rate)}${ratio}${suffix}`;
        out.push({ trial, index: out.length, settings: { learning_rate, loraplus_lr_ratio, optimizer } });
      }
  return out;
}

/**
 * The step each rung trains to: budget/η^(k−1), …, budget/η, budget (at least 1 step each, strictly rising; a small
 * budget has fewer rungs).
 */
export function rungSteps(budget: number, eta: number, count: number): number[] {
  const out: number[] = [];
  for (let k = count - 1; k >= 0; k--) {
    const s = Math.max(1, Math.round(budget / eta ** k));
    if (s > (out.at(-1) ?? 0)) out.push(s);
  }
  return out;
}

/** The budget in steps: given in steps, in tokens (batch × accumulation × max_length a step), else the config's. */
function budgetSteps(config: TunableConfig, b: Budget | undefined, stepsOfEpochs: () => number): TunePlan['budget'] {
  const t = config.training;
  if (b && 'steps' in b) return { steps: b.steps, tokens: null, from: 'steps' };
  if (b) {
    const perStep = t.batch_size * t.gradient_accumulation_steps * config.data.max_length;
    return { steps: Math.max(1, Math.ceil(b.tokens / perStep)), tokens: b.tokens, from: 'tokens' };
  }
  return { steps: t.max_steps ?? stepsOfEpochs(), tokens: null, from: 'config' };
}

/**
 * One trial's config for one rung: the base with the trial's settings, the budget as max_steps (the learning-rate
 * schedule is the full run's from the first step, so a trial stopped at a rung and resumed trains exactly as one
 * uninterrupted run), the eval subset, and an eval at the rung's end (`evalEvery`, a setting a resume may change).
 */
export function trialConfig(p: TunePlan, t: PlannedTrial, trialsDir: string, evalEvery: number): TrainConfig {
  const training: Record<string, unknown> = {
    ...p.base.training,
    learning_rate: t.settings.learning_rate,
    loraplus_lr_ratio: t.settings.loraplus_lr_ratio,
    max_steps: p.budget.steps,
    epochs: null,
    eval_every: evalEvery,
  };
  if (optimizerChoices().inSchema) training.optimizer = t.settings.optimizer;
  return {
    ...p.base,
    output_dir: trialsDir,
    run_name: t.trial,
    data: { ...p.base.data, max_eval_samples: p.evalSamples },
    training: training as TrainConfig['training'],
  };
}

export const trialDir = (trialsDir: string, t: PlannedTrial) => path.join(trialsDir, t.trial);

// ---- Options as written on the command line ----

const AXES: Record<string, keyof GridAxes> = {
  lr: 'learning_rate',
  lr_a: 'learning_rate',
  learning_rate: 'learning_rate',
  ratio: 'loraplus_lr_ratio',
  lambda: 'loraplus_lr_ratio',
  λ: 'loraplus_lr_ratio',
  lr_ratio: 'loraplus_lr_ratio',
  loraplus_lr_ratio: 'loraplus_lr_ratio',
  optimizer: 'optimizer',
  opt: 'optimizer',
};

/** `lr=1e-4,5e-4 ratio=1,4,16 optimizer=adamw,lorafa` (one or more axes per string) → the axes they set. */
export function parseGrid(specs: readonly string[]): Partial<GridAxes> {
  const out: Partial<GridAxes> = {};
  const bad = (message: string, hint?: string) =>
    new LoraPlusError({
      code: 'tune/bad-grid',
      message,
      hint: hint ?? 'Write axes as name=v1,v2: lr=1e-4,5e-4 ratio=1,4,16 optimizer=adamw.',
    });
  for (const part of specs.flatMap((s) => s.trim().split(/\s+/)).filter(Boolean)) {
    const m = /^([^=]+)=(.+)$/.exec(part);
    const axis = m && AXES[m[1].toLowerCase()];
    if (!m || !axis) throw bad(`--grid: '${part}' is not an axis (lr, ratio or optimizer) with values`);
    const raw = m[2].split(',').filter(Boolean);
    if (axis === 'optimizer') {
      const { values } = optimizerChoices();
      const unknown = raw.find((v) => !values.includes(v));
      if (unknown) throw bad(`--grid: optimizer '${unknown}' is not one of ${values.join(', ')}`, '');
      out.optimizer = [...new Set(raw)];
      continue;
    }
    const nums = raw.map(Number);
    const wrong = raw.find((v, i) => !Number.isFinite(nums[i]) || nums[i] <= 0);
    if (wrong !== undefined) throw bad(`--grid: ${m[1]} value '${wrong}' is not a number > 0`);
    if (axis === 'learning_rate' && nums.some((x) => x > 1))
      throw bad(`--grid: a learning rate above 1 overwrites the weights on the first step`, '');
    out[axis] = [...new Set(nums)];
  }
  return out;
}

/** `600`, `600steps`, `2M tokens`, `1.5e6tokens` → a Budget. */
export function parseBudget(s: string): Budget {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([kmg]?)\s*(steps?|tokens?)?\s*$/i.exec(s);
  const scale = { '': 1, k: 1e3, m: 1e6, g: 1e9 }[(m?.[2] ?? '').toLowerCase()] ?? 1;
  const value = m ? Math.round(Number(m[1]) * scale) : NaN;
  if (!m || !(value >= 1)) {
    throw new LoraPlusError({
      code: 'tune/bad-budget',
      message: `--budget '${s}' is not a count of steps or tokens`,
      hint: 'Write e.g. 600 (steps), 600steps, or 2M tokens.',
    });
  }
  return /^tokens?$/i.test(m[3] ?? '') ? { tokens: value } : { steps: value };
}

/** The options as the CLI and the engine process's `tune` request write them, checked. */
export function tuneSettings(o: {
  grid?: readonly string[];
  budget?: string;
  eta?: number | string;
  rungs?: number | string;
  evalSamples?: number | string;
}): TuneSettings {
  const count = (name: string, v: number | string | undefined, min: number, integer: boolean) => {
    if (v === undefined) return undefined;
    const x = Number(v);
    if (Number.isFinite(x) && x >= min && (!integer || Number.isInteger(x))) return x;
    throw new LoraPlusError({
      code: 'cli/usage',
      message: `--${name} must be ${integer ? 'an integer' : 'a number'} ≥ ${min}, got '${v}'`,
      hint: "Run 'loraplus --help'.",
    });
  };
  return {
    ...(o.grid?.length ? { grid: parseGrid(o.grid) } : {}),
    ...(o.budget !== undefined ? { budget: parseBudget(o.budget) } : {}),
    eta: count('eta', o.eta, 1, false),
    rungs: count('rungs', o.rungs, 1, true),
    evalSamples: count('eval-samples', o.evalSamples, 0, true),
  };
}
