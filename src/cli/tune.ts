// `loraplus tune CONFIG [...]` (src/engine/tune/): successive halving over learning_rate × loraplus_lr_ratio, each
// trial a real run folder under <tune>/trials/. Progress goes to stderr, a line per rung result; at the end stdout
// gets the table (the lr_A × λ grid with each trial's figure at every rung it reached, which continued, the winner,
// the steps spent against the full grid's), or with --json one JSON object (TuneResult). `loraplus train` of a config
// that says `learning_rate: auto` or `loraplus_lr_ratio: auto` runs the same (runTune).
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import type { TunableConfig } from '../config/schema';
import { requireCheckedTunable } from '../engine/checks/config';
import { fmtTime } from '../engine/runs/render';
import { fmtMetric, tuneTable } from '../engine/runs/tune-table';
import { tuneSettings } from '../engine/tune/plan';
import { tune, type TuneOptions } from '../engine/tune/tune';
import { formatError, LoraPlusError } from '../protocol/errors';
import type { EngineEvent } from '../protocol/events';
import { fmtSetting, TuneRecord, tuneTieText, type TuneEvent, type TuneMetric } from '../protocol/tune';

export const TUNE_USAGE = `  loraplus tune CONFIG [--grid lr=1e-4,5e-4 ratio=1,4,16 [optimizer=adamw,…]] [--budget N[steps|tokens]]
                [--eta 3] [--rungs 3] [--eval-samples 300] [--tune-dir DIR] [--json]
                                                       search learning_rate × λ by successive halving, train the winner`;

export async function cmdTune(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      grid: { type: 'string', multiple: true },
      budget: { type: 'string' },
      eta: { type: 'string' },
      rungs: { type: 'string' },
      'eval-samples': { type: 'string' },
      'tune-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  // `--grid lr=1e-4,5e-4 ratio=1,4`: axes after the config are the grid's too.
  const [file, ...axes] = positionals;
  if (!file || axes.some((a) => !a.includes('='))) {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: file
        ? `unexpected argument(s): ${axes.filter((a) => !a.includes('=')).join(' ')}`
        : 'tune needs a config',
      hint: `Usage:\n${TUNE_USAGE}`,
    });
  }
  const config = requireCheckedTunable(path.resolve(file));
  const settings = tuneSettings({
    grid: [...(values.grid ?? []), ...axes],
    budget: values.budget,
    eta: values.eta,
    rungs: values.rungs,
    evalSamples: values['eval-samples'],
  });
  const tuneDir = values['tune-dir'] ? path.resolve(values['tune-dir']) : undefined;
  return runTune(config, { ...settings, tuneDir, configFile: path.resolve(file) }, Boolean(values.json));
}

/** Runs a tune with Ctrl-C saving the current trial's checkpoint; prints progress, then the table or the JSON. */
export async function runTune(config: TunableConfig, opts: TuneOptions, json: boolean): Promise<number> {
  const controller = new AbortController();
  let stops = 0;
  const onSignal = () => {
    if (++stops > 1) process.exit(130);
    process.stderr.write('\nstopping: saving the current trial’s checkpoint first (Ctrl-C again to quit at once)\n');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const record = new TuneRecord();
  const progress = tuneProgress(process.stderr);
  try {
    const r = await tune(
      config,
      (e) => {
        record.add([e]);
        progress.tune(e);
      },
      controller.signal,
      { ...opts, onTrialEvent: (_, e) => progress.trial(e) },
    );
    progress.done();
    if (json) console.log(JSON.stringify(r, null, 2));
    else for (const l of tuneTable(record.summarize(false))) console.log(l);
    return r.status === 'finished' ? 0 : 130;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Progress lines for a terminal: the plan, each rung, each trial's result; a live step line on a TTY. */
export function tuneProgress(out: NodeJS.WriteStream): {
  tune(e: TuneEvent): void;
  trial(e: EngineEvent): void;
  done(): void;
} {
  const tty = Boolean(out.isTTY);
  let live = false;
  let metric: TuneMetric = { name: 'loss', goal: 'min', tie_break: null };
  let rungTo = 0;
  let trial = '';
  const line = (s: string) => {
    if (live) out.write('\r\x1b[2K');
    live = false;
    out.write(`${s}\n`);
  };
  const n = (x: number) => x.toLocaleString('en-US');
  return {
    tune(e) {
      switch (e.type) {
        case 'tune_start': {
          metric = e.metric;
          const axes = `lr_A ${e.axes.learning_rate.map(fmtSetting).join(', ')} × λ ${e.axes.loraplus_lr_ratio.map(fmtSetting).join(', ')}`;
          const opt = e.axes.optimizer.length > 1 ? ` × ${e.axes.optimizer.join(', ')}` : '';
          line(`tune ${e.tune_dir}`);
          line(
            `${e.trials.length} trials (${axes}${opt}) · rungs ${e.rungs.map(n).join(' → ')} steps (η ${e.eta}) · ` +
              `judged by ${e.metric.name}${e.eval.examples !== null ? ` on up to ${n(e.eval.examples)} eval rows` : ''}` +
              `${tuneTieText(e.metric)} · ` +
              `the full grid would train ${n(e.full_grid_steps)} steps`,
          );
          break;
        }
        case 'rung_start':
          rungTo = e.steps;
          line(`rung ${e.rung + 1}: ${e.trials.length} trial${e.trials.length === 1 ? '' : 's'} to step ${n(e.steps)}`);
          break;
        case 'trial_start':
          trial = e.trial;
          break;
        case 'rung_result': {
          const what = e.diverged
            ? `diverged: ${e.diverged}`
            : `${metric.name} ${fmtMetric(e.metric, metric)}${metric.name === 'accuracy' ? '%' : ''}` +
              (metric.name === 'accuracy' && e.loss !== null ? ` · loss ${e.loss.toFixed(3)}` : '') +
              (e.perplexity !== undefined ? ` · perplexity ${e.perplexity.toFixed(2)}` : '');
          line(`  ${e.trial.padEnd(24)} step ${String(e.step).padStart(5)}  ${what}  (${fmtTime(e.elapsed_s)})`);
          break;
        }
        case 'promote':
          line(`  → ${e.continue.length} continue to step ${n(e.next_steps)}: ${e.continue.join(', ')}`);
          break;
        case 'tune_end':
          line(`tune ${e.status} after ${fmtTime(e.elapsed_s)} · ${n(e.spent_steps)} of ${n(e.full_grid_steps)} steps`);
          break;
        case 'error':
          line(`error: ${formatError(e.error)}`);
          break;
        default:
          break;
      }
    },
    trial(e) {
      if (e.type === 'run_start') trial = e.run_name;
      if (e.type !== 'step' || !tty) return;
      out.write(
        `\r\x1b[2K  ${trial.padEnd(24)} step ${String(e.step).padStart(5)}/${rungTo} loss ${e.loss.toFixed(4)}`,
      );
      live = true;
    },
    done() {
      if (live) out.write('\r\x1b[2K');
      live = false;
    },
  };
}
