// The tune's plan, without training: the grid and which axes an `auto` config searches, the rungs of successive
// halving, the budget in steps or tokens, the eval subset, each trial's config, and the options as written.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { autoKeys, requireResolved, withAutoDefaults } from '../../../src/config/auto';
import { configFromObject, tunableConfigFromObject } from '../../../src/config/load';
import { validateConfig } from '../../../src/config/validate';
import {
  DEFAULT_LEARNING_RATES,
  DEFAULT_RATIOS,
  gridTrials,
  parseBudget,
  parseGrid,
  planTune,
  rungSteps,
  trialConfig,
  tuneSettings,
} from '../../../src/engine/tune/plan';
import { LoraPlusError } from '../../../src/protocol/errors';
import { fmtSetting } from '../../../src/protocol/tune';
import { SST2, STORIES } from '../../helpers/shared';

const base = (training: Record<string, unknown>, data: Record<string, unknown> = {}) =>
  tunableConfigFromObject(
    {
      model: STORIES,
      task: 'sequence-classification',
      output_dir: '/tmp/runs',
      data: { train: path.join(SST2, 'dev.tsv'), eval: path.join(SST2, 'dev.tsv'), text_field: 'sentence', ...data },
      training: { max_steps: 600, ...training },
    },
    '/tmp',
  );
const never = () => assert.fail('the budget comes from max_steps');

describe('tune plan', () => {
  it('`auto` validates for learning_rate and loraplus_lr_ratio only, and train() never gets it', () => {
    const c = base({ learning_rate: 'auto', loraplus_lr_ratio: 'auto' });
    assert.deepEqual(autoKeys(c), ['learning_rate', 'loraplus_lr_ratio']);
    assert.throws(
      () => requireResolved(c),
      (e: LoraPlusError) => e.code === 'config/auto',
    );
    const file = { model: STORIES, data: { train: path.join(SST2, 'dev.tsv') }, training: { learning_rate: 'auto' } };
    assert.throws(
      () => configFromObject(file, '/tmp'),
      (e: LoraPlusError) => e.code === 'config/auto',
    );
    assert.equal(withAutoDefaults(c).training.learning_rate, 2e-4); // for checks and evaluation only
    const r = validateConfig(
      { model: STORIES, data: { train: path.join(SST2, 'dev.tsv') }, training: { weight_decay: 'auto' } },
      { checkPaths: false },
    );
    assert.equal(r.config, null);
    assert.match(r.problems[0].message, /weight_decay must be a number/);
    const lr = validateConfig(
      { model: STORIES, data: { train: 'x' }, training: { learning_rate: 'Auto' } },
      { checkPaths: false },
    );
    assert.match(lr.problems[0].hint ?? '', /auto lets a tune pick it/);
    assert.equal(lr.problems[0].fix?.kind === 'setValue' && lr.problems[0].fix.value, 'auto');
  });

  it('searches both axes by default; a number beside an `auto` stays fixed', () => {
    const both = planTune(base({ learning_rate: 'auto', loraplus_lr_ratio: 'auto' }), {}, never);
    assert.deepEqual(both.axes.learning_rate, DEFAULT_LEARNING_RATES);
    assert.deepEqual(both.axes.loraplus_lr_ratio, DEFAULT_RATIOS);
    assert.deepEqual(both.axes.optimizer, ['adamw']);
    assert.equal(both.trials.length, 20);
    assert.deepEqual(both.rungs, [67, 200, 600]);
    assert.equal(both.fullGridSteps, 20 * 600);
    assert.equal(both.evalSamples, 300);
    assert.deepEqual(both.metric, { name: 'accuracy', goal: 'max', tie_break: 'loss' });

    const ratioOnly = planTune(base({ learning_rate: 5e-4, loraplus_lr_ratio: 'auto' }), {}, never);
    assert.deepEqual(ratioOnly.axes.learning_rate, [5e-4]);
    assert.deepEqual(ratioOnly.axes.loraplus_lr_ratio, DEFAULT_RATIOS);
    // `loraplus tune` of a config without auto searches both (its numbers are where the user started, not a limit)
    const plain = planTune(base({ learning_rate: 5e-4, loraplus_lr_ratio: 16 }), {}, never);
    assert.equal(plain.trials.length, 20);
    const lm = planTune(
      { ...base({ learning_rate: 'auto' }), task: 'causal-lm' },
      { grid: { loraplus_lr_ratio: [1, 4] }, evalSamples: 0 },
      never,
    );
    assert.deepEqual(lm.metric, { name: 'loss', goal: 'min', tie_break: null });
    assert.equal(lm.trials.length, 8);
    assert.equal(lm.evalSamples, null); // 0: the whole eval set
  });

  it('rungs: budget/η², budget/η, budget; small budgets get fewer', () => {
    assert.deepEqual(rungSteps(600, 3, 3), [67, 200, 600]);
    assert.deepEqual(rungSteps(300, 3, 3), [33, 100, 300]);
    assert.deepEqual(rungSteps(9, 3, 3), [1, 3, 9]);
    assert.deepEqual(rungSteps(2, 3, 3), [1, 2]);
    assert.deepEqual(rungSteps(600, 3, 1), [600]);
    assert.deepEqual(rungSteps(800, 2, 4), [100, 200, 400, 800]);
  });

  it('the budget in steps or tokens; a config in epochs asks for its step count', () => {
    const c = base({ learning_rate: 'auto', batch_size: 32 }, { max_length: 64 });
    assert.equal(planTune(c, { budget: { steps: 90 } }, never).budget.steps, 90);
    const tokens = planTune(c, { budget: parseBudget('2M tokens') }, never).budget;
    assert.deepEqual(tokens, { steps: Math.ceil(2e6 / (32 * 64)), tokens: 2e6, from: 'tokens' });
    const epochs = base({ learning_rate: 'auto', max_steps: null, epochs: 2 });
    assert.equal(planTune(epochs, {}, () => 123).budget.steps, 123);
    assert.deepEqual(parseBudget('600'), { steps: 600 });
    assert.deepEqual(parseBudget('1.5k steps'), { steps: 1500 });
    assert.deepEqual(parseBudget('3e5tokens'), { tokens: 300000 });
    assert.throws(
      () => parseBudget('many'),
      (e: LoraPlusError) => e.code === 'tune/bad-budget',
    );
  });

  it('each trial: its settings, the budget as max_steps, the eval subset; the rest is the base config', () => {
    const p = planTune(base({ learning_rate: 'auto', loraplus_lr_ratio: 'auto', seed: 7 }), {}, never);
    const t = p.trials.find((x) => x.trial === 'lr5e-4-ratio4')!;
    const c = trialConfig(p, t, '/tmp/runs/tune/trials', 67);
    assert.equal(c.training.learning_rate, 5e-4);
    assert.equal(c.training.loraplus_lr_ratio, 4);
    assert.equal(c.training.max_steps, 600);
    assert.equal(c.training.eval_every, 67);
    assert.equal(c.training.seed, 7);
    assert.equal(c.data.max_eval_samples, 300);
    assert.equal(c.run_name, 'lr5e-4-ratio4');
    const ids = gridTrials({ learning_rate: [1e-4, 2.5e-4], loraplus_lr_ratio: [1, 64], optimizer: ['adamw'] });
    assert.deepEqual(
      ids.map((x) => x.trial),
      ['lr1e-4-ratio1', 'lr1e-4-ratio64', 'lr2.5e-4-ratio1', 'lr2.5e-4-ratio64'],
    );
  });

  it('an optimizer without λ (riemannian, lorafa) gets one trial per learning rate, at λ 1, in its trial config', () => {
    const grid = parseGrid(['lr=1e-4,1e-3 ratio=4,16 optimizer=adamw,riemannian']);
    assert.deepEqual(grid.optimizer, ['adamw', 'riemannian']);
    const p = planTune(base({ learning_rate: 'auto', loraplus_lr_ratio: 'auto' }), { grid }, never);
    assert.deepEqual(
      p.trials.map((t) => [t.trial, t.settings.loraplus_lr_ratio]),
      [
        ['lr1e-4-ratio4-adamw', 4],
        ['lr1e-4-ratio16-adamw', 16],
        ['lr1e-3-ratio4-adamw', 4],
        ['lr1e-3-ratio16-adamw', 16],
        ['lr1e-4-riemannian', 1],
        ['lr1e-3-riemannian', 1],
      ],
    );
    assert.equal(p.fullGridSteps, 6 * 600);
    const c = trialConfig(p, p.trials.at(-1)!, '/tmp/runs/tune/trials', 67);
    assert.equal(c.training.optimizer, 'riemannian');
    assert.equal(c.training.learning_rate, 1e-3);
    assert.equal(c.training.loraplus_lr_ratio, 1);
    assert.equal(trialConfig(p, p.trials[0], '/tmp/runs/tune/trials', 67).training.optimizer, 'adamw');
    // A config that trains lorafa searches learning_rate alone, whatever λ says.
    const fa = planTune(base({ learning_rate: 'auto', loraplus_lr_ratio: 'auto', optimizer: 'lorafa' }), {}, never);
    assert.deepEqual(fa.axes.optimizer, ['lorafa']);
    assert.deepEqual(
      fa.trials.map((t) => t.trial),
      DEFAULT_LEARNING_RATES.map((lr) => `lr${fmtSetting(lr)}`),
    );
  });

  it('--grid and the other options as written; a tune needs eval data', () => {
    assert.deepEqual(parseGrid(['lr=1e-4,2.5e-4 ratio=1,4', 'λ=16']), {
      learning_rate: [1e-4, 2.5e-4],
      loraplus_lr_ratio: [16],
    });
    assert.deepEqual(parseGrid(['optimizer=adamw']), { optimizer: ['adamw'] });
    for (const bad of ['lr=fast', 'speed=1', 'ratio=-1', 'lr=2', 'optimizer=sgd'])
      assert.throws(
        () => parseGrid([bad]),
        (e: LoraPlusError) => e.code === 'tune/bad-grid',
        bad,
      );
    assert.throws(
      () => tuneSettings({ eta: '0.5' }),
      (e: LoraPlusError) => e.code === 'cli/usage',
    );
    assert.throws(
      () => tuneSettings({ rungs: '1.5' }),
      (e: LoraPlusError) => e.code === 'cli/usage',
    );
    assert.deepEqual(tuneSettings({ eta: '2', rungs: '4', evalSamples: '100' }), {
      eta: 2,
      rungs: 4,
      evalSamples: 100,
    });
    const noEval = tunableConfigFromObject(
      { model: STORIES, data: { train: path.join(SST2, 'dev.tsv') }, training: { learning_rate: 'auto' } },
      '/tmp',
    );
    assert.throws(
      () => planTune(noEval, {}, () => 10),
      (e: LoraPlusError) => e.code === 'tune/no-eval',
    );
  });
});
