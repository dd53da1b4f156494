// The training loop: `train(config, onEvent, signal)`. It reads top to bottom like nanoGPT's train.py: open the run
// folder, set up (trainer.ts), then for each step: train, log, eval, checkpoint; at the end (or on a stop) a final
// adapter (or a resumable checkpoint). It emits typed events and never prints; every event also goes to the run's
// metrics.jsonl before anyone hears of it.
import * as path from 'node:path';
import { saveAdapter } from '../../adapters/peft';
import { writeDirAtomic } from '../../adapters/files';
import type { TrainConfig } from '../../config/schema';
import { toErrorInfo } from '../../protocol/errors';
import type { EngineEvent, EventSink } from '../../protocol/events';
import { trainTorch } from '../export/run-torch';
import { createRun, findRunToResume, reopenRun } from '../runs/writer';
import type { EvalResult } from './evaluate';
import { paddingSaved, type SftData } from '../data/sft-data';
import { Trainer } from './trainer';

export interface TrainOptions {
  runDir?: string; // default: <output_dir>/<run_name>
  resume?: boolean; // continue from the run's latest checkpoint
  configFile?: string; // the config's file: its name starts the default run name (runs/names.ts)
  python?: string; // device: torch: the Python that runs the job (default: LORAPLUS_PYTHON, else python3)
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
  if (config.device === 'torch') return trainTorch(config, onEvent, signal, opts); // PyTorch + PEFT runs it
  const { run, from: resumeFrom } = opts.resume
    ? reopenRun(config, findRunToResume(config, opts.runDir))
    : { run: createRun(config, opts.runDir, opts.configFile), from: undefined };
  const runDir = run.dir;
  const emit = (e: EngineEvent) => {
    run.emit(e);
    onEvent(e);
  };
  const opened = Date.now();
  let trainer: Trainer | null = null;
  try {
    // ---- set up ---------------------------------------------------------------------------------------------------
    const tr = (trainer = await Trainer.open(config, runDir, resumeFrom, emit));
    emit(tr.startEvent(run.name));
    const { model, data, t } = tr;
    if (model.headCreated) {
      const labels = `${model.numLabels} labels (${data.labels.join(', ')})`;
      const message = `created a fresh '${model.head}' head for ${labels}; it is trained in full (modules_to_save)`;
      emit({ type: 'log', level: 'info', message });
    }

    if (data.train.kind === 'sft') emit({ type: 'log', level: 'info', message: sftReport(data.train, t.batch_size) });

    // ---- the loop -------------------------------------------------------------------------------------------------
    if (tr.step === 0 && data.eval && t.eval_every > 0) await tr.evaluate(); // the "before" figure
    while (tr.step < tr.totalSteps) {
      // On wasm/cpu every await above resolves as a microtask: without this, signals and IPC (stop) never get a turn.
      await new Promise((resolve) => setImmediate(resolve));
      if (signal?.aborted) break;
      const logThis = (tr.step + 1) % t.log_every === 0 || tr.step + 1 === tr.totalSteps;
      const figures = await tr.trainStep(logThis);
      if (logThis) emit(tr.stepEvent(figures));
      const due = (every: number) => every > 0 && tr.step % every === 0 && tr.step < tr.totalSteps;
      if (due(t.eval_every)) await tr.evaluate();
      if (due(t.save_every)) await tr.checkpoint();
    }

    // ---- stopped, or the end: a resumable checkpoint, or the final adapter ----------------------------------------
    const end = (status: 'finished' | 'stopped', finalAdapter: string | null): TrainResult => {
      const lastCheckpoint = tr.lastCheckpoint;
      const elapsed_s = tr.elapsed();
      emit({
        type: 'end',
        status,
        step: tr.step,
        elapsed_s,
        final_adapter: finalAdapter,
        last_checkpoint: lastCheckpoint,
      });
      return { status, runDir, step: tr.step, finalAdapter, lastCheckpoint, evals: tr.evals };
    };
    if (tr.step < tr.totalSteps) {
      await tr.checkpoint(); // a stop leaves a resumable checkpoint
      return end('stopped', null);
    }
    await tr.evaluate();
    const finalDir = path.join(runDir, 'final');
    const adapter = await tr.adapter();
    writeDirAtomic(finalDir, (tmp) => saveAdapter(tmp, adapter));
    emit({ type: 'checkpoint', step: tr.step, path: finalDir, kind: 'final' });
    return end('finished', finalDir);
  } catch (err) {
    const step = trainer?.step ?? resumeFrom?.step ?? 0;
    const elapsed_s = trainer?.elapsed() ?? (Date.now() - opened) / 1000;
    const last_checkpoint = trainer?.lastCheckpoint ?? resumeFrom?.dir ?? null;
    // The failure itself may be the metrics file (a full disk): the caller hears of it all the same.
    const report = (e: EngineEvent) => {
      try {
        run.emit(e);
      } catch {
        // nothing more to write to
      }
      onEvent(e);
    };
    report({ type: 'error', step, error: toErrorInfo(err) });
    report({ type: 'end', status: 'failed', step, elapsed_s, final_adapter: null, last_checkpoint });
    throw err;
  } finally {
    trainer?.dispose();
    run.close();
  }
}

/** What the sft data became, once at run start: rows, cuts, drops, and what packing saved. */
function sftReport(d: SftData, batchSize: number): string {
  const c = d.counts;
  const n = (x: number) => x.toLocaleString('en-US');
  const parts = [`sft data: ${n(d.examples.length)} of ${n(c.rows)} ${d.format} rows`];
  parts.push(`${n(c.truncated)} cut to max_length`);
  if (c.dropped) parts.push(`${n(c.dropped)} dropped (no answer token left after the cut)`);
  if (d.packed) {
    const { padded, packed } = paddingSaved(d, batchSize);
    parts.push(`packed into ${n(d.packed.length)} blocks: ${n(padded - packed)} tokens of padding saved`);
  }
  return parts.join(' · ');
}
