// What one training run holds while it trains, and the three things train.ts does with it: take an optimizer step
// (forward/backward over the micro-batches, clip, the LoRA+ AdamW update, the A/B figures), evaluate, and save a
// checkpoint. Trainer.open sets it all up (backend, model, data, trainables, optimizer, a resumed checkpoint) and
// owns what it created: dispose() frees it.
import * as fs from 'node:fs';
import * as tf from '@tensorflow/tfjs';
import { adapterWeightsFromSafetensors, loadAdapter, type Adapter, type AdapterWeights } from '../../adapters/peft';
import { readSafetensors } from '../../adapters/safetensors';
import { divergenceCause } from '../../config/diverged';
import type { TrainConfig } from '../../config/schema';
import type { Model } from '../../models/types';
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent, ModuleStats, RunStartEvent, StepEvent } from '../../protocol/events';
import { ourDevice, selectBackend, type BackendInfo } from '../backend/select';
import { epochOrder } from '../data/datasets';
import { Rng } from '../data/rng';
import { loadCheckpoint, pruneCheckpoints, saveCheckpoint } from '../runs/checkpoints';
import type { Checkpoint, TrainerState } from '../runs/checkpoints';
import { evaluate, progressEvents, type EvalResult } from './evaluate';
import { Sampler } from './samples';
import { clipGradients, type AdamW, type Group, type Trainable } from './optimizer';
import { createOptimizer } from './peft-optimizers';
import { lrMultiplier } from './schedule';
import {
  buildModel,
  collate,
  datasetSize,
  disposeBatch,
  loadData,
  openModelFolder,
  padId,
  targetCount,
  toTensors,
  type DataSplits,
  type ModelFolder,
} from './inputs';
import { Trainables } from './trainables';
import { outputChanges } from './ab-figures';
import { hubIdOf } from '../hub/cache';
import { modelTask } from '../../models/types';
import { usesRatio } from '../../protocol/tune';

/** What one optimizer step measured; `modules` only on logged steps. */
export interface StepFigures {
  loss: number;
  gradNorm: number;
  tokens: number;
  lrScale: number;
  seconds: number;
  modules: ModuleStats[] | null;
}

export class Trainer {
  readonly t: TrainConfig['training'];
  readonly totalSteps: number;
  readonly evals: { step: number; result: EvalResult }[] = [];
  step: number;
  lastCheckpoint: string | null;
  private readonly batchesPerEpoch: number;
  private readonly pad: number;
  private readonly loraNames: Set<string>;
  private readonly params: Trainable[]; // what the optimizer trains (lorafa leaves lora_A out)
  private readonly started = Date.now();
  private readonly elapsedBefore: number; // training time of the run's earlier sessions (resume)
  private sampler: Sampler | null | undefined; // eval.generate: opened at the first eval (it reads the eval rows)

  private constructor(
    readonly config: TrainConfig,
    readonly runDir: string,
    private readonly emit: (e: EngineEvent) => void,
    readonly backend: BackendInfo,
    readonly folder: ModelFolder,
    readonly data: DataSplits,
    readonly model: Model,
    readonly weights: Trainables,
    readonly groups: Group[],
    readonly opt: AdamW,
    private state: TrainerState,
    resumed: Checkpoint | undefined,
  ) {
    this.t = config.training;
    this.batchesPerEpoch = Math.ceil(datasetSize(data.train) / this.t.batch_size);
    this.totalSteps = state.total_steps;
    this.pad = padId(folder);
    const trained = new Set(groups.flatMap((g) => g.params));
    this.params = weights.params().filter((p) => trained.has(p.name));
    this.loraNames = new Set([...weights.lora.keys()].flatMap((m) => [`${m}.lora_A.weight`, `${m}.lora_B.weight`]));
    this.step = state.step;
    this.elapsedBefore = state.elapsed_s;
    this.lastCheckpoint = resumed?.dir ?? null;
  }

  /** Sets up the run: backend, model, data, trainables and optimizer, and the checkpoint it resumes from. */
  static async open(
    config: TrainConfig,
    runDir: string,
    resumeFrom: Checkpoint | undefined,
    emit: (e: EngineEvent) => void,
  ): Promise<Trainer> {
    const backend = await selectBackend(ourDevice(config.device)); // (train() hands torch on)
    const t = config.training;
    const rng = new Rng(t.seed);
    const folder = openModelFolder(config.model);
    const data = loadData(config, folder.tokenizer, { emit });
    const model = buildModel(folder, modelTask(config.task), data.labels.length, rng);
    const owned: { dispose(): void }[] = [model];
    try {
      const init = config.lora.init_adapter ? readInitAdapter(config.lora.init_adapter) : null;
      const weights = new Trainables(model, config.lora, folder.family, () => rng.next(), init);
      owned.push(weights);
      const opt = createOptimizer(t, weights.params(), [...weights.lora.values()]);
      owned.push(opt);
      const groups = opt.groups;
      const batchesPerEpoch = Math.ceil(datasetSize(data.train) / t.batch_size);
      const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / t.gradient_accumulation_steps));
      const total = t.max_steps ?? Math.max(1, Math.ceil((t.epochs ?? 1) * stepsPerEpoch));
      let state: TrainerState = {
        step: 0,
        micro_step: 0,
        total_steps: total,
        optimizer_t: 0,
        tokens_seen: 0,
        elapsed_s: 0,
        best_eval: null,
      };
      if (resumeFrom) {
        const ck = loadCheckpoint(resumeFrom.dir);
        weights.assign(ck.adapter);
        opt.loadState(ck.optimizer, ck.state.optimizer_t);
        state = { ...ck.state, total_steps: total };
      }
      const parts = [backend, folder, data, model, weights, groups, opt, state, resumeFrom] as const;
      return new Trainer(config, runDir, emit, ...parts);
    } catch (err) {
      for (const d of owned.reverse()) d.dispose();
      throw err;
    }
  }

  /** Seconds of training so far, earlier sessions of a resumed run included: one clock for every event. */
  elapsed(): number {
    return this.elapsedBefore + (Date.now() - this.started) / 1000;
  }

  /** λ as the run applies it: lr_B / lr_A, 1 for PEFT's riemannian and lorafa (one learning rate). */
  ratio(): number {
    return usesRatio(this.t.optimizer) ? this.t.loraplus_lr_ratio : 1;
  }

  /** The numbers the optimizer trains (lorafa's frozen lora_A is saved, not trained). */
  private trainedCount(): number {
    return this.params.reduce((n, p) => n + p.variable.size, 0);
  }

  /** The run_start event: what trains, where, at which learning rates. */
  startEvent(runName: string): RunStartEvent {
    const { config, weights, data } = this;
    const counts = weights.count();
    return {
      type: 'run_start',
      time: new Date().toISOString(),
      run_name: runName,
      run_dir: this.runDir,
      backend: this.backend.backend,
      device: this.backend.name,
      threads: this.backend.threads,
      backend_notes: this.backend.skipped,
      model: config.model,
      model_type: String(this.folder.config.model_type),
      task: config.task,
      total_steps: this.totalSteps,
      start_step: this.step,
      params: { total: this.model.paramCount + counts.lora, trainable: this.trainedCount(), lora: counts.lora },
      lora: {
        r: config.lora.r,
        lora_alpha: config.lora.lora_alpha,
        scaling: [...weights.lora.values()][0]?.scaling ?? 0,
        target_modules: [...weights.lora.keys()],
        modules_to_save: [...weights.trainable.keys()],
      },
      ...this.optimizerSettings(),
      groups: this.groups.map(({ name, lr, weight_decay, params }) => ({ name, lr, weight_decay, params })),
      train_examples: datasetSize(data.train),
      eval_examples: data.eval ? datasetSize(data.eval) : 0,
      eval_every: this.t.eval_every,
    };
  }

  // ---- one optimizer step -----------------------------------------------------------------------------------------

  /** Forward and backward over the micro-batches, clipping, the LoRA+ AdamW update; advances `step`. */
  async trainStep(logThis: boolean): Promise<StepFigures> {
    const t0 = Date.now();
    const lrScale = lrMultiplier(this.t.lr_scheduler, this.step, this.t.warmup_steps, this.totalSteps);
    const { grads, loss, tokens } = this.gradients();
    const clipped = clipGradients(grads, this.t.max_grad_norm);
    tf.dispose([...grads.values()]);
    const [lossValue, gradNorm] = await readScalars([loss, clipped.norm]);
    tf.dispose([loss, clipped.norm]);
    if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
      tf.dispose([...clipped.grads.values()]);
      throw this.nonFinite(`the loss became ${lossValue} (gradient norm ${gradNorm})`);
    }
    const modules = await this.update(clipped.grads, lrScale, logThis);
    this.step += 1;
    this.state.tokens_seen += tokens;
    return { loss: lossValue, gradNorm, tokens, lrScale, seconds: (Date.now() - t0) / 1000, modules };
  }

  /**
   * The gradients over the micro-batches and the loss they make. sft divides each micro-batch's loss sum by the
   * answer tokens of the whole accumulated batch (transformers' num_items_in_batch, TRL's normalisation since
   * 2024), so micro-batches add up; the other tasks average the micro-batches' mean losses, as before.
   */
  private gradients(): { grads: Map<string, tf.Tensor>; loss: tf.Scalar; tokens: number } {
    const { t, weights, model, data, params } = this;
    const n = datasetSize(data.train);
    const micro = Array.from({ length: t.gradient_accumulation_steps }, () => {
      const k = this.state.micro_step++;
      const order = epochOrder(n, t.seed, Math.floor(k / this.batchesPerEpoch), t.shuffle);
      const start = (k % this.batchesPerEpoch) * t.batch_size;
      return { k, batch: collate(data.train, order.slice(start, start + t.batch_size), this.pad) };
    });
    const sft = data.train.kind === 'sft';
    const lossCount = sft
      ? Math.max(
          1,
          micro.reduce((s, m) => s + targetCount(m.batch), 0),
        )
      : null;
    const scale = sft ? 1 : 1 / t.gradient_accumulation_steps;
    let grads = new Map<string, tf.Tensor>();
    const losses: tf.Scalar[] = [];
    let tokens = 0;
    for (const { k, batch } of micro) {
      tokens += batch.tokens;
      const bt = { ...toTensors(batch), lossCount };
      weights.dropoutSeed = (t.seed * 7919 + k) % 2147483647;
      const { value, grads: g } = tf.variableGrads(
        () => model.loss(bt, weights),
        params.map((p) => p.variable),
      );
      disposeBatch(bt);
      losses.push(value);
      const named = params.map((p): [string, tf.Tensor] => [p.name, g[p.variable.name]]);
      grads = accumulate(grads, named, scale);
    }
    weights.dropoutSeed = null;
    const loss = tf.tidy(() => (sft ? tf.sum(tf.stack(losses)) : tf.mean(tf.stack(losses))) as tf.Scalar);
    tf.dispose(losses);
    return { grads, loss, tokens };
  }

  /**
   * The LoRA+ update, and the A/B figures of this step: ‖ΔA‖, ‖ΔB‖ always (they show a blow-up before the loss
   * does), ‖∇A‖, ‖∇B‖ and the output changes on logged steps. Consumes `grads`.
   */
  private async update(
    grads: Map<string, tf.Tensor>,
    lrScale: number,
    logThis: boolean,
  ): Promise<ModuleStats[] | null> {
    const names = this.params.map((p) => p.name);
    const gradNorms = logThis ? names.map((nm) => tf.tidy(() => tf.norm(grads.get(nm)!) as tf.Scalar)) : [];
    const kept = new Map<string, tf.Tensor>();
    const used = await this.opt.prepare(grads); // riemannian, lorafa: the gradients they step with
    const deltas = this.opt.step(used, lrScale, logThis ? this.loraNames : undefined, kept);
    const outputs = logThis ? outputChanges(this.weights, kept) : [];
    const figures = await readScalars([...names.map((nm) => deltas.get(nm)!), ...gradNorms, ...outputs]);
    const all = new Set([...grads.values(), ...used.values()]);
    tf.dispose([...all, ...gradNorms, ...deltas.values(), ...kept.values(), ...outputs]);
    const blown = names.findIndex((_, i) => !Number.isFinite(figures[i]));
    if (blown >= 0) throw this.nonFinite(`the update of ${names[blown]} became ${figures[blown]}`, this.step + 1);
    if (!logThis) return null;
    const at = (nm: string) => {
      const i = names.indexOf(nm); // -1: not trained (lorafa's lora_A), so neither a gradient nor an update
      return i < 0 ? { delta: 0, grad: 0 } : { delta: figures[i], grad: figures[names.length + i] };
    };
    const out = figures.slice(2 * names.length);
    return [...this.weights.lora.keys()].map((m, i) => {
      const [a, b] = [at(`${m}.lora_A.weight`), at(`${m}.lora_B.weight`)];
      const [grad_A, grad_B, delta_A, delta_B] = [a.grad, b.grad, a.delta, b.delta];
      return { module: m, grad_A, grad_B, delta_A, delta_B, out_A: out[2 * i], out_B: out[2 * i + 1] };
    });
  }

  /** The step event of the step just taken. */
  stepEvent(f: StepFigures): StepEvent {
    return {
      type: 'step',
      step: this.step,
      epoch: this.state.micro_step / this.batchesPerEpoch,
      loss: f.loss,
      lr: Object.fromEntries(this.groups.map((g) => [g.name, g.lr * f.lrScale])),
      grad_norm: f.gradNorm,
      tokens_per_s: f.tokens / Math.max(1e-3, f.seconds),
      tokens_seen: this.state.tokens_seen,
      elapsed_s: this.elapsed(),
      modules: f.modules ?? [],
    };
  }

  // ---- eval and checkpoints ---------------------------------------------------------------------------------------

  /** The eval loss and its figures, then (sft, eval.generate) the model's answers to the first eval prompts. */
  async evaluate(): Promise<void> {
    if (!this.data.eval) return;
    const progress = progressEvents(this.emit, this.step, () => this.elapsed()); // "evaluating n/N", never frozen
    let r = await evaluate(this.model, this.data.eval, this.pad, this.t.batch_size, this.weights, progress);
    const warn = (message: string) => this.emit({ type: 'log', level: 'warning', message });
    const sampling = { padId: this.pad, maxPositions: this.model.maxPositions, warn };
    if (this.sampler === undefined) this.sampler = Sampler.open(this.config, this.folder, sampling);
    const answers = this.sampler && (await this.sampler.answer(this.model, this.weights));
    if (answers?.exact_match !== undefined) r = { ...r, exact_match: answers.exact_match };
    this.evals.push({ step: this.step, result: r });
    this.emit({ type: 'eval', step: this.step, ...r, elapsed_s: this.elapsed() });
    if (answers) this.emit({ type: 'samples', step: this.step, ...answers });
    if (!this.state.best_eval || r.loss < this.state.best_eval.loss) this.state.best_eval = { step: this.step, ...r };
  }

  /** Saves a resumable checkpoint of this step (once: a stop right after a scheduled save adds none). */
  async checkpoint(): Promise<void> {
    if (this.lastCheckpoint && this.state.step === this.step && this.state.optimizer_t === this.opt.t) return;
    this.state = { ...this.state, step: this.step, optimizer_t: this.opt.t, elapsed_s: this.elapsed() };
    const ck = saveCheckpoint(this.runDir, await this.adapter(), await this.opt.state(), this.state);
    this.lastCheckpoint = ck.dir;
    this.emit({ type: 'checkpoint', step: this.step, path: ck.dir, kind: 'checkpoint' });
    pruneCheckpoints(this.runDir, this.t.save_total_limit, ck.dir);
  }

  /** The trained adapter in PEFT's format. */
  async adapter(): Promise<Adapter> {
    const base = hubIdOf(this.config.model) ?? this.config.model; // a cached Hub model by its id, as Python takes it
    const adapter = await this.weights.toAdapter(base, taskType(this.config), {});
    adapter.loraplus = { ...this.optimizerSettings(), learning_rate: this.t.learning_rate }; // loraplus.json
    return adapter;
  }

  /** λ as applied, the optimizer and the PEFT parameters it took beyond the config's: run_start and loraplus.json. */
  private optimizerSettings(): {
    loraplus_lr_ratio: number;
    optimizer: string;
    optimizer_args: Record<string, number>;
  } {
    const args: Record<string, number> = this.t.optimizer === 'riemannian' ? { reg: this.t.optimizer_args.reg } : {};
    return { loraplus_lr_ratio: this.ratio(), optimizer: this.t.optimizer, optimizer_args: args };
  }

  /** A loss or update that is not finite: the run stops with this error and keeps its last good checkpoint. */
  private nonFinite(what: string, step = this.step + 1): LoraPlusError {
    const kept = this.lastCheckpoint
      ? `The last good checkpoint is ${this.lastCheckpoint}.`
      : 'No checkpoint was written before this step.';
    const cause = divergenceCause(this.config); // the setting furthest out of its usual range
    return new LoraPlusError({
      code: 'train/non-finite',
      message: `${what} at step ${step}`,
      yamlPath: cause.yamlPath,
      hint: `${cause.hint} ${kept}`,
    });
  }

  dispose(): void {
    this.opt.dispose();
    this.weights.dispose();
    this.model.dispose();
  }
}

/** PEFT's task_type for adapter_config.json. */
export function taskType(config: TrainConfig): string {
  return config.task === 'sequence-classification' ? 'SEQ_CLS' : 'CAUSAL_LM'; // sft trains the LM head
}

/** A PEFT adapter folder, or a bare PEFT-keyed .safetensors file (as the shared references are). */
function readInitAdapter(p: string): AdapterWeights {
  if (fs.existsSync(p) && fs.statSync(p).isFile()) {
    return adapterWeightsFromSafetensors(readSafetensors(p).tensors, p);
  }
  return loadAdapter(p);
}

/** sum += scale · g, disposing what it replaces. */
function accumulate(sum: Map<string, tf.Tensor>, add: [string, tf.Tensor][], scale: number): Map<string, tf.Tensor> {
  const out = new Map<string, tf.Tensor>();
  for (const [name, g] of add) {
    const prev = sum.get(name);
    out.set(
      name,
      tf.tidy(() => (prev ? tf.add(prev, tf.mul(g, scale)) : tf.mul(g, scale))),
    );
    g.dispose();
    prev?.dispose();
  }
  return out;
}

/** One device read for many scalars (each read is a GPU sync on webgpu). */
async function readScalars(xs: tf.Scalar[]): Promise<number[]> {
  if (!xs.length) return [];
  const stacked = tf.stack(xs);
  const v = Array.from(await stacked.data());
  stacked.dispose();
  return v;
}
