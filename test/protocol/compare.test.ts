// The host ⇄ compare webview messages (src/protocol/compare.ts): what one side builds, the other side's guard accepts
// after the trip through postMessage (a structured clone; the report itself came from the engine as JSON); anything
// else (another version, an unknown type, a report whose per-item arrays do not match its items) is dropped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  COMPARE_PROTOCOL,
  hostMessage,
  isCompareReport,
  isCompareState,
  isCompareToHost,
  isHostToCompare,
  webviewMessage,
  type CompareItem,
  type CompareReport,
  type EvalOutcome,
} from '../../src/protocol/compare';

function item(label: string): CompareItem {
  return {
    path: `/runs/${label}`,
    label,
    kind: 'run',
    run: label,
    run_dir: `/runs/${label}`,
    adapter_dir: `/runs/${label}/final`,
    step: 4,
    status: 'finished',
    config: { model: 'stories260k', 'lora.target_modules': ['q_proj', 'v_proj'] },
    metrics: { step: 4, tokens_seen: 256, train_loss: 4.5, eval: null, best_eval: null },
    adapter: {
      r: 2,
      lora_alpha: 4,
      use_rslora: false,
      fan_in_fan_out: false,
      base_model: 'stories260k',
      lora_modules: 1,
      modules_to_save: [],
    },
  };
}

const module = {
  module: 'model.layers.0.self_attn.q_proj',
  layer: 0,
  kind: 'self_attn.q_proj',
  r: 2,
  scaling: 2,
  shape: [64, 64] as [number, number],
  norm: 0.5,
  sigma: [0.4, 0.3],
  effective_rank: 1.98,
  numerical_rank: 2,
  energy_rank_90: 2,
};
const report: CompareReport = {
  version: 1,
  created: '2024-01-01T00:00:00.000Z',
  items: [item('a'), item('b')],
  config_keys: ['model', 'lora.target_modules'],
  differs: [],
  curves: [
    {
      step: [1, 2],
      tokens_seen: [64, 128],
      loss: [5, null],
      eval: { step: [2], tokens_seen: [128], loss: [4.9], accuracy: [null], perplexity: [134] },
    },
    null,
  ],
  modules: [[module], [module]],
  similarity: [
    {
      a: 0,
      b: 1,
      modules: [
        {
          module: module.module,
          layer: 0,
          kind: module.kind,
          r1: 2,
          r2: 2,
          delta: { phi: 0.5, diag: [1, 0.5], grid: [[1, 0.5]] },
          out: { phi: 0.25, diag: [0.5, 0.25] },
          A: { phi: null, diag: [] },
          cosine: 0.3,
          a_cosine: 0.99,
        },
      ],
      skipped: [],
      mean: { delta: 0.5, out: 0.25, A: null, cosine: 0.3, a_cosine: 0.99 },
      shared_init: { same: true, seed: 42, differs: [] },
    },
  ],
  eval_config: '/runs/a/config.yaml',
  definitions: { phi: 'φ(i, j) = ‖U_iᵀ V_j‖_F² / min(i, j)' },
};
const result: EvalOutcome = { loss: 4.2, perplexity: 66.7, examples: 8, data: 'eval.jsonl', backend: 'wasm' };
const trip = (m: unknown): unknown => structuredClone(m);

describe('compare protocol', () => {
  it('every host message survives the trip and passes the webview’s guard', () => {
    const sent = [
      hostMessage('report', { report: JSON.parse(JSON.stringify(report)) as CompareReport }),
      hostMessage('reportError', { error: { code: 'compare/not-found', message: 'no such folder', file: '/x' } }),
      hostMessage('evalResult', { item: 1, result }),
      hostMessage('evalError', { item: 0, error: { code: 'workspace/untrusted', message: 'untrusted' } }),
    ];
    for (const m of sent) {
      assert.equal(m.v, COMPARE_PROTOCOL);
      const got = trip(m);
      assert.ok(isHostToCompare(got), m.type);
      assert.deepEqual(got, m);
      assert.equal(isCompareToHost(got), false, `${m.type} is not a webview message`);
    }
  });

  it('every webview message survives the trip and passes the host’s guard', () => {
    for (const m of [webviewMessage('ready', {}), webviewMessage('runEval', { item: 1 })]) {
      const got = trip(m);
      assert.ok(isCompareToHost(got), m.type);
      assert.deepEqual(got, m);
      assert.equal(isHostToCompare(got), false);
    }
  });

  it('drops another protocol version, unknown types and malformed payloads', () => {
    const msg = hostMessage('report', { report });
    const withReport = (patch: Partial<Record<keyof CompareReport, unknown>>) => ({
      ...msg,
      report: { ...report, ...patch },
    });
    const bad: [string, unknown][] = [
      ['another version', { ...msg, v: COMPARE_PROTOCOL + 1 }],
      ['no version', { type: 'report', report }],
      ['unknown type', { v: COMPARE_PROTOCOL, type: 'reload' }],
      ['inherited name', { v: COMPARE_PROTOCOL, type: 'toString' }],
      ['no report', { v: COMPARE_PROTOCOL, type: 'report' }],
      ['another report version', withReport({ version: 2 })],
      ['items not a list', withReport({ items: report.items[0] })],
      ['an item without a label', withReport({ items: [report.items[0], { ...report.items[1], label: 3 }] })],
      ['one module list too few', withReport({ modules: [[module]] })],
      ['curves not per item', withReport({ curves: [null] })],
      ['a pair naming no item', withReport({ similarity: [{ ...report.similarity[0], b: 2 }] })],
      ['config keys not strings', withReport({ config_keys: [1] })],
      ['an error without a message', { v: COMPARE_PROTOCOL, type: 'reportError', error: { code: 'x' } }],
      [
        'an eval without a loss',
        { ...hostMessage('evalResult', { item: 0, result }), result: { ...result, loss: '4' } },
      ],
      [
        'a fractional item',
        { ...hostMessage('evalError', { item: 0, error: { code: 'x', message: 'y' } }), item: 0.5 },
      ],
      ['null', null],
      ['a string', 'report'],
    ];
    for (const [why, m] of bad) assert.equal(isHostToCompare(m), false, why);
    for (const item of [-1, 1.5, '1', undefined])
      assert.equal(isCompareToHost({ v: COMPARE_PROTOCOL, type: 'runEval', item }), false, `item ${String(item)}`);
    assert.equal(isCompareToHost({ type: 'ready' }), false, 'the unversioned ready of older pages');
  });

  it('checks a report and the saved state on their own', () => {
    assert.ok(isCompareReport(report));
    assert.ok(isCompareReport({ ...report, evals: [{ item: 0, ...result }] }));
    assert.equal(isCompareReport({ ...report, eval_config: undefined }), false);
    assert.ok(isCompareState({ paths: ['/runs/a', '/runs/b'] }));
    for (const s of [undefined, null, {}, { paths: [] }, { paths: [''] }, { paths: '/runs/a' }])
      assert.equal(isCompareState(s), false, JSON.stringify(s));
  });
});
