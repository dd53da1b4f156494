// The compare webview's data shaping (webview/compare/model.ts): what the tables, the overlaid curves and the
// similarity heatmap show for a report.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  CompareCurves,
  CompareItem,
  CompareReport,
  ModuleSimilarity,
  ModuleStat,
  PairSimilarity,
} from '../../src/protocol/compare';
import {
  alignedCurves,
  availableCurves,
  BASES,
  cellAt,
  configRows,
  curveColumns,
  heatColor,
  heatmap,
  itemColors,
  itemName,
  metricRows,
  moduleRows,
  pairLabel,
  similaritySummary,
  sparkHeights,
} from '../../webview/compare/model';

function item(label: string, config: CompareItem['config'], metrics: CompareItem['metrics'] = null): CompareItem {
  return {
    path: `/runs/${label}`,
    label,
    kind: metrics ? 'run' : 'adapter',
    run: metrics ? label : null,
    run_dir: null,
    adapter_dir: `/runs/${label}/final`,
    step: metrics?.step ?? null,
    status: metrics ? 'finished' : null,
    config,
    metrics,
    adapter: {
      r: 4,
      lora_alpha: 8,
      use_rslora: false,
      fan_in_fan_out: false,
      base_model: null,
      lora_modules: 2,
      modules_to_save: [],
    },
  };
}
function curves(steps: number[], tokensPerStep: number, evalSteps: number[]): CompareCurves {
  return {
    step: steps,
    tokens_seen: steps.map((s) => s * tokensPerStep),
    loss: steps.map((s) => 5 - s / 10),
    eval: {
      step: evalSteps,
      tokens_seen: evalSteps.map((s) => (s === 99 ? null : s * tokensPerStep)),
      loss: evalSteps.map(() => 4),
      accuracy: evalSteps.map(() => null),
      perplexity: evalSteps.map(() => 54.6),
    },
  };
}
function stat(module: string, layer: number | null, sigma: number[]): ModuleStat {
  return {
    module,
    layer,
    kind: module.split('.').slice(-2).join('.'),
    r: sigma.length,
    scaling: 2,
    shape: [8, 8],
    norm: Math.hypot(...sigma),
    sigma,
    effective_rank: 1,
    numerical_rank: 1,
    energy_rank_90: 1,
  };
}
function sim(module: string, layer: number | null, kind: string, phi: number | null, diag: number[]): ModuleSimilarity {
  const out = { phi: phi === null ? null : phi / 2, diag: diag.map((d) => d / 2) };
  const cosine = phi === null ? null : phi - 1;
  return {
    module,
    layer,
    kind,
    r1: 4,
    r2: 4,
    delta: { phi, diag },
    out,
    A: { phi: 0.5, diag: [0.5] },
    cosine,
    a_cosine: 1,
  };
}

const report: CompareReport = {
  version: 1,
  created: '',
  definitions: {},
  eval_config: null,
  items: [
    item(
      'a',
      { model: 'm', 'lora.r': 4, 'lora.target_modules': ['q_proj', 'v_proj'], 'training.learning_rate': 0.001 },
      { step: 4, tokens_seen: 400, train_loss: 4.6, eval: null, best_eval: { step: 4, loss: 4, perplexity: 54.6 } },
    ),
    item('b', { model: 'm', 'lora.r': 4, 'lora.target_modules': ['q_proj'] }),
  ],
  config_keys: ['model', 'lora.r', 'lora.target_modules', 'training.learning_rate'],
  differs: ['lora.target_modules', 'training.learning_rate'],
  curves: [curves([1, 2, 3, 4], 100, [2, 4, 99]), curves([1, 3], 50, [])],
  modules: [
    [stat('model.layers.10.q_proj', 10, [2, 1]), stat('model.layers.2.q_proj', 2, [4, 0])],
    [stat('model.layers.2.q_proj', 2, [1, 1])],
  ],
  similarity: [],
};

describe('compare webview model', () => {
  it('config rows: every key or only those that differ; lists joined, a missing key shown as —', () => {
    assert.equal(configRows(report, false).length, 4);
    const rows = configRows(report, true);
    assert.deepEqual(
      rows.map((r) => r.key),
      ['lora.target_modules', 'training.learning_rate'],
    );
    assert.deepEqual(rows[0].cells, ['q_proj, v_proj', 'q_proj']);
    assert.deepEqual(rows[1].cells, ['0.001', '—']);
    assert.ok(rows.every((r) => r.differs));
  });

  it('metric rows keep only figures some item has', () => {
    const labels = metricRows(report).map((r) => r.label);
    assert.deepEqual(labels, ['step', 'tokens seen', 'train loss', 'best eval loss', 'best perplexity']);
    assert.deepEqual(metricRows(report)[0].values, [4, null]);
  });

  it('curves are aligned on the union of x values, by step or by tokens seen', () => {
    const byStep = alignedCurves(report, 'loss', 'step');
    assert.deepEqual(byStep.x, [1, 2, 3, 4]);
    assert.deepEqual(byStep.ys[1], [4.9, null, 4.7, null]);
    // By tokens: item b saw 50 tokens a step, so its step 3 lines up with item a's 150 (a has no point there).
    const byTokens = alignedCurves(report, 'loss', 'tokens_seen');
    assert.deepEqual(byTokens.x, [50, 100, 150, 200, 300, 400]);
    assert.deepEqual(byTokens.ys[0], [null, 4.9, null, 4.8, 4.7, 4.6]);
    // An eval whose tokens are unknown has no place on the tokens axis.
    assert.deepEqual(alignedCurves(report, 'eval_loss', 'step').x, [2, 4, 99]);
    assert.deepEqual(alignedCurves(report, 'eval_loss', 'tokens_seen').x, [200, 400]);
    assert.deepEqual(availableCurves(report), ['loss', 'eval_loss', 'perplexity']);
    // sft runs add the answers' token accuracy and exact match (reports of older versions have neither).
    const c0 = report.curves[0]!;
    const sft = { ...report, curves: [{ ...c0, eval: { ...c0.eval, token_accuracy: c0.eval.step.map(() => 0.5) } }] };
    assert.deepEqual(availableCurves(sft), ['loss', 'eval_loss', 'perplexity', 'token_accuracy']);
    assert.deepEqual(
      alignedCurves(sft, 'token_accuracy', 'step').ys[0],
      c0.eval.step.map(() => 0.5),
    );
  });

  it('curve columns for the line chart: typed, NaN where an item has no point', () => {
    const c = curveColumns(report, 'loss', 'step');
    assert.equal(c.n, 4);
    assert.deepEqual([...c.x], [1, 2, 3, 4]);
    assert.ok(c.ys.every((y) => y instanceof Float64Array && y.length === c.n));
    assert.deepEqual(
      [...c.ys[1]].map((v) => (Number.isNaN(v) ? null : v)),
      [4.9, null, 4.7, null],
    );
    assert.equal(curveColumns(report, 'accuracy', 'step').ys[0].every(Number.isNaN), true);
  });

  it('item colours cycle through the theme palette', () => {
    assert.deepEqual(itemColors(['#a', '#b'], 3), ['#a', '#b', '#a']);
    assert.deepEqual(itemColors(['#a'], 0), []);
  });

  it('module rows in layer order (2 before 10), with a shared σ scale per row', () => {
    const rows = moduleRows(report);
    assert.deepEqual(
      rows.map((r) => r.module),
      ['model.layers.2.q_proj', 'model.layers.10.q_proj'],
    );
    assert.equal(rows[0].sigmaMax, 4);
    assert.equal(rows[1].cells[1], null);
    assert.deepEqual(sparkHeights([4, 1, 0, 0.01], 4), [1, 0.25, 0, 0.02]);
  });

  it('heatmap: layer × module kind with φ(r1, r2), or module × top-i with φ(i, i); holes are null', () => {
    const pair: PairSimilarity = {
      a: 0,
      b: 1,
      skipped: [],
      mean: { delta: null, out: null, A: 0.5, cosine: null, a_cosine: 1 },
      shared_init: null,
      modules: [
        sim('m.layers.0.q', 0, 'q', 0.9, [1, 0.9]),
        sim('m.layers.1.v', 1, 'v', null, []),
        sim('m.layers.1.q', 1, 'q', 0.7, [0.8, 0.7]),
        sim('score', null, 'score', 0.3, [0.3]),
      ],
    };
    const lk = heatmap(pair, 'delta', 'layer-kind');
    assert.deepEqual(lk.rows, ['layer 0', 'layer 1', 'other']);
    assert.deepEqual(lk.cols, ['q', 'v', 'score']);
    assert.deepEqual(lk.values, [
      [0.9, null, null],
      [0.7, null, null],
      [null, null, 0.3],
    ]);
    assert.equal(lk.modules[1][1], 'm.layers.1.v'); // a zero ΔW: the module is there, φ is not
    assert.equal(lk.modules[0][1], null);
    const mr = heatmap(pair, 'delta', 'module-rank');
    assert.deepEqual(mr.cols, ['1', '2']);
    assert.deepEqual(mr.values[0], [1, 0.9]);
    assert.deepEqual(mr.values[3], [0.3, null]);
    assert.deepEqual(heatmap(pair, 'A', 'layer-kind').values[0], [0.5, null, null]);
    // The output side and the cosine: one more reading per module; the cosine has one column per module.
    assert.deepEqual(heatmap(pair, 'out', 'layer-kind').values[1], [0.35, null, null]);
    assert.deepEqual(heatmap(pair, 'out', 'module-rank').values[0], [0.5, 0.45]);
    const cos = heatmap(pair, 'cosine', 'module-rank');
    assert.deepEqual(cos.cols, ['cos']);
    assert.deepEqual(
      cos.values.map((row) => row.map((v) => (v === null ? null : Number(v.toFixed(6))))),
      [[-0.1], [null], [-0.3], [-0.7]],
    );
    assert.deepEqual(BASES[0][0], 'out', 'the output side, which tells runs of one seed apart, comes first');
  });

  it('the similarity summary gives every mean and says what a shared lora_A start means for the input side', () => {
    const named = structuredClone(report);
    named.items[0].caption = 'λ 16';
    named.items[1].caption = 'λ 1';
    const pair: PairSimilarity = {
      a: 0,
      b: 1,
      skipped: [],
      modules: [sim('m.layers.0.q', 0, 'q', 0.98, [1, 0.98])],
      mean: { delta: 0.98, out: 0.49, A: 0.98, cosine: 0.6, a_cosine: 0.999 },
      shared_init: { same: true, seed: 1, differs: [] },
    };
    assert.equal(pairLabel(named, pair), 'λ 16 vs λ 1');
    assert.equal(itemName(report.items[0]), 'a', 'no caption: the label');
    const [means, init] = similaritySummary(named, pair);
    assert.match(
      means,
      /^λ 16 vs λ 1, mean over 1 shared module: cosine 0\.600 · output side φ 0\.490 · input side φ 0\.980/,
    );
    assert.match(init, /same lora_A \(seed 1.*φ ≈ 1 by construction/);
    const moved = similaritySummary(named, { ...pair, mean: { ...pair.mean, a_cosine: 0.5 } })[1];
    assert.match(moved, /A has moved from it/);
    const apart = { same: false, seed: null, differs: ['training.seed'] };
    assert.match(similaritySummary(named, { ...pair, shared_init: apart })[1], /training\.seed differ.*§7/);
    assert.match(similaritySummary(named, { ...pair, shared_init: null })[1], /not known/);
  });

  it('colour ramp ends and clamps; hover finds the cell under the pointer', () => {
    assert.equal(heatColor(0), 'rgb(68, 1, 84)');
    assert.equal(heatColor(1), 'rgb(253, 231, 37)');
    assert.equal(heatColor(2), heatColor(1));
    assert.notEqual(heatColor(0.4), heatColor(0.6));
    const box = { left: 50, top: 20, cellW: 30, cellH: 10, rows: 3, cols: 2 };
    assert.deepEqual(cellAt(85, 45, box), { row: 2, col: 1 });
    assert.equal(cellAt(40, 45, box), null);
    assert.equal(cellAt(85, 55, box), null);
  });
});
