// The host ⇄ dashboard messages (src/protocol/dashboard.ts): what one side builds, the other side's guard accepts
// after the trip through postMessage (a structured clone; JSON here); anything else (another version, an unknown
// type, a malformed payload) is dropped rather than half-handled.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DASHBOARD_PROTOCOL,
  hostMessage,
  isDashboardToHost,
  isEngineEvent,
  isHostToDashboard,
  packedValues,
  packModules,
  PACKED_FIELDS,
  webviewMessage,
  type DashboardSummary,
} from '../../src/protocol/dashboard';
import type { EngineEvent, StepEvent } from '../../src/protocol/events';

const summary: DashboardSummary = {
  name: 'run-1',
  runDir: '/runs/run-1',
  status: 'running',
  step: 3,
  totalSteps: 10,
  lastLoss: 2.5,
  elapsed: 12,
  checkpoints: 1,
  finalAdapter: null,
  error: null,
  config: {
    model: 'stories260k',
    task: 'causal-lm',
    r: 4,
    lora_alpha: 8,
    learning_rate: 2e-3,
    loraplus_lr_ratio: 16,
    device: 'wasm',
  },
};
const events: EngineEvent[] = [
  {
    type: 'step',
    step: 1,
    epoch: 0.1,
    loss: 3,
    lr: { A: 1e-3, B: 16e-3 },
    grad_norm: 1,
    tokens_per_s: 10,
    tokens_seen: 64,
    elapsed_s: 1,
    modules: [{ module: 'model.layers.0.self_attn.q_proj', grad_A: 0, grad_B: 0.1, delta_A: 0, delta_B: 1e-3 }],
  },
  { type: 'eval', step: 1, loss: 2.9, perplexity: 18, examples: 8 },
  { type: 'log', level: 'warning', message: 'λ = 16: ‖ΔB‖ ≫ ‖ΔA‖' },
  { type: 'end', status: 'finished', step: 1, elapsed_s: 2, final_adapter: '/runs/run-1/final', last_checkpoint: null },
];
// postMessage's copy is a structured clone (typed arrays survive it).
const trip = (m: unknown): unknown => structuredClone(m);

describe('dashboard protocol', () => {
  it('every host message survives the trip and passes the webview’s guard', () => {
    const sent = [
      hostMessage('init', { runDir: '/runs/run-1', summary, events }),
      hostMessage('events', { events }),
      hostMessage('summary', { summary: { ...summary, status: 'failed', error: 'the loss became NaN' } }),
      hostMessage('missing', { runDir: '/runs/gone', message: 'The run folder no longer exists' }),
    ];
    for (const m of sent) {
      const got = trip(m);
      assert.ok(isHostToDashboard(got), m.type);
      assert.deepEqual(got, m);
      assert.equal(isDashboardToHost(got), false, `${m.type} is not a webview message`);
    }
  });

  it('every webview message survives the trip and passes the host’s guard', () => {
    for (const m of [webviewMessage('ready', {}), webviewMessage('openFile', { path: 'config.yaml' })]) {
      const got = trip(m);
      assert.ok(isDashboardToHost(got), m.type);
      assert.deepEqual(got, m);
      assert.equal(isHostToDashboard(got), false);
    }
  });

  it('drops another protocol version, unknown types and malformed payloads', () => {
    const init = hostMessage('init', { runDir: '/r', summary, events });
    const bad: [string, unknown][] = [
      ['another version', { ...init, v: DASHBOARD_PROTOCOL + 1 }],
      ['no version', { type: 'ready' }],
      ['unknown type', { v: DASHBOARD_PROTOCOL, type: 'reload' }],
      ['inherited name', { v: DASHBOARD_PROTOCOL, type: 'toString' }],
      ['events not a list', { v: DASHBOARD_PROTOCOL, type: 'events', events: events[0] }],
      [
        'an unknown event type',
        { v: DASHBOARD_PROTOCOL, type: 'events', events: [...events, { type: 'stepp', step: 2 }] },
      ],
      [
        'a status word the explorer does not use',
        { v: DASHBOARD_PROTOCOL, type: 'summary', summary: { ...summary, status: 'done' } },
      ],
      ['summary without status', { ...init, summary: { ...summary, status: undefined } }],
      ['null', null],
      ['a string', 'ready'],
    ];
    for (const [why, m] of bad) assert.equal(isHostToDashboard(m), false, why);
    assert.equal(isDashboardToHost({ v: DASHBOARD_PROTOCOL, type: 'openFile', path: '' }), false, 'empty path');
    assert.equal(isDashboardToHost({ v: DASHBOARD_PROTOCOL, type: 'openFile' }), false, 'no path');
  });

  it('packs step events’ module figures into one float array, in event order, and the guard checks its size', () => {
    const mod = (name: string, k: number, out: boolean) => ({
      module: name,
      grad_A: k,
      grad_B: k + 0.5,
      delta_A: k / 10,
      delta_B: k / 5,
      ...(out ? { out_A: k / 100, out_B: k / 50 } : {}),
    });
    const step = (n: number, out = true): StepEvent => ({
      type: 'step',
      step: n,
      epoch: 0,
      loss: 1,
      lr: {},
      grad_norm: 1,
      tokens_per_s: 1,
      tokens_seen: 1,
      elapsed_s: 1,
      modules: [mod('q', n, out), mod('v', n * 2, out)],
    });
    const input = [step(1, false), events[1], step(2)];
    const before = structuredClone(input);
    const { events: sent, packed } = packModules(input);
    assert.deepEqual(input, before, 'the input is left alone');
    assert.ok(packed);
    assert.deepEqual(packed.modules, ['q', 'v']);
    assert.deepEqual(
      sent.map((e) => (e.type === 'step' ? e.modules.length : -1)),
      [0, -1, 0],
    );
    const block = (k: number, i: number) => [
      ...packed.values.subarray((k * 2 + i) * PACKED_FIELDS.length, (k * 2 + i + 1) * PACKED_FIELDS.length),
    ];
    assert.deepEqual(block(1, 1), [4, 4.5, 0.4, 0.8, 0.04, 0.08].map(Math.fround));
    assert.ok(block(0, 0).slice(4).every(Number.isNaN), 'older files: no out_A/out_B');

    const m = trip(hostMessage('events', { events: sent, packed }));
    assert.ok(isHostToDashboard(m));
    assert.ok(m.type === 'events' && packedValues(m.packed?.values) instanceof Float32Array);
    assert.equal(
      isHostToDashboard({ ...hostMessage('events', { events: sent, packed }), events: sent.slice(0, 2) }),
      false,
      'one step event fewer than blocks',
    );
    // Module lists that differ between steps are sent as they are.
    assert.equal(packModules([step(1), { ...step(2), modules: [mod('v', 1, true)] }]).packed, undefined);
    // Other transports: a plain list (NaN became null in JSON) or an ArrayBuffer.
    assert.deepEqual(
      [...packedValues([1, null])!].map((v) => (Number.isNaN(v) ? null : v)),
      [1, null],
    );
    assert.equal(packedValues(new Float32Array(3).buffer)?.length, 3);
    assert.equal(packedValues({ 0: 1 }), null);
  });

  it('recognises every engine event type and nothing else', () => {
    for (const e of events) assert.ok(isEngineEvent(e), e.type);
    assert.equal(isEngineEvent({ type: 'checkpoint', step: 1, path: '/c', kind: 'checkpoint' }), true);
    assert.equal(isEngineEvent({ type: 'progress' }), false);
    assert.equal(isEngineEvent([{ type: 'step' }]), false);
    assert.equal(isEngineEvent({ type: 'samples', step: 2, samples: [] }), true);
    assert.equal(isEngineEvent({ type: 'samples', step: 2, samples: 'positive' }), false, 'the view needs a list');
    assert.equal(isEngineEvent({ type: 'toString' }), false, 'no inherited name passes');
  });
});
