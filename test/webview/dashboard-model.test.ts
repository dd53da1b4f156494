// The dashboard's event → chart data reduction (webview/dashboard/model.ts, ab-model.ts, webview/shared/series.ts):
// a real stories260k run's metrics.jsonl, and synthetic streams for what a short real run cannot show (a stalled B
// side, a resumed run, 100,000 steps).
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load';
import { readMetrics } from '../../src/engine/runs/writer';
import { train } from '../../src/engine/train/train';
import { packModules } from '../../src/protocol/dashboard';
import type { EngineEvent, ModuleStats, RunStartEvent, StepEvent } from '../../src/protocol/events';
import { AB_QUANTITIES, detectStalls, heatmapCells } from '../../webview/dashboard/ab-model';
import { heatScale } from '../../webview/dashboard/heat-scale';
import { bGroupTensors, lossWithEma, reduceForDrawing, RunModel } from '../../webview/dashboard/model';
import { Column, emaInto, minMaxIndices } from '../../webview/shared/series';
import { SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const MODULES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.0.self_attn.v_proj',
  'model.layers.1.self_attn.q_proj',
];

function runStart(over: Partial<RunStartEvent> = {}): RunStartEvent {
  return {
    type: 'run_start',
    time: '2026-01-01T00:00:00Z',
    run_name: 'synthetic',
    run_dir: '/tmp/synthetic',
    backend: 'wasm',
    device: 'wasm (1 thread)',
    threads: 1,
    backend_notes: [],
    model: 'stories260k',
    model_type: 'llama',
    task: 'causal-lm',
    total_steps: 100,
    start_step: 0,
    params: { total: 1000, trainable: 100, lora: 100 },
    lora: { r: 4, lora_alpha: 8, scaling: 2, target_modules: MODULES, modules_to_save: [] },
    loraplus_lr_ratio: 16,
    groups: [
      { name: 'A', lr: 1e-3, weight_decay: 0, params: MODULES.map((m) => `${m}.lora_A.weight`) },
      { name: 'B', lr: 16e-3, weight_decay: 0, params: MODULES.map((m) => `${m}.lora_B.weight`) },
    ],
    train_examples: 10,
    eval_examples: 0,
    ...over,
  };
}

/** A step whose module figures come from `stats(module index)`. */
function step(n: number, stats: (i: number) => Omit<ModuleStats, 'module'>, loss = 3 - n * 1e-3): StepEvent {
  return {
    type: 'step',
    step: n,
    epoch: n / 10,
    loss,
    lr: { A: 1e-3, B: 16e-3 },
    grad_norm: 1,
    tokens_per_s: 100,
    tokens_seen: n * 64,
    elapsed_s: n,
    modules: MODULES.map((module, i) => ({ module, ...stats(i) })),
  };
}

const healthy = (i: number) => ({ grad_A: 0.1 * (i + 1), grad_B: 0.2, delta_A: 1e-3, delta_B: 16e-3 });

describe('dashboard model: a real run', () => {
  let events: EngineEvent[] = [];
  before(async () => {
    await useBackend();
    const dir = tempDir();
    const config = configFromObject(
      {
        model: STORIES,
        task: 'causal-lm',
        device: 'wasm',
        output_dir: path.join(dir, 'runs'),
        run_name: 'dash',
        data: {
          train: path.join(SST2, 'dev.tsv'),
          eval: path.join(SST2, 'dev.tsv'),
          text_field: 'sentence',
          max_length: 32,
          max_train_samples: 48,
          max_eval_samples: 8,
        },
        lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
        training: {
          learning_rate: 2e-3,
          loraplus_lr_ratio: 16,
          batch_size: 4,
          max_steps: 5,
          eval_every: 2,
          lr_scheduler: 'linear',
          warmup_steps: 1,
          seed: 1,
        },
      },
      dir,
    );
    const result = await train(config, () => {});
    events = readMetrics(result.runDir);
  });

  it('reduces metrics.jsonl into series that match its step and eval events', () => {
    const m = new RunModel();
    m.ingest(events);
    const steps = events.filter((e): e is StepEvent => e.type === 'step');
    const evals = events.filter((e) => e.type === 'eval');
    assert.equal(steps.length, 5);
    assert.deepEqual(
      [...m.steps.x.view()],
      steps.map((e) => e.step),
    );
    assert.deepEqual(
      [...m.steps.loss.view()],
      steps.map((e) => e.loss),
    );
    assert.deepEqual(
      [...m.evals.loss.view()],
      evals.map((e) => e.loss),
    );
    assert.equal(m.evalMetric, 'perplexity');
    assert.equal(m.lastLoss, steps.at(-1)!.loss);
    assert.equal(m.lastStep, 5);
    assert.equal(m.end?.status, 'finished');
    // LoRA+: B's learning rate is λ times A's at every step (warmup and decay scale both).
    const [a, b] = [m.lr.get('A')!.view(), m.lr.get('B')!.view()];
    assert.equal(a.length, 5);
    for (let i = 0; i < a.length; i++)
      if (a[i] > 0) assert.ok(Math.abs(b[i] / a[i] - 16) < 1e-9, `step ${i + 1}: ${b[i]} / ${a[i]}`);
  });

  it('builds module × logged-step A/B matrices with the events’ values, and flags no stall on a healthy run', () => {
    const m = new RunModel();
    m.ingest(events);
    const start = events.find((e): e is RunStartEvent => e.type === 'run_start')!;
    const steps = events.filter((e): e is StepEvent => e.type === 'step');
    assert.deepEqual(m.ab.modules, start.lora.target_modules);
    assert.ok(m.ab.modules.length >= 2);
    assert.equal(m.ab.cols, steps.length);
    for (const [c, e] of steps.entries()) {
      for (const s of e.modules) {
        const row = m.ab.modules.indexOf(s.module);
        // Stored as float32: equal to the event's value at float32 precision.
        assert.equal(m.ab.get('delta_B', row, c), Math.fround(s.delta_B));
        assert.equal(m.ab.get('grad_A', row, c), Math.fround(s.grad_A));
        const ratio = m.ab.get('delta_ratio', row, c);
        assert.ok(
          Math.abs(ratio - s.delta_B / s.delta_A) <= 1e-6 * Math.abs(ratio) ||
            (!Number.isFinite(ratio) && s.delta_A === 0),
        );
      }
    }
    // PEFT's init has B = 0, so A's gradient is exactly zero on step 1: the stall check must not read that as a stall.
    assert.equal(steps[0].modules[0].grad_A, 0);
    assert.deepEqual(m.stalls(), []);
  });

  it('lists every lora_B tensor (and nothing of A) in the B learning-rate group', () => {
    const m = new RunModel();
    m.ingest(events);
    const listed = bGroupTensors(m.groups).flatMap((g) => g.params);
    for (const module of m.ab.modules) {
      assert.ok(listed.includes(`${module}.lora_B.weight`), module);
      assert.ok(!listed.includes(`${module}.lora_A.weight`), module);
    }
  });
});

describe('dashboard model: synthetic streams', () => {
  it('flags B when its updates are 100× smaller than A’s, and A only beyond what λ asks for', () => {
    const stalled = new RunModel();
    stalled.ingest([
      runStart(),
      ...Array.from({ length: 20 }, (_, k) =>
        step(k + 1, () => ({ grad_A: 0.1, grad_B: 0.1, delta_A: 1e-3, delta_B: 1e-3 / 150 })),
      ),
    ]);
    const flags = stalled.stalls();
    assert.deepEqual(
      flags.map((f) => [f.module, f.side]),
      MODULES.map((m) => [m, 'B']),
    );
    assert.ok(Math.abs(flags[0].ratio - 1 / 150) < 1e-6);

    const fine = new RunModel();
    fine.ingest([runStart(), ...Array.from({ length: 20 }, (_, k) => step(k + 1, healthy))]);
    assert.deepEqual(fine.stalls(), []);

    // ‖ΔB‖/‖ΔA‖ = 1000 is λ = 16 times 62: not a stall; 5000 is (A moves 100× less than λ asks).
    const ratioOf = (r: number) =>
      Array.from({ length: 10 }, (_, k) =>
        step(k + 1, () => ({ grad_A: 1, grad_B: 1, delta_A: 1e-5, delta_B: r * 1e-5 })),
      );
    const a = new RunModel();
    a.ingest([runStart(), ...ratioOf(1000)]);
    assert.deepEqual(a.stalls(), []);
    a.ingest(ratioOf(5000).map((e) => ({ ...e, step: e.step + 10 })));
    assert.deepEqual([...new Set(a.stalls().map((f) => f.side))], ['A']);
  });

  it('judges stalls on the recent window only: a B side that recovered is not flagged', () => {
    const m = new RunModel();
    const stalledThenFine = (n: number) => () => ({
      grad_A: 1,
      grad_B: 1,
      delta_A: 1e-3,
      delta_B: n <= 60 ? 1e-6 : 16e-3,
    });
    m.ingest([runStart(), ...Array.from({ length: 60 }, (_, k) => step(k + 1, stalledThenFine(k + 1)))]);
    assert.equal(detectStalls(m.ab, 16).length, MODULES.length);
    m.ingest(Array.from({ length: 30 }, (_, k) => step(k + 61, stalledThenFine(k + 61))));
    assert.equal(detectStalls(m.ab, 16, 100, 50).length, 0, 'median over the last 50: 30 good steps of 50');
    assert.equal(
      detectStalls(m.ab, 16, 100, 90).length,
      MODULES.length,
      'over all 90 steps the stalled ones still dominate',
    );
  });

  it('reads out_A/out_B when present and leaves the output ratio empty for older files', () => {
    const m = new RunModel();
    m.ingest([runStart(), step(1, (i) => ({ ...healthy(i), out_A: 0.5, out_B: 2 * (i + 1) }))]);
    assert.equal(m.ab.hasOutput, true);
    assert.deepEqual(
      MODULES.map((_, r) => m.ab.get('out_ratio', r, 0)),
      [4, 8, 12],
    );
    const old = new RunModel();
    old.ingest([runStart(), step(1, healthy)]);
    assert.equal(old.ab.hasOutput, false);
    assert.ok(Number.isNaN(old.ab.get('out_ratio', 0, 0)));
    for (const q of AB_QUANTITIES) assert.equal(old.ab.row(q, 0).length, 1);
  });

  it('a resumed run rewinds to its checkpoint: the redone steps replace the old ones', () => {
    const m = new RunModel();
    m.ingest([
      runStart(),
      ...[1, 2, 3, 4].map((n) => step(n, healthy, 10 + n)),
      { type: 'eval', step: 2, loss: 5, examples: 4 },
      { type: 'eval', step: 4, loss: 4, examples: 4 },
      { type: 'end', status: 'stopped', step: 4, elapsed_s: 4, final_adapter: null, last_checkpoint: 'c' },
    ]);
    m.ingest([runStart({ start_step: 2 }), step(3, healthy, 33)]);
    assert.deepEqual([...m.steps.x.view()], [1, 2, 3]);
    assert.deepEqual([...m.steps.loss.view()], [11, 12, 33]);
    assert.deepEqual([...m.evals.x.view()], [2]);
    assert.equal(m.ab.cols, 3);
    assert.equal(m.lr.get('B')!.length, 3);
    assert.equal(m.end, null); // running again
  });

  it('packed module figures (as the host sends them) build the same model as the events themselves', () => {
    const events: EngineEvent[] = [
      runStart(),
      ...Array.from({ length: 30 }, (_, k) =>
        step(k + 1, (i) => ({ ...healthy(i), delta_B: (k + 1) * 1e-3, out_A: 0.5, out_B: i + 1 })),
      ),
    ];
    const [plain, viaPack] = [new RunModel(), new RunModel()];
    plain.ingest(events);
    const { events: stripped, packed } = packModules(events.slice(0, 20));
    viaPack.ingest(stripped, packed);
    const rest = packModules(events.slice(20));
    viaPack.ingest(rest.events, rest.packed);
    assert.deepEqual([...viaPack.steps.loss.view()], [...plain.steps.loss.view()]);
    assert.equal(viaPack.ab.hasOutput, true);
    for (const q of AB_QUANTITIES)
      for (let r = 0; r < MODULES.length; r++)
        assert.deepEqual([...viaPack.ab.row(q, r)], [...plain.ab.row(q, r)], `${q} row ${r}`);
  });

  it('a value JSON wrote as null (NaN, ∞) stays a gap, not a zero', () => {
    const m = new RunModel();
    const nulls = JSON.parse(
      JSON.stringify([
        runStart(),
        step(1, () => ({ grad_A: NaN, grad_B: 1, delta_A: 1, delta_B: 1 }), NaN),
        { type: 'eval', step: 1, loss: Infinity, examples: 1 },
      ]),
    ) as EngineEvent[];
    m.ingest(nulls);
    assert.ok(Number.isNaN(m.steps.loss.at(0)));
    assert.ok(Number.isNaN(m.evals.loss.at(0)));
    assert.ok(Number.isNaN(m.ab.get('grad_A', 0, 0)));
    assert.equal(m.ab.get('grad_B', 0, 0), 1);
  });

  it('sft samples: stored by step with their eval scores; a resumed run drops the redone steps’ answers', () => {
    const m = new RunModel();
    const at = (n: number, output: string): EngineEvent[] => [
      { type: 'eval', step: n, loss: 2, perplexity: 7.4, token_accuracy: n / 10, exact_match: n / 4, examples: 4 },
      {
        type: 'samples',
        step: n,
        exact_match: n / 4,
        samples: [{ prompt: '### Instruction:\nreview\n\n### Response:\n', reference: 'positive', output }],
      },
    ];
    m.ingest([runStart({ task: 'sft' }), ...at(0, 'once'), step(1, healthy), ...at(1, 'neg'), step(2, healthy)]);
    m.ingest([...at(2, 'positive')]);
    assert.deepEqual(
      m.samples.map((e) => [e.step, e.samples[0].output, e.exact_match]),
      [
        [0, 'once', 0],
        [1, 'neg', 0.25],
        [2, 'positive', 0.5],
      ],
    );
    assert.deepEqual([...m.evals.tokenAccuracy.view()], [0, 0.1, 0.2]);
    assert.deepEqual([...m.evals.exactMatch.view()], [0, 0.25, 0.5]);
    assert.equal(m.evalMetric, 'perplexity');
    // Resumed from step 1: the answers of step 2 go, the redone eval's come in.
    m.ingest([runStart({ task: 'sft', start_step: 1 }), step(2, healthy), ...at(2, 'negative')]);
    assert.deepEqual(
      m.samples.map((e) => [e.step, e.samples[0].output]),
      [
        [0, 'once'],
        [1, 'neg'],
        [2, 'negative'],
      ],
    );
    // What the file holds is data: anything but a string becomes an empty string.
    m.ingest([{ type: 'samples', step: 3, samples: [{ prompt: 1, reference: null }] } as unknown as EngineEvent]);
    assert.deepEqual(m.samples.at(-1)!.samples, [{ prompt: '', reference: '', output: '' }]);
  });

  it('a new optimizer group mid-stream gets a column aligned with the steps', () => {
    const m = new RunModel();
    m.ingest([runStart(), step(1, healthy), { ...step(2, healthy), lr: { A: 1, B: 16, embedding: 2 } }]);
    assert.deepEqual(
      [...m.lr.get('embedding')!.view()].map((v) => (Number.isNaN(v) ? null : v)),
      [null, 2],
    );
  });
});

describe('series helpers', () => {
  it('EMA: weight 0 is the input, the first point is debiased, NaN is skipped', () => {
    const y = [4, 2, NaN, 8];
    assert.deepEqual(
      [...emaInto(y, 4, 0, new Float64Array(4))].map((v) => (Number.isNaN(v) ? null : v)),
      [4, 2, null, 8],
    );
    const s = emaInto(y, 4, 0.5, new Float64Array(4));
    assert.equal(s[0], 4); // not pulled towards 0
    assert.ok(Math.abs(s[1] - (0.5 * 0.5 * 4 + 0.5 * 2) / 0.75) < 1e-12);
    assert.ok(Number.isNaN(s[2]));
    assert.ok(s[3] > s[1] && s[3] < 8);
  });

  it('min/max decimation keeps every extreme, the ends, and sorted indices; small series pass whole', () => {
    const n = 10_000;
    const x = Float64Array.from({ length: n }, (_, i) => i + 1);
    const y = Float64Array.from({ length: n }, (_, i) => Math.sin(i / 50));
    y[1234] = 100; // a spike
    y[8765] = -100;
    const idx = minMaxIndices(x, [y], n, 100);
    assert.ok(idx.length <= 100 * 4 + 2 && idx.length > 100);
    assert.equal(idx[0], 0);
    assert.equal(idx.at(-1), n - 1);
    assert.ok(idx.includes(1234) && idx.includes(8765));
    for (let k = 1; k < idx.length; k++) assert.ok(idx[k] > idx[k - 1]);
    assert.equal(minMaxIndices(x, [y], 50, 100).length, 50);
    // A window [2000, 3000]: one point either side, nothing else outside.
    const w = minMaxIndices(x, [y], n, 10, 2000, 3000);
    assert.ok(w.length <= 10 * 4 + 2);
    assert.equal(x[w[0]], 1999);
    assert.equal(x[w.at(-1)!], 3001);
  });

  it('100,000 steps: ingest, EMA and reduction for drawing keep the data whole', () => {
    const m = new RunModel();
    const events: EngineEvent[] = [runStart({ total_steps: 100_000 })];
    for (let n = 1; n <= 100_000; n++) events.push(step(n, healthy, 3 + Math.sin(n / 1000) + (n === 77_777 ? 50 : 0)));
    m.ingest(events);
    assert.equal(m.steps.x.length, 100_000);
    assert.equal(m.ab.cols, 100_000);
    const { raw, ema } = lossWithEma(m, 0.9);
    assert.equal(ema.length, 100_000);
    const d = reduceForDrawing(m.steps.x, [raw, ema], 800);
    assert.ok(d.idx.length < 800 * 6 + 2);
    assert.ok(d.idx.includes(77_776), 'the loss spike is drawn');
    assert.equal(m.steps.loss.view()[77_776], 3 + Math.sin(77.777) + 50);
  });

  it('Column grows and truncates', () => {
    const c = new Column(2);
    for (let i = 0; i < 5; i++) c.push(i);
    c.truncate(3);
    c.push(9);
    assert.deepEqual([...c.view()], [0, 1, 2, 9]);
    assert.equal(c.at(-1), 9);
  });
});

describe('A/B heatmap cells', () => {
  /** The mean of log10 over a pixel column's steps, computed the slow way. */
  function bruteCells(m: RunModel, q: (typeof AB_QUANTITIES)[number], width: number) {
    const { cols } = m.ab;
    const w = Math.min(width, cols);
    return m.ab.modules.map((_, r) =>
      Array.from({ length: w }, (_, p) => {
        const logs: number[] = [];
        for (let c = Math.floor((p * cols) / w); c < Math.floor(((p + 1) * cols) / w); c++) {
          const v = m.ab.get(q, r, c);
          if (v > 0 && v < Infinity) logs.push(Math.log10(v));
        }
        return logs.length ? logs.reduce((a, b) => a + b, 0) / logs.length : NaN;
      }),
    );
  }
  const close = (got: Float32Array, want: number[][], w: number) =>
    want.forEach((row, r) =>
      row.forEach((v, p) =>
        assert.ok(
          Number.isNaN(v) ? Number.isNaN(got[r * w + p]) : Math.abs(got[r * w + p] - v) < 1e-5,
          `row ${r} px ${p}: ${got[r * w + p]} vs ${v}`,
        ),
      ),
    );

  it('averages log10 per pixel column and module, also while steps arrive, after a rewind and across quantities', () => {
    const m = new RunModel();
    const noisy = (n: number) => (i: number) => ({
      grad_A: n === 1 ? 0 : 0.1 + ((n * 7 + i) % 5),
      grad_B: 0.2,
      delta_A: n % 9 === 0 ? 0 : 1e-3 * (1 + ((n + i) % 3)),
      delta_B: 1e-2 * (1 + (n % 4)),
    });
    m.ingest([runStart(), ...Array.from({ length: 37 }, (_, k) => step(k + 1, noisy(k + 1)))]);
    for (const q of ['delta_ratio', 'grad_A', 'delta_ratio'] as const) {
      const cells = heatmapCells(m.ab, q, 10);
      assert.deepEqual([cells.rows, cells.width], [MODULES.length, 10]);
      close(cells.values, bruteCells(m, q, 10), 10);
    }
    m.ingest(Array.from({ length: 20 }, (_, k) => step(k + 38, noisy(k + 38)))); // more steps: the cache extends
    close(heatmapCells(m.ab, 'delta_ratio', 16).values, bruteCells(m, 'delta_ratio', 16), 16);
    m.ingest([
      runStart({ start_step: 30 }),
      ...Array.from({ length: 5 }, (_, k) => step(k + 31, () => ({ grad_A: 1, grad_B: 1, delta_A: 1, delta_B: 1000 }))),
    ]);
    assert.equal(m.ab.cols, 35);
    close(heatmapCells(m.ab, 'delta_ratio', 7).values, bruteCells(m, 'delta_ratio', 7), 7);
    // Fewer steps than pixels: one column per step.
    assert.equal(heatmapCells(m.ab, 'grad_B', 500).width, 35);
  });

  it('colour scale: ratios centred on their balanced value, norms on their own 5–95% span', () => {
    const r = heatScale(Float32Array.from([-2, 0.5, 1, NaN]), 0);
    assert.equal(r.mid, 0);
    assert.ok(r.lo <= -0.3 && r.hi >= 0.3);
    const s = heatScale(
      Float32Array.from({ length: 100 }, (_, i) => -5 + i / 100),
      undefined,
    );
    assert.ok(s.lo > -5 && s.hi < -4 && s.lo < s.hi && s.mid === null);
  });
});
