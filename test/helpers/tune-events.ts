// A tune's events made by code, as tune.jsonl holds them (the shape of a real 3 × 2 stories260k SST-2 tune: the
// lr 1 cells diverge at rung 1, two trials continue, one wins): for the pure view models of the tune explorer and
// the tune dashboard, without training anything.
import {
  usesRatio,
  type RungResultEvent,
  type TrialSettings,
  type TuneEvent,
  type TuneStartEvent,
} from '../../src/protocol/tune';

// As the engine's gridTrials: an optimizer without λ has one cell per learning rate (run at λ 1), no ratio in its id.
const id = (lr: string, ratio: number | null, opt = '') =>
  `lr${lr}${ratio === null ? '' : `-ratio${ratio}`}${opt ? `-${opt}` : ''}`;

export interface FakeTune {
  events: TuneEvent[];
  winner: string;
  trials: string[];
}

/** A finished tune; several `optimizers` make an optimizer axis (ids get a suffix); `metric` 'loss' as LM tasks. */
export function fakeTune(
  dir = '/w/runs/mytune',
  optimizers = ['adamw'],
  metric: 'accuracy' | 'loss' = 'accuracy',
): FakeTune {
  const lrs: [string, number][] = [
    ['5e-4', 5e-4],
    ['2e-3', 2e-3],
    ['1', 1],
  ];
  const several = optimizers.length > 1;
  const trials: { trial: string; settings: TrialSettings }[] = [];
  for (const optimizer of optimizers)
    for (const [name, lr] of lrs)
      for (const ratio of usesRatio(optimizer) ? [1, 16] : [1])
        trials.push({
          trial: id(name, usesRatio(optimizer) ? ratio : null, several ? optimizer : ''),
          settings: { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer },
        });
  const ids = trials.map((t) => t.trial);
  const start: TuneStartEvent = {
    type: 'tune_start',
    time: '2026-01-02T03:04:05.000Z',
    tune_name: dir.split('/').pop()!,
    tune_dir: dir,
    config_file: '/w/t.lora.yaml',
    model: '/m/stories260k',
    task: metric === 'accuracy' ? 'sequence-classification' : 'causal-lm',
    axes: { learning_rate: lrs.map(([, v]) => v), loraplus_lr_ratio: [1, 16], optimizer: optimizers },
    trials,
    eta: 3,
    rungs: [1, 3, 9],
    budget: { steps: 9, tokens: null, from: 'config' },
    metric:
      metric === 'accuracy'
        ? { name: 'accuracy', goal: 'max', tie_break: 'loss' }
        : { name: 'loss', goal: 'min', tie_break: null },
    eval: { examples: 32, source: 'dev.tsv' },
    divergence: { loss_factor: 1.5 },
    seed: 5,
    full_grid_steps: trials.length * 9,
  };
  // Good cells get a figure by their index (better first for the goal); lr 1 cells diverge.
  const good = ids.filter((t) => !t.startsWith('lr1-'));
  const figure = (t: string, rung: number) => {
    const rank = good.indexOf(t);
    return metric === 'accuracy' ? 0.7 - 0.03 * rank + 0.01 * rung : 0.6 + 0.05 * rank - 0.01 * rung;
  };
  const result = (t: string, rung: number, step: number, from: number): RungResultEvent => {
    const diverged = t.startsWith('lr1-') ? 'the eval loss rose to 7.451 at step 1, 11.2× the start' : undefined;
    const m = diverged ? null : figure(t, rung);
    return {
      type: 'rung_result',
      trial: t,
      rung,
      step,
      steps_trained: step - from,
      metric: m,
      loss: diverged ? 7.451 : metric === 'accuracy' ? 0.66 : m,
      ...(metric === 'accuracy' && m !== null ? { accuracy: m } : {}),
      ...(diverged ? { diverged } : {}),
      elapsed_s: 0.3,
    };
  };
  const runDir = (t: string) => `${dir}/trials/${t}`;
  const events: TuneEvent[] = [start, { type: 'rung_start', rung: 0, steps: 1, trials: ids }];
  for (const t of trials) {
    events.push({ type: 'trial_start', trial: t.trial, settings: t.settings, run_dir: runDir(t.trial) });
    events.push(result(t.trial, 0, 1, 0));
  }
  const keep1 = good.slice(0, Math.ceil(good.length / 3));
  const out1 = good.filter((t) => !keep1.includes(t));
  events.push({ type: 'promote', rung: 0, next_steps: 3, continue: keep1, stopped: out1 });
  for (const t of ids.filter((x) => x.startsWith('lr1-')))
    events.push({ type: 'trial_end', trial: t, outcome: 'diverged', rung: 0, step: 1, reason: 'diverged' });
  for (const t of out1) events.push({ type: 'trial_end', trial: t, outcome: 'eliminated', rung: 0, step: 1 });
  events.push({ type: 'rung_start', rung: 1, steps: 3, trials: keep1 });
  for (const t of keep1) events.push(result(t, 1, 3, 1));
  const keep2 = keep1.slice(0, 1);
  const out2 = keep1.slice(1);
  events.push({ type: 'promote', rung: 1, next_steps: 9, continue: keep2, stopped: out2 });
  for (const t of out2) events.push({ type: 'trial_end', trial: t, outcome: 'eliminated', rung: 1, step: 3 });
  events.push({ type: 'rung_start', rung: 2, steps: 9, trials: keep2 });
  const w = keep2[0];
  const last = result(w, 2, 9, 3);
  events.push(last, { type: 'trial_end', trial: w, outcome: 'winner', rung: 2, step: 9 });
  const settings = trials.find((t) => t.trial === w)!.settings;
  events.push({
    type: 'tune_end',
    status: 'finished',
    winner: {
      trial: w,
      settings,
      run_dir: runDir(w),
      final_adapter: `${runDir(w)}/final`,
      metric: last.metric!,
      eval:
        metric === 'accuracy'
          ? { loss: 0.687, accuracy: 0.55, examples: 218 }
          : { loss: 3.2, perplexity: 24.5, examples: 218 },
    },
    spent_steps: events.reduce((n, e) => n + (e.type === 'rung_result' ? e.steps_trained : 0), 0),
    full_grid_steps: start.full_grid_steps,
    elapsed_s: 4,
  });
  return { events, winner: w, trials: ids };
}
