// The tune dashboard's data shaping (webview/tune/model.ts) and its messages (src/protocol/tune-dashboard.ts), on a
// tune's events made by code: the lr_A × λ heatmaps filling in as rung results arrive (one per optimizer), diverged
// cells and the winner, the bracket, the header, and the trials' curves.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent } from '../../src/protocol/events';
import { summarizeTune } from '../../src/protocol/tune';
import {
  isHostToTuneDashboard,
  isTuneDashboardToHost,
  trialCurves,
  tuneHostMessage,
  tuneWebviewMessage,
} from '../../src/protocol/tune-dashboard';
import {
  bracket,
  CurveStore,
  curveColumns,
  curveTrials,
  headerLines,
  heatGrids,
  winnerText,
} from '../../webview/tune/model';
import { fakeTune } from '../helpers/tune-events';

const tune = fakeTune();
const upTo = (type: string, nth = 1) => {
  let seen = 0;
  return tune.events.slice(0, tune.events.findIndex((e) => e.type === type && ++seen === nth) + 1);
};
const byTrial = (s: ReturnType<typeof summarizeTune>, choice: 'latest' | number = 'latest') =>
  new Map(heatGrids(s, choice).flatMap((g) => g.cells.flat().map((c) => [c.trial, c] as const)));

describe('tune dashboard model', () => {
  it('the heatmap: rows lr_A, columns λ, cells the latest figure; diverged cells and the winner marked', () => {
    const s = summarizeTune(tune.events, false);
    const [grid, ...more] = heatGrids(s);
    assert.equal(more.length, 0, 'one optimizer, one heatmap');
    assert.deepEqual(
      [grid.rows, grid.cols],
      [
        ['5e-4', '2e-3', '1'],
        ['1', '16'],
      ],
    );
    assert.deepEqual(
      grid.cells.map((row) => row.map((c) => c.trial)),
      [
        ['lr5e-4-ratio1', 'lr5e-4-ratio16'],
        ['lr2e-3-ratio1', 'lr2e-3-ratio16'],
        ['lr1-ratio1', 'lr1-ratio16'],
      ],
    );
    const cells = byTrial(s);
    const w = cells.get(tune.winner)!;
    assert.ok(w.winner && w.mark === 'rung 3 ★' && w.rung === 2 && w.text === '72.0%');
    assert.equal(w.shade, 1, 'the best figure shown is the top of the ramp');
    for (const id of ['lr1-ratio1', 'lr1-ratio16']) {
      const c = cells.get(id)!;
      assert.ok(c.diverged && c.value === null && c.shade === null && c.text === 'diverged', id);
    }
    assert.equal(cells.get('lr2e-3-ratio1')!.mark, 'rung 1 ✗');
    assert.match(cells.get('lr5e-4-ratio16')!.title, /rung 2 \(step 3\): accuracy 68\.0% · loss 0\.660/);
    assert.match(cells.get('lr5e-4-ratio16')!.title, /lr_B 8e-3/);
  });

  it('fills in live: waiting and training cells before their rung result, colours only on figures', () => {
    const s = summarizeTune(upTo('rung_result', 2), true);
    const cells = byTrial(s);
    assert.equal(cells.get('lr5e-4-ratio1')!.text, '70.0%');
    assert.equal(cells.get('lr5e-4-ratio16')!.text, '67.0%');
    assert.equal(cells.get('lr2e-3-ratio1')!.text, '…', 'its rung has begun: training');
    assert.equal(cells.get('lr2e-3-ratio1')!.shade, null);
    assert.equal(cells.get('lr5e-4-ratio16')!.shade, 0, 'the worse of two figures is the bottom of the ramp');
  });

  it('one rung at a time, and the loss goal reverses the ramp', () => {
    const rung1 = byTrial(summarizeTune(tune.events, false), 0);
    assert.equal(rung1.get(tune.winner)!.text, '70.0%');
    assert.equal(rung1.get(tune.winner)!.mark, '★');
    const rung3 = byTrial(summarizeTune(tune.events, false), 2);
    assert.equal(rung3.get('lr2e-3-ratio1')!.value, null);
    const loss = fakeTune('/w/runs/lm', ['adamw'], 'loss');
    const cells = byTrial(summarizeTune(loss.events, false), 0);
    assert.equal(cells.get('lr5e-4-ratio1')!.shade, 1, 'the lowest loss is the best');
    assert.equal(cells.get('lr2e-3-ratio16')!.shade, 0);
    assert.equal(cells.get('lr5e-4-ratio1')!.text, '0.600');
  });

  it('several optimizers: one heatmap each, on one colour scale; one without λ has one column', () => {
    const two = fakeTune('/w/runs/opt', ['adamw', 'riemannian']);
    const grids = heatGrids(summarizeTune(two.events, false), 0);
    assert.deepEqual(
      grids.map((g) => [g.optimizer, g.cols]),
      [
        ['adamw', ['1', '16']],
        ['riemannian', ['no λ']],
      ],
    );
    assert.deepEqual(
      grids[1].cells.map((row) => row.map((c) => c.trial)),
      [['lr5e-4-riemannian'], ['lr2e-3-riemannian'], ['lr1-riemannian']],
    );
    assert.match(grids[1].cells[0][0].title, /lr_A 5e-4 · no λ · riemannian/);
    const shades = grids.flatMap((g) => g.cells.flat().map((c) => c.shade)).filter((x) => x !== null);
    assert.deepEqual([Math.min(...shades), Math.max(...shades)], [0, 1]);
  });

  it('the bracket: each rung best first, who continued, who stopped, who diverged, the winner', () => {
    const cols = bracket(summarizeTune(tune.events, false));
    assert.deepEqual(
      cols.map((c) => c.title),
      [
        'rung 1 · 1 step · 6 trials → 2 continue',
        'rung 2 · 3 steps · 2 trials → 1 continue',
        'rung 3 · 9 steps · 1 trial → winner',
      ],
    );
    assert.deepEqual(
      cols[0].entries.map((e) => [e.trial, e.mark]),
      [
        ['lr5e-4-ratio1', 'continued'],
        ['lr5e-4-ratio16', 'continued'],
        ['lr2e-3-ratio1', 'stopped'],
        ['lr2e-3-ratio16', 'stopped'],
        ['lr1-ratio1', 'diverged'],
        ['lr1-ratio16', 'diverged'],
      ],
    );
    assert.deepEqual(cols[2].entries, [
      { trial: tune.winner, value: 0.72, text: 'lr5e-4-ratio1 72.0%', mark: 'winner' },
    ]);
    const live = bracket(summarizeTune(upTo('rung_result', 1), true));
    assert.equal(live[0].entries[0].mark, 'judged');
    assert.equal(live[0].entries.at(-1)!.mark, 'training');
  });

  it('the header and the winner line', () => {
    const s = summarizeTune(tune.events, false);
    assert.deepEqual(headerLines(s), [
      'sequence-classification · 6 trials · judged by accuracy on 32 eval rows (loss breaks ties)',
      'rungs 1 → 3 → 9 steps · the best 1/3 continue · seed 5',
      "rung 3 of 3 · 16 of the full grid's 54 steps (30%)",
    ]);
    assert.equal(
      winnerText(s),
      'lr5e-4-ratio1: lr_A 5e-4 · λ 1 (lr_B 5e-4) · adamw · accuracy 55.0% on 218 eval examples',
    );
    assert.equal(winnerText(summarizeTune(upTo('promote'), true)), null);
  });

  it('curves: a reset replaces a trial’s points, later ones append; columns align on the union of steps', () => {
    const step = (s: number, loss: number) => ({ type: 'step', step: s, loss }) as unknown as EngineEvent;
    const evalAt = (s: number, accuracy: number) =>
      ({ type: 'eval', step: s, loss: 0.6, accuracy, examples: 32 }) as unknown as EngineEvent;
    const store = new CurveStore();
    store.add(trialCurves('lr5e-4-ratio1', [evalAt(0, 0.5), step(1, 0.7), evalAt(1, 0.7)], true));
    store.add(trialCurves('lr5e-4-ratio1', [step(2, 0.65), step(3, NaN)], false));
    store.add(trialCurves('lr5e-4-ratio16', [step(1, 0.9)], true));
    store.add(trialCurves('lr5e-4-ratio16', [step(1, 0.8), step(2, 0.75)], true)); // a resume rewrote the file
    const s = summarizeTune(tune.events, false);
    const metric = s.start!.metric;
    assert.deepEqual(curveTrials(s, store, 'loss'), ['lr5e-4-ratio1', 'lr5e-4-ratio16']);
    assert.deepEqual(curveTrials(s, store, 'eval'), ['lr5e-4-ratio1']);
    const loss = curveColumns(store, ['lr5e-4-ratio1', 'lr5e-4-ratio16'], 'loss', metric);
    assert.deepEqual([...loss.x], [1, 2, 3]);
    assert.deepEqual([...loss.ys[0]], [0.7, 0.65, NaN]);
    assert.deepEqual([...loss.ys[1]], [0.8, 0.75, NaN]);
    const ev = curveColumns(store, ['lr5e-4-ratio1'], 'eval', metric);
    assert.deepEqual(
      [[...ev.x], [...ev.ys[0]]],
      [
        [0, 1],
        [0.5, 0.7],
      ],
    );
  });

  it('messages carry the protocol version and are checked on arrival', () => {
    const s = summarizeTune(tune.events, false);
    assert.ok(isHostToTuneDashboard(tuneHostMessage('summary', { summary: s })));
    assert.ok(isHostToTuneDashboard(tuneHostMessage('init', { tuneDir: '/t', summary: s, curves: [] })));
    assert.ok(!isHostToTuneDashboard({ ...tuneHostMessage('summary', { summary: s }), v: 0 }));
    assert.ok(!isHostToTuneDashboard(tuneHostMessage('curves', { curves: [{ trial: 'x' } as never] })));
    assert.ok(isTuneDashboardToHost(tuneWebviewMessage('openTrial', { trial: 'lr1-ratio1' })));
    assert.ok(!isTuneDashboardToHost(tuneWebviewMessage('openTrial', { trial: '' })));
    assert.ok(!isTuneDashboardToHost({ v: 1, type: 'openFile', path: '/etc/passwd' }));
  });
});
