// What `loraplus compare A B [...] --json` prints and the compare webview draws: plain JSON data, no classes, so
// the engine (child process), the extension host and the webview all read the same report. Items are indexed
// by their position in `items`; every per-item array (curves, modules, evals) is in the same order.
// The messages between the host and the compare webview are at the end: two typed maps (name → payload) like the
// dashboard's, each message carrying the protocol version, each side checking what it receives.
import type { ErrorInfo } from './errors';
import { isObject } from './json';

export type CompareItemKind = 'run' | 'checkpoint' | 'adapter';

/** A config value after flattening: scalars stay, lists stay lists (compared as JSON). */
export type ConfigValue = string | number | boolean | null | ConfigValue[];

export interface EvalPoint {
  step: number;
  loss: number;
  accuracy?: number; // sequence classification
  perplexity?: number; // causal LM
  token_accuracy?: number; // sft
  exact_match?: number; // sft with eval.generate on short answers
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
  /** What sets this item apart from the others compared with it ("λ 16", "lr 0.002 · step 2"); null when nothing
   *  short tells it apart. Views name series by it (the label stays in tooltips); absent in older reports. */
  caption?: string | null;
  kind: CompareItemKind;
  run: string | null; // the run's name (run and checkpoint items)
  run_dir: string | null;
  adapter_dir: string; // the adapter folder whose weights are compared
  step: number | null; // the checkpoint's step, or the run's last step
  status: string | null; // the run's status word (finished, stopped, failed, interrupted, running)
  /** Dotted keys (training.learning_rate); for an adapter without a run, from its adapter_config.json. */
  config: Record<string, ConfigValue>;
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
    token_accuracy?: (number | null)[]; // sft (absent in reports of older versions)
    exact_match?: (number | null)[];
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

/** Subspace similarity (Hu et al. 2021, §7) between the top singular directions of two adapters. */
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
  delta: SubspaceSimilarity; // input side: right-singular vectors of ΔW = scaling·B·A (A's row space; the paper's)
  out: SubspaceSimilarity; // output side: left-singular vectors of ΔW (B's column space)
  A: SubspaceSimilarity; // right-singular vectors of lora_A (the paper's choice; = delta at full rank when B is)
  cosine: number | null; // ⟨ΔW₁, ΔW₂⟩_F / (‖ΔW₁‖_F ‖ΔW₂‖_F); null when a ΔW is zero
  a_cosine: number | null; // entrywise cosine of the two lora_A (same r only): ≈ 1 when A stayed at a shared start
}

/**
 * Whether two runs started from the same lora_A: their configs agree on everything that draws it (seed, model, task,
 * r, target modules, init_adapter). Then the input side (A's row space) starts identical and, with a small lr_A,
 * stays so: φ on that side is ≈ 1 by construction, whatever the runs learned.
 */
export interface SharedInit {
  same: boolean;
  seed: number | null; // the shared seed, when same
  differs: string[]; // the config keys that make the starts differ (empty when same)
}

export interface PairSimilarity {
  a: number; // item indices
  b: number;
  modules: ModuleSimilarity[]; // the modules both adapters have, with the same input size
  skipped: string[]; // modules only one of them has (or with another input size)
  /** Means over the modules: φ(r1, r2) of each side, the cosine of the updates and of the lora_A. */
  mean: { delta: number | null; out: number | null; A: number | null; cosine: number | null; a_cosine: number | null };
  shared_init: SharedInit | null; // null when an item is a bare adapter folder (no config says how it started)
}

export interface EvalOutcome {
  loss: number;
  accuracy?: number;
  perplexity?: number;
  examples: number;
  data: string; // the eval file
  backend: string;
}

/** One adapter's evaluation, or why it failed; `item` indexes the compared items (or the adapters asked for). */
export type ItemEval = (EvalOutcome & { item: number }) | { item: number; error: ErrorInfo };

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
  evals?: ItemEval[]; // with --eval
  definitions: Record<string, string>; // what each figure is, for readers of the JSON
}

// ---- webview messages -----------------------------------------------------------------------------------------

// The webview sends `ready` first (again after every reload: hidden panels lose their page); the host answers by
// replaying what it has posted so far (the report or its error, then the evaluations). `runEval` asks for one item's
// evaluation, answered by `evalResult` or `evalError`.
export const COMPARE_PROTOCOL = 1;

/** Host → compare webview, by name. */
export interface HostMessages {
  report: { report: CompareReport };
  reportError: { error: ErrorInfo }; // the report could not be computed
  evalResult: { item: number; result: EvalOutcome };
  evalError: { item: number; error: ErrorInfo };
}

/** Compare webview → host, by name. */
export interface WebviewMessages {
  ready: Record<string, never>;
  runEval: { item: number }; // an index into the report's items
}

/** One message of a map: `{v, type, ...payload}`. */
export type CompareMessage<M, K extends keyof M = keyof M> = K extends keyof M
  ? { v: typeof COMPARE_PROTOCOL; type: K } & M[K]
  : never;
export type HostToCompare = CompareMessage<HostMessages>;
export type CompareToHost = CompareMessage<WebviewMessages>;

export function hostMessage<K extends keyof HostMessages>(
  type: K,
  payload: HostMessages[K],
): CompareMessage<HostMessages, K> {
  return { v: COMPARE_PROTOCOL, type, ...payload } as CompareMessage<HostMessages, K>;
}

export function webviewMessage<K extends keyof WebviewMessages>(
  type: K,
  payload: WebviewMessages[K],
): CompareMessage<WebviewMessages, K> {
  return { v: COMPARE_PROTOCOL, type, ...payload } as CompareMessage<WebviewMessages, K>;
}

/** What the webview keeps with vscode.setState (and the body's data-state): enough for the serializer to recompute. */
export interface CompareState {
  paths: string[];
}

// ---- guards: what arrives over postMessage (or from a saved state) is unknown until checked ----------------------
// Shallow but real: the shapes the page indexes into (arrays per item, numbers it formats); the figures themselves
// are the engine's to get right.

type Obj = Record<string, unknown>;
const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number';
const isIndex = (x: unknown): x is number => Number.isInteger(x) && (x as number) >= 0;
const isOptNum = (x: unknown) => x === undefined || isNum(x);
const isStrs = (x: unknown): x is string[] => Array.isArray(x) && x.every(isStr);

export function isErrorInfo(x: unknown): x is ErrorInfo {
  return isObject(x) && isStr(x.code) && isStr(x.message);
}

function isEvalOutcome(x: unknown): x is EvalOutcome {
  return (
    isObject(x) &&
    isNum(x.loss) &&
    isNum(x.examples) &&
    isStr(x.data) &&
    isStr(x.backend) &&
    isOptNum(x.accuracy) &&
    isOptNum(x.perplexity)
  );
}

function isItem(x: unknown): x is CompareItem {
  return (
    isObject(x) &&
    isStr(x.path) &&
    isStr(x.label) &&
    isStr(x.adapter_dir) &&
    isObject(x.config) &&
    (x.metrics === null || isObject(x.metrics)) &&
    isObject(x.adapter)
  );
}

function isPair(x: unknown, items: number): x is PairSimilarity {
  return (
    isObject(x) &&
    isIndex(x.a) &&
    isIndex(x.b) &&
    x.a < items &&
    x.b < items &&
    Array.isArray(x.modules) &&
    x.modules.every(isObject) &&
    isStrs(x.skipped) &&
    isObject(x.mean)
  );
}

/** A version-1 report whose per-item arrays have one entry per item. */
export function isCompareReport(x: unknown): x is CompareReport {
  if (!isObject(x) || x.version !== 1 || !Array.isArray(x.items) || !x.items.every(isItem)) return false;
  const n = x.items.length;
  const perItem = (a: unknown, ok: (v: unknown) => boolean) => Array.isArray(a) && a.length === n && a.every(ok);
  return (
    isStrs(x.config_keys) &&
    isStrs(x.differs) &&
    perItem(x.curves, (c) => c === null || isObject(c)) &&
    perItem(x.modules, (ms) => Array.isArray(ms) && ms.every(isObject)) &&
    Array.isArray(x.similarity) &&
    x.similarity.every((p) => isPair(p, n)) &&
    (x.eval_config === null || isStr(x.eval_config)) &&
    (x.evals === undefined || Array.isArray(x.evals)) &&
    isObject(x.definitions)
  );
}

export function isCompareState(x: unknown): x is CompareState {
  return isObject(x) && Array.isArray(x.paths) && x.paths.length > 0 && x.paths.every((p) => isStr(p) && p !== '');
}

const HOST_CHECKS: { [K in keyof HostMessages]: (m: Obj) => boolean } = {
  report: (m) => isCompareReport(m.report),
  reportError: (m) => isErrorInfo(m.error),
  evalResult: (m) => isIndex(m.item) && isEvalOutcome(m.result),
  evalError: (m) => isIndex(m.item) && isErrorInfo(m.error),
};

const WEBVIEW_CHECKS: { [K in keyof WebviewMessages]: (m: Obj) => boolean } = {
  ready: () => true,
  runEval: (m) => isIndex(m.item),
};

function check<M>(checks: { [K in keyof M]: (m: Obj) => boolean }, x: unknown): boolean {
  if (!isObject(x) || x.v !== COMPARE_PROTOCOL || !isStr(x.type) || !Object.hasOwn(checks, x.type)) return false;
  return checks[x.type as keyof M](x);
}

export function isHostToCompare(x: unknown): x is HostToCompare {
  return check(HOST_CHECKS, x);
}

export function isCompareToHost(x: unknown): x is CompareToHost {
  return check(WEBVIEW_CHECKS, x);
}
