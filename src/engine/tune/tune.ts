// `tune(config, onEvent, signal)`: successive halving over learning_rate × loraplus_lr_ratio (× optimizer), on the
// engine's own train(). It reads top to bottom: plan (plan.ts), open the tune folder, then for each rung: train
// every remaining trial to the rung's step (trial.ts), judge them on the fixed eval subset, and let the best 1/η
// continue (before the last rung, the best one alone); it trains to the full budget and wins, and its final adapter
// is evaluated on the whole eval set. Every trial is a real run folder under <tune>/trials/, all with the same seed, so they see the same
// data order, initialisation and dropout and differ only in the searched settings. Every event goes to tune.jsonl
// before anyone hears of it.
import * as path from 'node:path';
import { withAutoDefaults } from '../../config/auto';
import { ourDevice, selectBackend } from '../backend/select';
import type { TunableConfig } from '../../config/schema';
import { LoraPlusError, toErrorInfo } from '../../protocol/errors';
import type { EngineEvent } from '../../protocol/events';
import type { TuneEvent, TuneEventSink, TuneResult, TuneWinner } from '../../protocol/tune';
import { openTuneFolder, type TuneFolder } from '../runs/tune-folder';
import { configStem } from '../runs/names';
import { datasetSize, loadData, openModelFolder } from '../train/inputs';
import { evaluateAdapter } from './final-eval';
import { LOSS_FACTOR, planTune, trialConfig, type TunePlan, type TuneSettings } from './plan';
import { compareResults, newTrialState, trainRung } from './trial';

export interface TuneOptions extends TuneSettings {
  configFile?: string; // for tune_start, and the table's title
  tuneDir?: string; // default: <output_dir>/<run_name, else tune-<config file's name>>
  onTrialEvent?: (trial: string, e: EngineEvent) => void; // each trial run's own events (metrics.jsonl has them too)
}

export async function tune(
  config: TunableConfig,
  onEvent: TuneEventSink,
  signal?: AbortSignal,
  opts: TuneOptions = {},
): Promise<TuneResult> {
  // The backend is chosen once: `auto` would probe every device again (and print the drivers' warnings) per trial.
  const { device } = await selectBackend(ourDevice(config.device));
  const plan = planTune({ ...config, device }, opts, () => stepsOfEpochs(config));
  const named = opts.tuneDir !== undefined || Boolean(config.run_name);
  const dir = path.resolve(opts.tuneDir ?? path.join(config.output_dir, tuneName(config, opts.configFile)));
  const folder = openTuneFolder(dir, named);
  const began = Date.now();
  const emit = (e: TuneEvent) => {
    folder.emit(e);
    onEvent(e);
  };
  const trials = plan.trials.map((t) => newTrialState(t, folder.trialsDir));
  const spent = () => trials.reduce((s, t) => s + t.results.reduce((a, r) => a + r.steps_trained, 0), 0);
  const end = (status: 'finished' | 'stopped' | 'failed', winner: TuneWinner | null): TuneResult => {
    emit({
      type: 'tune_end',
      status,
      winner,
      spent_steps: spent(),
      full_grid_steps: plan.fullGridSteps,
      elapsed_s: (Date.now() - began) / 1000,
    });
    return result(status === 'finished' ? 'finished' : 'stopped', folder, winner, spent(), plan.fullGridSteps);
  };
  try {
    emit(startEvent(plan, folder, opts.configFile ?? null));
    // ---- the rungs ------------------------------------------------------------------------------------------------
    let alive = trials;
    for (let rung = 0; rung < plan.rungs.length; rung++) {
      emit({ type: 'rung_start', rung, steps: plan.rungs[rung], trials: alive.map((t) => t.trial) });
      for (const t of alive) {
        if (!t.started) emit({ type: 'trial_start', trial: t.trial, settings: t.settings, run_dir: t.runDir });
        const onTrial = opts.onTrialEvent && ((e: EngineEvent) => opts.onTrialEvent!(t.trial, e));
        const r = await trainRung(t, { plan, trialsDir: folder.trialsDir, rung, signal, onEvent: onTrial });
        if (!r) {
          emit({ type: 'trial_end', trial: t.trial, outcome: 'stopped', rung, step: t.step, reason: 'stopped' });
          return end('stopped', null);
        }
        emit(r);
        if (r.diverged)
          emit({ type: 'trial_end', trial: t.trial, outcome: 'diverged', rung, step: r.step, reason: r.diverged });
      }
      // ---- judge: the best 1/η continue (never a diverged trial) --------------------------------------------------
      const ranked = alive
        .filter((t) => !t.results[rung]?.diverged)
        .sort((a, b) => compareResults(a.results[rung], b.results[rung], plan, a.index, b.index));
      if (!ranked.length) throw allDiverged(plan, rung);
      if (rung === plan.rungs.length - 1) {
        alive = ranked;
        break;
      }
      // The last rung is the winner's alone: it continues to the full length (successive halving's one survivor).
      const toLast = rung === plan.rungs.length - 2;
      const keep = ranked.slice(0, toLast ? 1 : Math.max(1, Math.ceil(alive.length / plan.eta)));
      const stopped = ranked.slice(keep.length);
      const next = plan.rungs[rung + 1];
      emit({
        type: 'promote',
        rung,
        next_steps: next,
        continue: keep.map((t) => t.trial),
        stopped: stopped.map((t) => t.trial),
      });
      for (const t of stopped) {
        const reason = `outranked at rung ${rung + 1} (${plan.rungs[rung]} steps)`;
        emit({ type: 'trial_end', trial: t.trial, outcome: 'eliminated', rung, step: t.step, reason });
      }
      alive = keep;
    }

    // ---- the winner: trained to the budget; its final adapter on the whole eval set ---------------------------------
    const [best, ...rest] = alive;
    const last = plan.rungs.length - 1;
    for (const t of rest) emit({ type: 'trial_end', trial: t.trial, outcome: 'finished', rung: last, step: t.step });
    const full = { ...trialConfig(plan, best, folder.trialsDir, 0), data: { ...config.data } }; // no subset
    const evaluated = await evaluateAdapter(full, best.finalAdapter ?? path.join(best.runDir, 'final'));
    const winner: TuneWinner = {
      trial: best.trial,
      settings: best.settings,
      run_dir: best.runDir,
      final_adapter: best.finalAdapter,
      metric: best.results[last].metric!,
      eval: evaluated,
    };
    emit({ type: 'trial_end', trial: best.trial, outcome: 'winner', rung: last, step: best.step });
    return end('finished', winner);
  } catch (err) {
    try {
      emit({ type: 'error', trial: null, error: toErrorInfo(err) });
      end('failed', null);
    } catch {
      // the failure may be tune.jsonl itself (a full disk): the caller hears of it all the same
    }
    throw err;
  } finally {
    folder.close();
  }
}

/** The tune folder's default name: tune-<config file's name> (-2, -3, … when taken), or the config's run_name. */
function tuneName(config: TunableConfig, configFile?: string): string {
  return config.run_name ?? `tune-${configStem(configFile, config.model)}`;
}

function startEvent(plan: TunePlan, folder: TuneFolder, configFile: string | null): TuneEvent {
  const c = plan.base;
  return {
    type: 'tune_start',
    time: new Date().toISOString(),
    tune_name: folder.name,
    tune_dir: folder.dir,
    config_file: configFile,
    model: c.model,
    task: c.task,
    axes: plan.axes,
    trials: plan.trials.map(({ trial, settings }) => ({ trial, settings })),
    eta: plan.eta,
    rungs: plan.rungs,
    budget: plan.budget,
    metric: plan.metric,
    eval: {
      examples: plan.evalSamples,
      source: c.data.eval ?? `${c.data.train} (eval_fraction ${c.data.eval_fraction})`,
    },
    divergence: { loss_factor: LOSS_FACTOR },
    seed: c.training.seed,
    full_grid_steps: plan.fullGridSteps,
  };
}

function result(
  status: 'finished' | 'stopped',
  folder: TuneFolder,
  w: TuneWinner | null,
  spent: number,
  full: number,
): TuneResult {
  return {
    status,
    tune_dir: folder.dir,
    trial: w?.trial ?? null,
    learning_rate: w?.settings.learning_rate ?? null,
    loraplus_lr_ratio: w?.settings.loraplus_lr_ratio ?? null,
    optimizer: w?.settings.optimizer ?? null,
    run_dir: w?.run_dir ?? null,
    final_adapter: w?.final_adapter ?? null,
    eval: w?.eval ?? null,
    spent_steps: spent,
    full_grid_steps: full,
  };
}

function allDiverged(plan: TunePlan, rung: number): LoraPlusError {
  const lowest = Math.min(...plan.axes.learning_rate) * Math.min(...plan.axes.loraplus_lr_ratio);
  return new LoraPlusError({
    code: 'tune/all-diverged',
    message: `every trial of rung ${rung + 1} diverged (the lowest lr_B of the grid is ${lowest})`,
    yamlPath: 'training.learning_rate',
    hint: 'Search lower learning rates (--grid lr=…), smaller ratios, or set max_grad_norm / warmup_steps.',
  });
}

/** The budget of a config that trains for epochs: the steps train() would take (the data read once). */
function stepsOfEpochs(config: TunableConfig): number {
  const c = withAutoDefaults(config);
  const data = loadData(c, openModelFolder(c.model).tokenizer);
  const t = c.training;
  const perEpoch = Math.max(
    1,
    Math.floor(Math.ceil(datasetSize(data.train) / t.batch_size) / t.gradient_accumulation_steps),
  );
  return Math.max(1, Math.ceil((t.epochs ?? 1) * perEpoch));
}
