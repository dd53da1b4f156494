// What `loraplus compare` compares: each path names a run folder, a checkpoint folder or any PEFT adapter folder.
// Everything about an item is "as of its adapter": a checkpoint's metrics and curves stop at its step, so two
// checkpoints of one run compare like two runs.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ADAPTER_CONFIG_FILE, type Adapter, type AdapterConfig } from '../../adapters/peft';
import type { LoraPlusSettings } from '../../adapters/loraplus-file';
import type {
  CompareCurves,
  CompareItem,
  CompareItemKind,
  CompareMetrics,
  ConfigValue,
  EvalPoint,
} from '../../protocol/compare';
import { LoraPlusError } from '../../protocol/errors';
import type { EngineEvent, EvalEvent, StepEvent } from '../../protocol/events';
import { readMetrics } from '../runs/writer';
import { isRunDir, summarizeEvents, type RunSummary } from '../runs/summary';
import { flattenConfig } from '../../config/flatten';

/** Where an item's adapter and run are. */
export interface ItemLocation {
  path: string;
  kind: CompareItemKind;
  runDir: string | null;
  adapterDir: string;
  step: number | null; // the checkpoint's step; a run's: filled in from its events
}

const WHAT_TO_PASS =
  'Pass a run folder (with metrics.jsonl), a checkpoint folder (runs/NAME/checkpoints/step-N) ' +
  'or a PEFT adapter folder (adapter_config.json + adapter_model.safetensors).';

/** Finds what `p` names, or says what is wrong with it (what, where, what to do). */
export function locateItem(p: string): ItemLocation {
  const abs = path.resolve(p);
  if (!fs.existsSync(abs))
    throw new LoraPlusError({
      code: 'compare/not-found',
      message: 'no such file or folder',
      file: abs,
      hint: WHAT_TO_PASS,
    });
  if (!fs.statSync(abs).isDirectory()) {
    const hint = abs.endsWith('.safetensors')
      ? `Pass the folder that holds it together with ${ADAPTER_CONFIG_FILE}.`
      : WHAT_TO_PASS;
    throw new LoraPlusError({
      code: 'compare/not-a-folder',
      message: 'this is a file, not a run, checkpoint or adapter folder',
      file: abs,
      hint,
    });
  }
  if (isRunDir(abs)) {
    const summary = summarizeEvents(abs, readMetrics(abs));
    const newest = summary.checkpoints.at(-1);
    const adapterDir = summary.finalAdapter ?? newest?.dir;
    if (!adapterDir) {
      throw new LoraPlusError({
        code: 'compare/no-adapter',
        message: `run ${summary.name} has no adapter yet (no final/ and no complete checkpoint)`,
        file: abs,
        hint: 'Wait for its first checkpoint (training.save_every), or compare runs that have finished.',
      });
    }
    return { path: abs, kind: 'run', runDir: abs, adapterDir, step: summary.finalAdapter ? null : newest!.step };
  }
  if (fs.existsSync(path.join(abs, ADAPTER_CONFIG_FILE))) {
    const parent = path.dirname(abs);
    const step = /^step-(\d+)$/.exec(path.basename(abs));
    if (step && path.basename(parent) === 'checkpoints' && isRunDir(path.dirname(parent))) {
      return { path: abs, kind: 'checkpoint', runDir: path.dirname(parent), adapterDir: abs, step: Number(step[1]) };
    }
    if (path.basename(abs) === 'final' && isRunDir(parent))
      return { path: abs, kind: 'run', runDir: parent, adapterDir: abs, step: null };
    return { path: abs, kind: 'adapter', runDir: null, adapterDir: abs, step: null };
  }
  const isModel = fs.existsSync(path.join(abs, 'config.json'));
  throw new LoraPlusError({
    code: 'compare/no-adapter',
    file: abs,
    message: isModel
      ? 'this is a model folder, not an adapter'
      : `no ${ADAPTER_CONFIG_FILE} here, and it is not a run folder`,
    hint: isModel ? 'Compare adapters trained on it (run folders, checkpoints or PEFT adapter folders).' : WHAT_TO_PASS,
  });
}

/** The item as the report shows it (label made unique by the caller). */
export function describeItem(
  loc: ItemLocation,
  adapter: Pick<Adapter, 'config' | 'loraplus'> & { lora: Map<string, unknown>; modulesToSave: Map<string, unknown> },
): { item: CompareItem; curves: CompareCurves | null } {
  const cfg = adapter.config;
  const base = {
    path: loc.path,
    kind: loc.kind,
    adapter_dir: loc.adapterDir,
    adapter: {
      r: cfg.r,
      lora_alpha: cfg.lora_alpha,
      use_rslora: cfg.use_rslora,
      fan_in_fan_out: cfg.fan_in_fan_out,
      base_model: cfg.base_model_name_or_path,
      lora_modules: adapter.lora.size,
      modules_to_save: [...adapter.modulesToSave.keys()],
    },
  };
  if (!loc.runDir) {
    const label = ['final', 'adapter', 'checkpoint'].includes(path.basename(loc.path))
      ? path.join(path.basename(path.dirname(loc.path)), path.basename(loc.path))
      : path.basename(loc.path);
    return {
      item: {
        ...base,
        label,
        run: null,
        run_dir: null,
        step: null,
        status: null,
        config: adapterConfigAsRun(cfg, adapter.loraplus),
        metrics: null,
      },
      curves: null,
    };
  }
  const events = readMetrics(loc.runDir);
  const summary: RunSummary = summarizeEvents(loc.runDir, events);
  const step = loc.step ?? summary.step;
  const label = loc.kind === 'checkpoint' ? `${summary.name}@step-${step}` : summary.name;
  const config = summary.config ? flattenConfig(summary.config) : adapterConfigAsRun(cfg, adapter.loraplus);
  return {
    item: {
      ...base,
      label,
      run: summary.name,
      run_dir: loc.runDir,
      step,
      status: summary.status,
      config,
      metrics: metricsAt(events, step),
    },
    curves: curvesUpTo(events, step),
  };
}

/** Makes labels unique: a second `run-a` becomes `run-a (2)`. */
export function uniqueLabels(items: CompareItem[]): void {
  const seen = new Map<string, number>();
  for (const it of items) {
    const n = (seen.get(it.label) ?? 0) + 1;
    seen.set(it.label, n);
    if (n > 1) it.label = `${it.label} (${n})`;
  }
}

// ---- configs ------------------------------------------------------------------------------------------------------

const TASKS: Record<string, string> = { CAUSAL_LM: 'causal-lm', SEQ_CLS: 'sequence-classification' };

/**
 * An adapter folder without a run: its adapter_config.json (and loraplus.json) under the training config's names, so
 * the table lines up.
 */
function adapterConfigAsRun(cfg: AdapterConfig, loraplus?: LoraPlusSettings | null): Record<string, ConfigValue> {
  const out: Record<string, ConfigValue> = {
    model: cfg.base_model_name_or_path,
    task: cfg.task_type ? (TASKS[cfg.task_type] ?? cfg.task_type) : null,
    'lora.r': cfg.r,
    'lora.lora_alpha': cfg.lora_alpha,
    'lora.lora_dropout': cfg.lora_dropout,
    'lora.target_modules': cfg.target_modules,
    'lora.use_rslora': cfg.use_rslora,
    'lora.modules_to_save': cfg.modules_to_save,
  };
  if (loraplus?.optimizer !== undefined) out['training.optimizer'] = loraplus.optimizer;
  if (loraplus?.learning_rate !== undefined) out['training.learning_rate'] = loraplus.learning_rate;
  if (loraplus) out['training.loraplus_lr_ratio'] = loraplus.loraplus_lr_ratio;
  return out;
}

// ---- metrics and curves -------------------------------------------------------------------------------------------

const evalPoint = (e: EvalEvent): EvalPoint => ({
  step: e.step,
  loss: e.loss,
  ...(e.accuracy !== undefined && { accuracy: e.accuracy }),
  ...(e.perplexity !== undefined && { perplexity: e.perplexity }),
  ...(e.token_accuracy !== undefined && { token_accuracy: e.token_accuracy }),
  ...(e.exact_match !== undefined && { exact_match: e.exact_match }),
});

/** A step or eval event at or before `step` (other tools' lines in metrics.jsonl have no numeric step). */
function atOrBefore(e: EngineEvent, step: number): e is StepEvent | EvalEvent {
  return Boolean(e) && (e.type === 'step' || e.type === 'eval') && typeof e.step === 'number' && e.step <= step;
}

export function metricsAt(events: EngineEvent[], step: number): CompareMetrics {
  let last: StepEvent | null = null;
  let lastEval: EvalEvent | null = null;
  let best: EvalEvent | null = null;
  for (const e of events) {
    if (!atOrBefore(e, step)) continue;
    if (e.type === 'step') last = e;
    if (e.type === 'eval') {
      lastEval = e;
      if (Number.isFinite(e.loss) && (!best || e.loss < best.loss)) best = e; // a NaN loss is null in the file
    }
  }
  return {
    step,
    tokens_seen: last?.tokens_seen ?? null,
    train_loss: last?.loss ?? null,
    eval: lastEval && evalPoint(lastEval),
    best_eval: best && evalPoint(best),
  };
}

export function curvesUpTo(events: EngineEvent[], step: number): CompareCurves {
  const [tokenAccuracy, exactMatch]: (number | null)[][] = [[], []];
  const c: CompareCurves = {
    step: [],
    tokens_seen: [],
    loss: [],
    eval: {
      step: [],
      tokens_seen: [],
      loss: [],
      accuracy: [],
      perplexity: [],
      token_accuracy: tokenAccuracy, // sft
      exact_match: exactMatch,
    },
  };
  const tokensAt = new Map<number, number>([[0, 0]]);
  for (const e of events) {
    if (e.type !== 'step' || !atOrBefore(e, step)) continue;
    c.step.push(e.step);
    c.tokens_seen.push(e.tokens_seen);
    c.loss.push(e.loss);
    tokensAt.set(e.step, e.tokens_seen);
  }
  for (const e of events) {
    if (e.type !== 'eval' || !atOrBefore(e, step)) continue;
    c.eval.step.push(e.step);
    c.eval.tokens_seen.push(tokensAt.get(e.step) ?? null);
    c.eval.loss.push(e.loss);
    c.eval.accuracy.push(e.accuracy ?? null);
    c.eval.perplexity.push(e.perplexity ?? null);
    tokenAccuracy.push(e.token_accuracy ?? null);
    exactMatch.push(e.exact_match ?? null);
  }
  return c;
}
