// A run as chart data (DOM-free): the engine's events (src/protocol/events.ts) reduced, in order, into columns that
// only grow (typed arrays, so 100,000 steps cost one append each), plus the A/B matrices. The same reduction serves a
// finished run's metrics.jsonl and a live run's event batches; a resumed run's run_start rewinds to its checkpoint.
import { PACKED_FIELDS } from '../../src/protocol/dashboard';
import { RunTiming } from '../../src/protocol/progress';
import type {
  CheckpointEvent,
  EngineEvent,
  EvalEvent,
  LogEvent,
  ParamGroupInfo,
  RunStartEvent,
  SamplesEvent,
  StepEvent,
} from '../../src/protocol/events';
import { Column, emaInto, minMaxIndices, upperBound } from '../shared/series';
import { AbMatrices, detectStalls, type Stall } from './ab-model';

const LOG_KEEP = 200;

export class RunModel {
  start: RunStartEvent | null = null; // the latest (a resumed run has one per session)
  end: { status: 'finished' | 'stopped' | 'failed'; step: number } | null = null;
  error: string | null = null;
  checkpoints: CheckpointEvent[] = [];
  logs: LogEvent[] = [];
  /** What the run does now (starting, training, evaluating n/N) and its ETA, evals included. */
  timing = new RunTiming();
  /** Bumps on every change, so views redraw only when there is something new. */
  version = 0;

  readonly steps = {
    x: new Column(),
    loss: new Column(),
    gradNorm: new Column(),
    tokensPerS: new Column(),
    tokensSeen: new Column(),
    elapsed: new Column(),
    epoch: new Column(),
  };
  /** Learning rate per optimizer group name (A, B, B_no_decay, embedding), aligned with steps.x. */
  readonly lr = new Map<string, Column>();
  readonly evals = {
    x: new Column(),
    loss: new Column(),
    accuracy: new Column(),
    perplexity: new Column(),
    tokenAccuracy: new Column(), // sft
    exactMatch: new Column(), // sft with eval.generate on short answers
  };
  /** sft eval.generate: each eval's answers, in step order (one per step; a step done again keeps the newer). */
  samples: SamplesEvent[] = [];
  readonly ab = new AbMatrices();

  /** Folds events in, in order. With `packed` (PackedModules), the k-th step event's module figures are block k. */
  ingest(events: readonly EngineEvent[], packed?: { modules: string[]; values: Float32Array }): void {
    let block = 0;
    const width = packed ? packed.modules.length * PACKED_FIELDS.length : 0;
    for (const e of events) {
      if (e.type === 'run_start') this.timing = new RunTiming();
      this.timing.fold(e);
      if (packed && e.type === 'step')
        this.step(e, () => this.ab.pushBlock(e.step, packed.modules, packed.values, width * block++));
      else this.one(e);
    }
    if (events.length) this.version++;
  }

  private one(e: EngineEvent): void {
    switch (e.type) {
      case 'run_start':
        this.rewindAfter(e.start_step);
        [this.start, this.end, this.error] = [e, null, null];
        this.ab.addModules(e.lora.target_modules);
        for (const g of e.groups) this.lrColumn(g.name);
        return;
      case 'step':
        return this.step(e);
      case 'eval_progress':
        return; // the timing above keeps the latest
      case 'eval':
        return this.evalPoint(e);
      case 'samples':
        return this.samplesAt(e);
      case 'checkpoint':
        this.checkpoints.push(e);
        return;
      case 'log':
        this.logs.push(e);
        if (this.logs.length > 2 * LOG_KEEP) this.logs = this.logs.slice(-LOG_KEEP);
        return;
      case 'end':
        this.end = { status: e.status, step: e.step };
        return;
      case 'error':
        this.error = e.error.message;
        return;
      default:
        e satisfies never;
    }
  }

  private step(e: StepEvent, packedModules?: () => void): void {
    const s = this.steps;
    if (s.x.length && e.step <= s.x.at(-1)) this.rewindAfter(e.step - 1); // a step done again: keep the newer one
    for (const name of Object.keys(e.lr)) this.lrColumn(name); // before the push: a new group's past is NaN
    s.x.push(e.step);
    s.loss.push(num(e.loss));
    s.gradNorm.push(num(e.grad_norm));
    s.tokensPerS.push(num(e.tokens_per_s));
    s.tokensSeen.push(num(e.tokens_seen));
    s.elapsed.push(num(e.elapsed_s));
    s.epoch.push(num(e.epoch));
    for (const [name, col] of this.lr) col.push(num(e.lr[name]));
    if (packedModules) packedModules();
    else if (e.modules?.length) this.ab.push(e.step, e.modules);
  }

  private evalPoint(e: EvalEvent): void {
    const v = this.evals;
    if (v.x.length && e.step < v.x.at(-1)) this.rewindAfter(e.step - 1);
    v.x.push(e.step);
    v.loss.push(num(e.loss));
    v.accuracy.push(num(e.accuracy));
    v.perplexity.push(num(e.perplexity));
    v.tokenAccuracy.push(num(e.token_accuracy));
    v.exactMatch.push(num(e.exact_match));
  }

  private samplesAt(e: SamplesEvent): void {
    if (!Array.isArray(e.samples)) return;
    const str = (v: unknown) => (typeof v === 'string' ? v : '');
    // Strings only, whatever the file holds: the view writes them into the page as text.
    const samples = e.samples.map((s) => ({
      prompt: str(s?.prompt),
      reference: str(s?.reference),
      output: str(s?.output),
    }));
    this.samples = this.samples.filter((x) => x.step < e.step);
    this.samples.push({
      type: 'samples',
      step: e.step,
      samples,
      ...(typeof e.exact_match === 'number' && { exact_match: e.exact_match }),
    });
  }

  /** A group's column, created NaN-filled up to now if it is new. */
  private lrColumn(name: string): Column {
    let col = this.lr.get(name);
    if (!col) {
      col = new Column();
      for (let i = 0; i < this.steps.x.length; i++) col.push(NaN);
      this.lr.set(name, col);
    }
    return col;
  }

  /** Drops everything logged after `step` (a resumed run redoes the steps after its checkpoint). */
  private rewindAfter(step: number): void {
    const keep = (x: Column) => upperBound(x.data, x.length, step);
    const n = keep(this.steps.x);
    for (const c of Object.values(this.steps)) c.truncate(n);
    for (const c of this.lr.values()) c.truncate(n);
    const m = keep(this.evals.x);
    for (const c of Object.values(this.evals)) c.truncate(m);
    this.ab.truncate(keep(this.ab.steps));
    this.checkpoints = this.checkpoints.filter((c) => c.step <= step);
    this.samples = this.samples.filter((x) => x.step <= step);
  }

  // ---- what the views read ---------------------------------------------------------------------------------------

  get lastStep(): number | null {
    return this.steps.x.length ? this.steps.x.at(-1) : null;
  }

  get lastLoss(): number | null {
    return this.steps.loss.length ? this.steps.loss.at(-1) : null;
  }

  get groups(): ParamGroupInfo[] {
    return this.start?.groups ?? [];
  }

  /** The eval metric next to the loss: accuracy for classification, perplexity for causal LM (null before any). */
  get evalMetric(): 'accuracy' | 'perplexity' | null {
    const v = this.evals;
    for (let i = v.x.length - 1; i >= 0; i--) {
      if (Number.isFinite(v.accuracy.data[i])) return 'accuracy';
      if (Number.isFinite(v.perplexity.data[i])) return 'perplexity';
    }
    return null;
  }

  stalls(): Stall[] {
    return detectStalls(this.ab, this.start?.loraplus_lr_ratio ?? 1);
  }
}

/** JSON writes NaN and ±∞ as null; a typed array would read null as 0, so anything not a number is NaN. */
function num(v: unknown): number {
  return typeof v === 'number' ? v : NaN;
}

/** The tensors trained at B's learning rate (LoRA+: every lora_B, and every 1-D trainable such as biases and norms). */
export function bGroupTensors(
  groups: readonly ParamGroupInfo[],
): { name: string; lr: number; weight_decay: number; params: string[] }[] {
  return groups
    .filter((g) => g.name === 'B' || g.name === 'B_no_decay')
    .map((g) => ({ name: g.name, lr: g.lr, weight_decay: g.weight_decay, params: g.params }));
}

// ---- chart data: the full series in, at most a few points per pixel out ------------------------------------------

export interface DrawData {
  x: Float64Array;
  ys: Float64Array[];
  idx: Uint32Array; // which points to draw
}

/** Picks the points to draw of series sharing `x` (min/max per bucket of each, so no spike is lost). */
export function reduceForDrawing(
  x: Column,
  ys: Float64Array[],
  buckets: number,
  range?: [number, number] | null,
): DrawData {
  const xv = x.view();
  return { x: xv, ys, idx: minMaxIndices(xv, ys, xv.length, buckets, range?.[0], range?.[1]) };
}

/** Train loss and its smoothed curve; `smoothing` in [0, 1). `scratch` is reused between redraws. */
export function lossWithEma(
  model: RunModel,
  smoothing: number,
  scratch?: Float64Array,
): { raw: Float64Array; ema: Float64Array } {
  const raw = model.steps.loss.view();
  const out =
    scratch && scratch.length >= raw.length
      ? scratch.subarray(0, raw.length)
      : new Float64Array(raw.length * 2).subarray(0, raw.length);
  return { raw, ema: emaInto(raw, raw.length, smoothing, out) };
}
