// What `loraplus compare A B [...] --json` prints and the compare webview draws: plain JSON data, no classes, so
// the engine (child process), the extension host and the webview all read the same report. Items are indexed
// by their position in `items`; every per-item array (curves, modules, evals) is in the same order.
import type { ErrorInfo } from './errors';

export type CompareItemKind = 'run' | 'checkpoint' | 'adapter';

/** A config value after flattening: scalars stay, lists stay lists (compared as JSON). */
export type ConfigValue = string | number | boolean | null | ConfigValue[];

export interface EvalPoint {
  step: number;
  loss: number;
  accuracy?: number; // sequence classification
  perplexity?: number; // causal LM
}

/** Metrics of an item at its step: a run's last step, a checkpoint's step. Nothing after that step counts. */
export interface CompareMetrics {
  step: number;
  tokens_seen: number | null;
  train_loss: number | null; // the last logged training loss at or before `step`
  eval: EvalPoint | null; // the last eval at or before `step`
  best_eval: EvalPoint | null; // the lowest eval loss at or before `step`
}

export interface CompareItem {
  path: string; // as given, made absolute
  label: string; // short and unique among the items: run name, run@step-N, or the adapter folder's name
  kind: CompareItemKind;
  run: string | null; // the run's name (run and checkpoint items)
  run_dir: string | null;
  adapter_dir: string; // the adapter folder whose weights are compared
  step: number | null; // the checkpoint's step, or the run's last step
  status: string | null; // the run's status word (finished, stopped, failed, interrupted, running)
  config: Record<string, ConfigValue>; // dotted keys (training.learning_rate); adapters without a run: from adapter_config.json
  metrics: CompareMetrics | null; // null for a bare adapter folder
  adapter: {
    r: number;
    lora_alpha: number;
    use_rslora: boolean;
    fan_in_fan_out: boolean;
    base_model: string | null;
    lora_modules: number;
    modules_to_save: string[];
  };
}

/** Training and eval curves of one item (a checkpoint's curves stop at its step). Arrays of one series align. */
export interface CompareCurves {
  step: number[];
  tokens_seen: number[];
  loss: (number | null)[]; // null: a NaN/Inf loss (written as null in metrics.jsonl)
  eval: {
    step: number[];
    tokens_seen: (number | null)[]; // tokens seen by the step the eval ran at (null when no step event says)
    loss: (number | null)[];
    accuracy: (number | null)[];
    perplexity: (number | null)[];
  };
}

/** One LoRA module of one adapter: ΔW = scaling · lora_B · lora_A, [out, in]. */
export interface ModuleStat {
  module: string; // model.layers.0.self_attn.q_proj
  layer: number | null; // the first number in the path (layers.N, h.N, layer.N)
  kind: string; // the path after the layer number (self_attn.q_proj), or the whole path
  r: number;
  scaling: number;
  shape: [number, number]; // [out, in]
  norm: number; // ‖ΔW‖_F = √Σσ²
  sigma: number[]; // singular values of ΔW, descending (min(r, out, in) of them)
  effective_rank: number; // exp(H(p)), p = σ / Σσ (Roy & Vetterli 2007); 0 for ΔW = 0
  numerical_rank: number; // #{σ > 1e-3 · σ_max}
  energy_rank_90: number; // the least k with σ₁² + … + σ_k² ≥ 0.9 ‖ΔW‖_F²
}

/** Subspace similarity (Hu et al. 2021, §7) between the top right-singular directions of two adapters. */
export interface SubspaceSimilarity {
  phi: number | null; // φ(r1, r2) = ‖U1ᵀ U2‖_F² / min(r1, r2); null when either ΔW is zero (no directions)
  diag: number[]; // φ(i, i) for i = 1 … min(r1, r2)
  grid?: number[][]; // φ(i, j), i = 1 … r1 (rows), j = 1 … r2, when asked for (--grid)
}

export interface ModuleSimilarity {
  module: string;
  layer: number | null;
  kind: string;
  r1: number;
  r2: number;
  delta: SubspaceSimilarity; // right-singular vectors of ΔW = scaling·B·A
  A: SubspaceSimilarity; // right-singular vectors of lora_A (the paper's choice)
}

export interface PairSimilarity {
  a: number; // item indices
  b: number;
  modules: ModuleSimilarity[]; // the modules both adapters have, with the same input size
  skipped: string[]; // modules only one of them has (or with different shapes)
  mean: { delta: number | null; A: number | null }; // mean φ(r1, r2) over the modules
}

export interface EvalOutcome {
  loss: number;
  accuracy?: number;
  perplexity?: number;
  examples: number;
  data: string; // the eval file
  backend: string;
}

export interface CompareReport {
  version: 1;
  created: string; // ISO time
  items: CompareItem[];
  config_keys: string[]; // every flattened key of any item, in first-seen order
  differs: string[]; // the keys whose values are not the same on every item (a missing key differs)
  curves: (CompareCurves | null)[]; // per item; null for a bare adapter folder
  modules: ModuleStat[][]; // per item
  similarity: PairSimilarity[]; // per pair (all pairs, or each against the first)
  eval_config: string | null; // the config whose data.eval an evaluation uses (null: none of the items has one)
  evals?: ((EvalOutcome & { item: number }) | { item: number; error: ErrorInfo })[]; // with --eval
  definitions: Record<string, string>; // what each figure is, for readers of the JSON
}

// ---- webview messages -----------------------------------------------------------------------------------------

/** Host → compare webview. */
export type HostToCompare =
  | { type: 'report'; report: CompareReport }
  | { type: 'reportError'; error: ErrorInfo } // the report could not be computed
  | { type: 'evalResult'; item: number; result: EvalOutcome }
  | { type: 'evalError'; item: number; error: ErrorInfo };

/** Compare webview → host. `ready` first; the host posts the report after it. */
export type CompareToHost = { type: 'ready' } | { type: 'runEval'; item: number };

/** What the webview keeps with vscode.setState (and the body's data-state): enough for the serializer to recompute. */
export interface CompareState {
  paths: string[];
}
