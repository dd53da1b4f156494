// The training loop: `train(config, onEvent, signal)`. It reads top to bottom like nanoGPT's train.py: set up,
// then for each step: schedule, forward/backward over the micro-batches, clip, LoRA+ AdamW update, log, eval,
// checkpoint. It emits typed events and never prints; every event also goes to the run's metrics.jsonl.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { adapterWeightsFromSafetensors, loadAdapter, saveAdapter, type AdapterWeights } from '../../adapters/peft';
import { readSafetensors } from '../../adapters/safetensors';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError, toErrorInfo } from '../../protocol/errors';
import type { EngineEvent, EventSink, ModuleStats } from '../../protocol/events';
import { selectBackend } from '../backend/select';
import {
  listCheckpoints,
  loadCheckpoint,
  pruneCheckpoints,
  saveCheckpoint,
  type TrainerState,
} from '../runs/checkpoints';
import { writeDirAtomic } from '../../adapters/files';
import { epochOrder } from '../data/datasets';
import { evaluate, type EvalResult } from './evaluate';
import { AdamW, clipGradients, loraplusGroups } from './optimizer';
import { Rng } from '../data/rng';
import { findRunToResume, openRun, runName } from '../runs/writer';
import { lrMultiplier } from './schedule';
import { buildModel, collate, datasetSize, disposeBatch, loadData, openModelFolder, padId, toTensors } from './session';
import { Trainables } from './trainables';

export interface TrainOptions {
  runDir?: string; // default: <output_dir>/<run_name>
  resume?: boolean; // continue from the run's latest checkpoint
}

export interface TrainResult {
  status: 'finished' | 'stopped';
  runDir: string;
  step: number;
  finalAdapter: string | null;
  lastCheckpoint: string | null;
  evals: { step: number; result: EvalResult }[];
}

export async function train(
  config: TrainConfig,
  onEvent: EventSink,
  signal?: AbortSignal,
  opts: TrainOptions = {},
): Promise<TrainResult> {
  const t0 = Date.now();
  const runDir = path.resolve(
    opts.resume ? findRunToResume(config, opts.runDir) : (opts.runDir ?? path.join(config.output_dir, runName(config))),
  );
  const resumeFrom = opts.resume ? listCheckpoints(runDir).at(-1) : undefined;
  if (opts.resume && !resumeFrom) {
    throw new LoraPlusError({
      code: 'resume/no-checkpoint',
      message: `${runDir} has no checkpoint to resume from`,
      file: runDir,
      hint: 'Start the run again without --resume.',
    });
  }
  const run = openRun(config, runDir, resumeFrom?.step ?? null);
  const emit = (e: EngineEvent) => {
    run.emit(e);
    onEvent(e);
  };
  let step = 0;
  let lastCheckpoint: string | null = resumeFrom?.dir ?? null;
  const disposables: { dispose(): void }[] = [];
  try {
    // ---- set up: backend, model, data, trainables, optimizer ------------------------------------------------
    const backend = await selectBackend(config.device);
    const rng = new Rng(config.training.seed);
    const folder = openModelFolder(config.model);
    const data = loadData(config, folder.tokenizer);
    const model = buildModel(folder, config.task, data.labels.length, rng);
    disposables.push(model);
    const init = config.lora.init_adapter ? readInitAdapter(config.lora.init_adapter) : null;
    const weights = new Trainables(model, config.lora, folder.family, () => rng.next(), init);
    disposables.push(weights);
    const params = weights.params();
    const loraNames = new Set([...weights.lora.keys()].flatMap((m) => [`${m}.lora_A.weight`, `${m}.lora_B.weight`]));
    const t = config.training;
    const groups = loraplusGroups(params, t);
    const opt = new AdamW(groups, { beta1: t.adam_beta1, beta2: t.adam_beta2, eps: t.adam_epsilon });
    disposables.push(opt);

    const n = datasetSize(data.train);
    const batchesPerEpoch = Math.ceil(n / t.batch_size);
    const stepsPerEpoch = Math.max(1, Math.floor(batchesPerEpoch / t.gradient_accumulation_steps));
    const totalSteps = t.max_steps ?? Math.max(1, Math.ceil((t.epochs ?? 1) * stepsPerEpoch));
    const pad = padId(folder);
    let state: TrainerState = {
      step: 0,
      micro_step: 0,
      total_steps: totalSteps,
      optimizer_t: 0,
      tokens_seen: 0,
      elapsed_s: 0,
      best_eval: null,
    };
    if (resumeFrom) {
      const ck = loadCheckpoint(resumeFrom.dir);
      weights.assign(ck.adapter);
      opt.loadState(ck.optimizer, ck.state.optimizer_t);
      state = { ...ck.state, total_steps: totalSteps };
    }
    step = state.step;
    const elapsedBefore = state.elapsed_s; // training time of the run's earlier sessions (resume)
    const counts = weights.count();
    emit({
      type: 'run_start',
      time: new Date().toISOString(),
      run_name: run.name,
      run_dir: runDir,
      backend: backend.backend,
      device: backend.name,
      threads: backend.threads,
      backend_notes: backend.skipped,
      model: config.model,
      model_type: String(folder.config.model_type),
      task: config.task,
      total_steps: totalSteps,
      start_step: step,
      params: { total: model.paramCount + counts.lora, trainable: counts.trainable, lora: counts.lora },
      lora: {
        r: config.lora.r,
        lora_alpha: config.lora.lora_alpha,
        scaling: [...weights.lora.values()][0]?.scaling ?? 0,
        target_modules: [...weights.lora.keys()],
        modules_to_save: [...weights.trainable.keys()],
      },
      loraplus_lr_ratio: t.loraplus_lr_ratio,
      groups: groups.map(({ name, lr, weight_decay, params: p }) => ({ name, lr, weight_decay, params: p })),
      train_examples: n,
      eval_examples: data.eval ? datasetSize(data.eval) : 0,
    });
    if (model.headCreated)
      emit({
        type: 'log',
        level: 'info',
        message: `created a fresh '${model.head}' head for ${model.numLabels} labels (${data.labels.join(', ')}); it is trained in full (modules_to_save)`,
      });

    const evals: TrainResult['evals'] = [];
    const runEval = async () => {
      if (!data.eval) return;
      const r = await evaluate(model, data.eval, pad, t.batch_size, weights);
      evals.push({ step, result: r });
      emit({ type: 'eval', step, ...r });
      if (!state.best_eval || r.loss < state.best_eval.loss) state.best_eval = { step, ...r };
    };
    const checkpoint = async () => {
      state = { ...state, step, optimizer_t: opt.t, elapsed_s: elapsedBefore + (Date.now() - t0) / 1000 };
      const ck = saveCheckpoint(
        runDir,
        await weights.toAdapter(config.model, taskType(config), { loraplus_lr_ratio: t.loraplus_lr_ratio }),
        await opt.state(),
        state,
      );
      lastCheckpoint = ck.dir;
      emit({ type: 'checkpoint', step, path: ck.dir, kind: 'checkpoint' });
      pruneCheckpoints(runDir, t.save_total_limit, ck.dir);
    };

    // ---- the loop -----------------------------------------------------------------------------------------------
    if (step === 0 && data.eval && t.eval_every > 0) await runEval(); // the "before" figure
    const trainStart = Date.now() - elapsedBefore * 1000;
    while (step < totalSteps) {
      // On wasm/cpu every await above resolves as a microtask: without this, signals and IPC (stop) never get a turn.
      await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted) break;
      const stepStart = Date.now();
      const lrScale = lrMultiplier(t.lr_scheduler, step, t.warmup_steps, totalSteps);

      // Forward and backward over the micro-batches; gradients are averaged (as the loss of one big batch).
      let grads = new Map<string, tf.Tensor>();
      const losses: tf.Scalar[] = [];
      let tokens = 0;
      for (let j = 0; j < t.gradient_accumulation_steps; j++) {
        const k = state.micro_step++;
        const epoch = Math.floor(k / batchesPerEpoch);
        const order = epochOrder(n, t.seed, epoch, t.shuffle);
        const start = (k % batchesPerEpoch) * t.batch_size;
        const b = collate(data.train, order.slice(start, start + t.batch_size), pad);
        tokens += b.tokens;
        const bt = toTensors(b);
        weights.dropoutSeed = (t.seed * 7919 + k) % 2147483647;
        const { value, grads: g } = tf.variableGrads(
          () => model.loss(bt, weights),
          params.map((p) => p.variable),
        );
        disposeBatch(bt);
        losses.push(value);
        grads = accumulate(
          grads,
          params.map((p) => [p.name, g[p.variable.name]]),
          1 / t.gradient_accumulation_steps,
        );
      }
      weights.dropoutSeed = null;
      const loss = tf.tidy(() => tf.mean(tf.stack(losses)) as tf.Scalar);
      const clipped = clipGradients(grads, t.max_grad_norm);
      tf.dispose([...losses, ...grads.values()]);
      const [lossValue, gradNorm] = await readScalars([loss, clipped.norm]);
      tf.dispose([loss, clipped.norm]);
      if (!Number.isFinite(lossValue) || !Number.isFinite(gradNorm)) {
        tf.dispose([...clipped.grads.values()]);
        throw nonFinite(`the loss became ${lossValue} (gradient norm ${gradNorm})`, step + 1, lastCheckpoint);
      }

      // The LoRA+ update, and the A/B figures of this step: ‖ΔA‖, ‖ΔB‖ always (they show a blow-up before the loss
      // does), ‖∇A‖, ‖∇B‖ on logged steps.
      const logThis = (step + 1) % t.log_every === 0 || step + 1 === totalSteps;
      const names = params.map((p) => p.name);
      const gradNorms = logThis ? names.map((nm) => tf.tidy(() => tf.norm(clipped.grads.get(nm)!) as tf.Scalar)) : [];
      const kept = new Map<string, tf.Tensor>();
      const deltas = opt.step(clipped.grads, lrScale, logThis ? loraNames : undefined, kept);
      const outputs = logThis ? outputChanges(weights, kept) : [];
      const figures = await readScalars([...names.map((nm) => deltas.get(nm)!), ...gradNorms, ...outputs]);
      tf.dispose([...clipped.grads.values(), ...gradNorms, ...deltas.values(), ...kept.values(), ...outputs]);
      const blown = names.find((_, i) => !Number.isFinite(figures[i]));
      if (blown)
        throw nonFinite(`the update of ${blown} became ${figures[names.indexOf(blown)]}`, step + 1, lastCheckpoint);
      step += 1;
      state.tokens_seen += tokens;
      if (logThis) {
        const at = (nm: string) => ({
          delta: figures[names.indexOf(nm)],
          grad: figures[names.length + names.indexOf(nm)],
        });
        const out = figures.slice(2 * names.length);
        const modules: ModuleStats[] = [...weights.lora.keys()].map((m, i) => {
          const [a, b] = [at(`${m}.lora_A.weight`), at(`${m}.lora_B.weight`)];
          return {
            module: m,
            grad_A: a.grad,
            grad_B: b.grad,
            delta_A: a.delta,
            delta_B: b.delta,
            out_A: out[2 * i],
            out_B: out[2 * i + 1],
          };
        });
        emit({
          type: 'step',
          step,
          epoch: state.micro_step / batchesPerEpoch,
          loss: lossValue,
          lr: Object.fromEntries(groups.map((g) => [g.name, g.lr * lrScale])),
          grad_norm: gradNorm,
          tokens_per_s: tokens / Math.max(1e-3, (Date.now() - stepStart) / 1000),
          tokens_seen: state.tokens_seen,
          elapsed_s: (Date.now() - trainStart) / 1000,
          modules,
        });
      }

      if (t.eval_every > 0 && step % t.eval_every === 0 && step < totalSteps) await runEval();
      if (t.save_every > 0 && step % t.save_every === 0 && step < totalSteps) await checkpoint();
    }

    // ---- stopped, or the end: checkpoint / final adapter ------------------------------------------------------
    if (step < totalSteps) {
      await checkpoint(); // a stop leaves a resumable checkpoint
      emit({
        type: 'end',
        status: 'stopped',
        step,
        elapsed_s: (Date.now() - t0) / 1000,
        final_adapter: null,
        last_checkpoint: lastCheckpoint,
      });
      return { status: 'stopped', runDir, step, finalAdapter: null, lastCheckpoint, evals };
    }
    await runEval();
    const finalDir = path.join(runDir, 'final');
    const adapter = await weights.toAdapter(config.model, taskType(config), { loraplus_lr_ratio: t.loraplus_lr_ratio });
    writeDirAtomic(finalDir, (tmp) => saveAdapter(tmp, adapter));
    emit({ type: 'checkpoint', step, path: finalDir, kind: 'final' });
    emit({
      type: 'end',
      status: 'finished',
      step,
      elapsed_s: (Date.now() - t0) / 1000,
      final_adapter: finalDir,
      last_checkpoint: lastCheckpoint,
    });
    return { status: 'finished', runDir, step, finalAdapter: finalDir, lastCheckpoint, evals };
  } catch (err) {
    emit({ type: 'error', step, error: toErrorInfo(err) });
    emit({
      type: 'end',
      status: 'failed',
      step,
      elapsed_s: (Date.now() - t0) / 1000,
      final_adapter: null,
      last_checkpoint: lastCheckpoint,
    });
    throw err;
  } finally {
    for (const d of disposables.reverse()) d.dispose();
  }
}

function nonFinite(what: string, step: number, lastCheckpoint: string | null): LoraPlusError {
  return new LoraPlusError({
    code: 'train/non-finite',
    message: `${what} at step ${step}`,
    yamlPath: 'training.learning_rate',
    hint: `Lower learning_rate or loraplus_lr_ratio, or set max_grad_norm. ${lastCheckpoint ? `The last good checkpoint is ${lastCheckpoint}.` : 'No checkpoint was written before this step.'}`,
  });
}

/** PEFT's task_type for adapter_config.json. */
export function taskType(config: TrainConfig): string {
  return config.task === 'causal-lm' ? 'CAUSAL_LM' : 'SEQ_CLS';
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

/**
 * The output change each side's update causes, per LoRA module: ‖s·B·ΔA‖_F and ‖s·ΔB·A‖_F with the pre-update A and B
 * (the first-order split of Δ(s·B·A); the ΔB·ΔA term belongs to neither). Computed through r×r Gram matrices,
 * ‖X·Y‖_F² = Σ (XᵀX) ⊙ (Y·Yᵀ), so no [out, in] product is formed.
 */
function outputChanges(weights: Trainables, kept: Map<string, tf.Tensor>): tf.Scalar[] {
  return [...weights.lora.entries()].flatMap(([m, l]) =>
    tf.tidy(() => {
      const dA = kept.get(`${m}.lora_A.weight`)! as tf.Tensor2D; // [r, in]
      const dB = kept.get(`${m}.lora_B.weight`)! as tf.Tensor2D; // [out, r]
      const A = tf.sub(l.A, dA) as tf.Tensor2D; // before the update
      const B = tf.sub(l.B, dB) as tf.Tensor2D;
      const frob = (x: tf.Tensor2D, y: tf.Tensor2D) =>
        tf.mul(
          tf.sqrt(tf.sum(tf.mul(tf.matMul(x, x, true, false), tf.matMul(y, y, false, true)))),
          l.scaling,
        ) as tf.Scalar;
      return [frob(B, dA), frob(dB, A)]; // [out_A, out_B]
    }),
  );
}

/** One device read for many scalars (each read is a GPU sync on webgpu). */
async function readScalars(xs: tf.Scalar[]): Promise<number[]> {
  if (!xs.length) return [];
  const stacked = tf.stack(xs);
  const v = Array.from(await stacked.data());
  stacked.dispose();
  return v;
}
