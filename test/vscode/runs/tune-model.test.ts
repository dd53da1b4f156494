// The run explorer's tune items (src/vscode/runs/tune-model.ts) on a tune's events made by code: the group item's
// description and menus as the tune goes on, its trials best first with how each stands, and the progress line.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { summarizeTune } from '../../../src/protocol/tune';
import { CONTEXT } from '../../../src/vscode/command-table';
import {
  plannedSteps,
  settingsText,
  trialOrder,
  trialOutcome,
  tuneDirOfTrial,
  tuneItem,
  tuneProgress,
} from '../../../src/vscode/runs/tune-model';
import { fakeTune } from '../../helpers/tune-events';

const DIR = '/w/runs/mytune';

describe('tune items of the run explorer', () => {
  const tune = fakeTune(DIR);
  const upTo = (type: string, nth = 1) => {
    let seen = 0;
    const i = tune.events.findIndex((e) => e.type === type && ++seen === nth);
    return tune.events.slice(0, i + 1);
  };

  it('a finished tune: status first, the winner and its figure, the done menus, its trials as children', () => {
    const s = summarizeTune(tune.events, false);
    const item = tuneItem(DIR, s);
    assert.equal(item.label, 'mytune');
    assert.equal(item.description, 'finished · winner lr_A 5e-4 · λ 1 · acc 55.0%');
    assert.equal(item.contextValue, CONTEXT.tuneDone);
    assert.equal(item.icon.id, 'pass');
    assert.ok(item.collapsible);
    assert.match(item.tooltip, /grid: lr_A 5e-4, 2e-3, 1 × λ 1, 16 \(6 trials\)/);
    assert.match(item.tooltip, /steps: 16 of the full grid's 54 \(30%\)/);
  });

  it('a running tune: "k of n trials, rung r/R" counts the trials judged in the rung now training', () => {
    const s = summarizeTune(upTo('rung_result', 2), true);
    assert.equal(tuneItem(DIR, s).description, 'running · 2 of 6 trials, rung 1/3');
    assert.equal(tuneItem(DIR, s).contextValue, CONTEXT.tuneRunning);
    const second = summarizeTune(upTo('rung_start', 2), true);
    assert.equal(tuneItem(DIR, second).description, 'running · 0 of 2 trials, rung 2/3');
    const stopped = summarizeTune(upTo('rung_start', 2), false);
    assert.equal(tuneItem(DIR, stopped).description, 'interrupted · rung 2/3 · 6 of 54 steps');
  });

  it('trials best first: the winner, then the deepest rung, then the figure; diverged last', () => {
    const s = summarizeTune(tune.events, false);
    const order = trialOrder(s).map((t) => t.trial);
    assert.deepEqual(order, [
      'lr5e-4-ratio1',
      'lr5e-4-ratio16',
      'lr2e-3-ratio1',
      'lr2e-3-ratio16',
      'lr1-ratio1',
      'lr1-ratio16',
    ]);
    const outcome = Object.fromEntries(s.trials.map((t) => [t.trial, trialOutcome(t)]));
    assert.equal(outcome['lr5e-4-ratio1'], '★ winner');
    assert.equal(outcome['lr5e-4-ratio16'], 'out after rung 2');
    assert.equal(outcome['lr2e-3-ratio1'], 'out after rung 1');
    assert.equal(outcome['lr1-ratio16'], 'diverged');
    const mid = summarizeTune(upTo('promote'), true);
    assert.equal(trialOutcome(mid.trials.find((t) => t.trial === 'lr5e-4-ratio1')!), 'continues to rung 2');
  });

  it('the loss-judged order puts the lowest loss first', () => {
    const s = summarizeTune(fakeTune(DIR, ['adamw'], 'loss').events, false);
    assert.deepEqual(
      trialOrder(s)
        .slice(0, 3)
        .map((t) => t.trial),
      ['lr5e-4-ratio1', 'lr5e-4-ratio16', 'lr2e-3-ratio1'],
    );
    assert.equal(tuneItem(DIR, s).description, 'finished · winner lr_A 5e-4 · λ 1 · ppl 24.5');
    const riemannian = { learning_rate: 2.5e-4, loraplus_lr_ratio: 1, optimizer: 'riemannian' };
    assert.equal(settingsText({ settings: riemannian }), 'lr_A 2.5e-4 · riemannian', 'no λ to speak of');
  });

  it('progress: steps spent against successive halving’s plan; trial folders map to their tune', () => {
    const start = summarizeTune(tune.events, false).start!;
    assert.equal(plannedSteps(start), 6 * 1 + 2 * 2 + 1 * 6);
    const p = tuneProgress(summarizeTune(upTo('rung_start', 2), true));
    assert.equal(p.message, 'rung 2/3 · 0 of 2 trials · 6 of ~16 steps');
    assert.ok(Math.abs(p.percent - (100 * 6) / 16) < 1e-9);
    assert.equal(tuneProgress(summarizeTune(tune.events, false)).percent, 99, 'never 100 before the process ends');
    assert.equal(tuneDirOfTrial(path.join(DIR, 'trials', 'lr1-ratio1')), DIR);
    assert.equal(tuneDirOfTrial('/w/runs/plain-run'), null);
  });
});
