// How much memory a config needs, estimated before the run from the safetensors headers (shapes: every weight is
// float32 in memory, whatever the file's dtype) and config.json's dims, and the check that refuses a run that cannot
// fit its backend (sizes.ts says what each holds). Without it such a run dies in its first steps, with "memory access
// out of bounds" from the WebAssembly runtime or "Invalid typed array length". bench/memory.ts compares the estimate
// with real runs; components:
//   weights      every tensor the model builds, float32, plus the LoRA factors; on wasm also XNNPACK's packed copy of
//                each Linear weight (made on its first product and kept as long as the weight lives)
//   optimizer    AdamW's two moments and the gradient of each trained number, with its clipped copy (and the running
//                sum under gradient accumulation)
//   activations  one pass of batch_size × max_length tokens at its peak, in the backward pass of the first layer:
//                tfjs keeps a copy of every tensor an op saves for its gradient and every gradient until the
//                backward pass ends, so each layer holds dozens of [tokens, width] tensors (counted per family below),
//                plus attention's [B, heads, T, T] scores and the [B, T, vocab] logits and their gradients
import { inModulesToSave } from '../../adapters/peft';
import { addKeyFix, problem } from '../../config/problem';
import type { CheckInput, ConfigCheck, Fix, Problem } from '../../config/problem';
import type { TunableConfig } from '../../config/schema'; // the estimate reads no learning rate: `auto` is fine
import { gemma3TextConfig } from '../../models/gemma3/config';
import type { HFConfig } from '../../models/types';
import { inspectModel, type ModelSummary } from './inspect';
import { backendLimit, GPU_WARN, PROCESS_BYTES, type Backend, type Limit } from './sizes';

/** The dims of config.json the estimate needs. */
export interface Dims {
  layers: number;
  hidden: number; // H
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number; // the MLP's width I
  vocab: number; // V
}

export interface MemoryEstimate {
  backend: Backend;
  batch: number; // batch_size: the examples of one pass
  length: number; // max_length
  parameters: number; // numbers the built model holds, LoRA factors included
  trainable: number; // numbers trained: LoRA factors and modules_to_save
  /** Bytes. `weights` includes `packed` (wasm only); `overhead` is the wasm heap's allocator (see HEAP_OVERHEAD);
   *  `process` is Node itself and the checkpoint's bytes that loading keeps (cpu, whose tensors share the process's
   *  memory); `total` is what must fit the backend's limit. */
  weights: number;
  packed: number;
  optimizer: number;
  activations: number;
  overhead: number;
  process: number;
  total: number;
  /** Of the activations, the bytes that grow with max_length² (attention scores and masks). */
  quadratic: number;
  dims: Dims;
  /** The largest single tensor of a pass (or weight), in numbers. */
  largest: { numbers: number; what: 'scores' | 'logits' | 'weight'; name: string };
}

/**
 * Numbers per token that one layer holds at the pass's peak, as multiples of H, I, the query width q = heads·head_dim,
 * the key/value width kv = kv_heads·head_dim and the attention scores per token (heads·T), for the layer alone
 * (each adapted Linear adds twice its input width: its saved input and that input's gradient). Counted from the live
 * tensors at the peak of a training step (bench/memory.ts --count); gpt2 and bert have q = kv = H, so theirs are in h.
 */
const PER_LAYER: Record<string, { h: number; i: number; q: number; kv: number; s: number }> = {
  llama: { h: 27, i: 11, q: 19, kv: 20, s: 1 },
  qwen3: { h: 27, i: 11, q: 30, kv: 31, s: 1 }, // + the per-head q/k norms
  gemma3: { h: 19, i: 7, q: 23, kv: 24, s: 1 },
  gpt2: { h: 31, i: 20, q: 0, kv: 0, s: 1 },
  bert: { h: 31, i: 3, q: 0, kv: 0, s: 1 },
};
/** A family not counted yet gets the largest of each. */
const UNCOUNTED = { h: 31, i: 20, q: 30, kv: 31, s: 1 };

/**
 * The wasm heap holds more than the tensors: freed tensors leave holes that later tensors of other sizes cannot use,
 * and the heap grows in steps. Against real runs (bench/memory.ts) the heap's peak was 1-17% above the tensors'
 * (most where the large [B, heads, T, T] tensors come and go): these shares of the activations and weights cover it.
 */
const HEAP_OVERHEAD = { activations: 0.12, weights: 0.04 };

/** Keys a checkpoint may hold that the model never builds (Gemma 3's vision tower). */
const UNBUILT = /^model\.(vision_tower|multi_modal_projector)\./;

/** config.json's dims (a multimodal Gemma 3's from its text_config), or null when it lacks them. */
export function dimsOf(raw: HFConfig): Dims | null {
  const c = raw.model_type === 'gemma3' || raw.model_type === 'gemma3_text' ? gemma3TextConfig(raw) : raw;
  const int = (...keys: string[]): number | undefined => {
    for (const k of keys) if (typeof c[k] === 'number' && (c[k] as number) > 0) return c[k] as number;
    return undefined;
  };
  const hidden = int('hidden_size', 'n_embd', 'dim', 'd_model');
  const layers = int('num_hidden_layers', 'n_layer', 'n_layers');
  const heads = int('num_attention_heads', 'n_head', 'n_heads');
  const vocab = int('vocab_size');
  if (!hidden || !layers || !heads || !vocab) return null;
  return {
    layers,
    hidden,
    heads,
    kvHeads: int('num_key_value_heads') ?? heads,
    headDim: int('head_dim') ?? hidden / heads,
    intermediate: int('intermediate_size', 'n_inner', 'hidden_dim', 'ffn_dim') ?? 4 * hidden,
    vocab,
  };
}

interface Module {
  name: string;
  out: number;
  in: number;
}

/** The Linears that get adapters and those trained in full, as the trainables resolve them (trainables.ts). */
export function trainedModules(config: TunableConfig, m: ModelSummary, d: Dims): { adapted: Module[]; full: Module[] } {
  const lm = config.task !== 'sequence-classification'; // causal-lm, and sft (a causal LM too)
  const heads = m.family.outputHeads.filter((h) => lm === (h === 'lm_head'));
  const labels = config.data.labels?.length || 2;
  const shape = (name: string): [number, number] =>
    m.linears.get(name) ?? (name === 'lm_head' ? [d.vocab, d.hidden] : [labels, d.hidden]); // tied, or a fresh head
  const names = [...new Set([...m.linears.keys(), ...heads])].filter(
    (n) => !UNBUILT.test(`${n}.`) && (lm || n !== 'lm_head'),
  );
  const saved = config.lora.modules_to_save ?? (lm ? [] : heads);
  const full = names.filter((n) => inModulesToSave(n, saved));
  const adaptable = names.filter((n) => !full.includes(n));
  const t = config.lora.target_modules;
  const picked =
    t === 'all-linear'
      ? adaptable.filter((n) => !m.family.outputHeads.includes(n))
      : typeof t === 'string'
        ? adaptable.filter((n) => new RegExp(`^(?:${t})$`).test(n))
        : adaptable.filter((n) => (t ?? m.family.defaultTargets).some((s) => n === s || n.endsWith(`.${s}`)));
  const module = (name: string): Module => {
    const [out, inp] = shape(name);
    return { name, out, in: inp };
  };
  return { adapted: picked.map(module), full: full.map(module) };
}

/** The estimate for `config` at its batch_size × max_length (or the given ones) on `backend`. */
export function estimateMemory(
  config: TunableConfig,
  m: ModelSummary,
  backend: Backend,
  at: { batch?: number; length?: number } = {},
): MemoryEstimate | null {
  const d = dimsOf(m.config);
  if (!d) return null;
  const b = at.batch ?? config.training.batch_size;
  const t = at.length ?? config.data.max_length;
  const lm = config.task !== 'sequence-classification';
  const { r, lora_dropout: dropout } = config.lora;
  const { adapted, full } = trainedModules(config, m, d);

  // Weights: what the checkpoint holds that the model builds, a fresh head, and the LoRA factors.
  const built = [...m.tensors].filter(([k]) => !UNBUILT.test(k) && (lm || !k.startsWith('lm_head.')));
  const fresh = full.filter((f) => !m.tensors.has(`${f.name}.weight`)).reduce((s, f) => s + f.out * (f.in + 1), 0);
  const loraNumbers = adapted.reduce((s, a) => s + r * (a.in + a.out), 0);
  const trainable =
    loraNumbers + full.reduce((s, f) => s + (m.tensors.get(`${f.name}.weight`) ?? f.out * f.in) + f.out, 0);
  const parameters = built.reduce((s, [, n]) => s + n, 0) + fresh + loraNumbers;
  // wasm: XNNPACK packs the right-hand side of every plain 2-D product, and keeps it as long as the weight lives:
  // each frozen Linear, and a head tied to the embedding (modules_to_save multiply transposed, without XNNPACK).
  const frozen = [...m.linears].filter(([n]) => !UNBUILT.test(`${n}.`) && (lm || n !== 'lm_head'));
  const tiedHead = lm && !m.linears.has('lm_head') ? d.vocab * d.hidden : 0;
  const packedNumbers =
    backend === 'wasm'
      ? frozen.filter(([n]) => !full.some((f) => f.name === n)).reduce((s, [, [o, i]]) => s + o * i, 0) + tiedHead
      : 0;

  // Activations, in numbers (see PER_LAYER).
  const n = b * t;
  const q = d.heads * d.headDim;
  const kv = d.kvHeads * d.headDim;
  const scores = b * d.heads * t * t; // [B, heads, T, T]
  const logits = lm ? n * d.vocab : 0; // [B, T, V]
  const c = PER_LAYER[m.family.name] ?? UNCOUNTED;
  const layer = n * (c.h * d.hidden + c.i * d.intermediate + c.q * q + c.kv * kv) + c.s * scores;
  const lora = adapted.reduce((s, a) => s + n * ((dropout > 0 ? 4 : 2) * a.in + r), 0);
  // Beside the layers: the attention backward's scores-sized transients, the masks ([B, 1, rep·T, T]), the
  // embeddings and final norm, and the logits' softmax, its gradient and (in the head's backward) the gradient's
  // transposed packed copy.
  const masks = 4 * b * (d.heads / d.kvHeads) * t * t;
  const activationNumbers = d.layers * layer + lora + 4 * scores + masks + 4 * n * d.hidden + 4 * logits;

  const accumulating = config.training.gradient_accumulation_steps > 1;
  const weights = 4 * (parameters + packedNumbers);
  const optimizer = 4 * trainable * (4 + (accumulating ? 1 : 0));
  const activations = 4 * activationNumbers;
  const overhead = backend === 'wasm' ? HEAP_OVERHEAD.activations * activations + HEAP_OVERHEAD.weights * weights : 0;
  const biggestWeight = built.reduce<[string, number]>((a, [k, v]) => (v > a[1] ? [k, v] : a), ['', 0]);
  // cpu tensors share the process's memory with Node, and an F32 checkpoint's bytes stay too: the norms and embeddings
  // are views of them, which keep the whole file's buffer (a float32 GPT-2-small-size Llama of 0.58 GB: 1.93 GB RSS).
  const process = backend === 'cpu' ? PROCESS_BYTES + 4 * m.storedF32 : 0;
  const candidates: MemoryEstimate['largest'][] = [
    { numbers: scores, what: 'scores', name: 'attention scores' },
    { numbers: logits, what: 'logits', name: 'logits' },
    { numbers: biggestWeight[1], what: 'weight', name: biggestWeight[0] },
  ];
  return {
    backend,
    batch: b,
    length: t,
    parameters,
    trainable,
    weights,
    packed: 4 * packedNumbers,
    optimizer,
    activations,
    overhead,
    process,
    total: weights + optimizer + activations + overhead + process,
    quadratic: 4 * ((d.layers * c.s + 4) * scores + masks),
    dims: d,
    largest: candidates.reduce((a, x) => (x.numbers > a.numbers ? x : a)),
  };
}

/** `1.23 GB`, `456 MB` (decimal units, as the Hub and most tools show sizes). */
export function formatBytes(bytes: number): string {
  if (bytes >= 10e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(2)} GB`;
  return `${Math.max(1, Math.round(bytes / 1e6))} MB`;
}

/** `weights 1.16 GB, optimizer 5 MB, activations 620 MB`: the components, as the hover and the problems say them. */
export function describeParts(e: MemoryEstimate): string {
  const packed = e.packed ? ` with wasm's packed copies` : '';
  const overhead = e.overhead ? `, heap overhead ${formatBytes(e.overhead)}` : '';
  const process = e.process ? `, Node and the checkpoint's bytes ${formatBytes(e.process)}` : '';
  return (
    `weights ${formatBytes(e.weights)}${packed}, optimizer ${formatBytes(e.optimizer)}, ` +
    `activations ${formatBytes(e.activations)}${overhead}${process}`
  );
}

/** The limit in words: `4.28 GB on wasm`, `unknown on webgpu`. */
export function describeLimit(l: Limit): string {
  return l.bytes === null ? `not known before the run on ${l.backend}` : `${formatBytes(l.bytes)} on ${l.backend}`;
}

/** For the editor's hover on `model`: the estimate of this config, or null when the model's dims are unknown. */
export function memoryHint(config: TunableConfig, m: ModelSummary): string | null {
  if (config.device === 'torch') return null; // the estimate is of our engine's tensors, not PyTorch's
  const limit = backendLimit(config.device);
  const e = estimateMemory(config, m, limit.backend);
  if (!e) return null;
  const fits = limit.bytes === null || e.total <= limit.bytes ? '' : ' — more than fits';
  return (
    `needs ≈ ${formatBytes(e.total)} for this config at batch_size ${e.batch} × max_length ${e.length} ` +
    `(${describeParts(e)}; limit ${describeLimit(limit)}${limit.auto ? `, ${limit.auto}` : ''})${fits}`
  );
}

// ---- The check ----

/** One problem at most: a tensor too large for the backend, or more memory than it has (a warning where unknown). */
export const checkMemory: ConfigCheck = ({ config, written }) => {
  const m = inspectModel(config.model);
  if (!m.ok || config.device === 'torch') return []; // the model's own problem: checkAgainstFiles; torch: not ours
  const p = judgeMemory(config, m.value, backendLimit(config.device), written);
  return p ? [p] : [];
};

type Written = CheckInput['written'];

/** checkMemory's verdict for a model summary and a limit. */
export function judgeMemory(config: TunableConfig, m: ModelSummary, limit: Limit, written: Written): Problem | null {
  const e = estimateMemory(config, m, limit.backend);
  return e && (tensorProblem(e, limit, written) ?? memoryProblem(config, m, e, limit, written));
}

const BATCH = ['training', 'batch_size'];
const LENGTH = ['data', 'max_length'];

function tensorProblem(e: MemoryEstimate, l: Limit, written: Written): Problem | null {
  const big = e.largest;
  if (big.numbers <= l.tensor) return null;
  const { batch: b, length: t, dims: d } = e;
  const what =
    big.what === 'scores'
      ? `its attention scores, batch_size × heads × max_length² = ${b} × ${d.heads} × ${t}²`
      : big.what === 'logits'
        ? `its logits, batch_size × max_length × vocabulary = ${b} × ${t} × ${d.vocab}`
        : `the weight ${big.name}`;
  // Point at max_length when the scores dominate and it was written, else at batch_size (it scales both).
  const path = big.what === 'weight' ? ['model'] : big.what === 'scores' && written(LENGTH) ? LENGTH : BATCH;
  const G = (x: number) => `${(x / 2 ** 30).toFixed(1)}G`;
  return problem({
    severity: l.hard ? 'error' : 'warning',
    code: 'config/pass-too-large',
    message:
      `${big.what === 'weight' ? 'the model holds' : 'one training pass needs'} ${G(big.numbers)} numbers in a ` +
      `single tensor (${what}), more than the ` +
      `${G(l.tensor)} (${formatBytes(4 * l.tensor)}) one tensor can hold on ${l.backend}` +
      `${l.auto ? ` (${l.auto})` : ''}; in all it needs ≈ ${formatBytes(e.total)}`,
    path,
    at: path.length === 1 || written(path) ? 'value' : 'parent',
    hint:
      big.what === 'weight'
        ? 'Use a smaller model, or a GPU (device: cuda or webgpu).'
        : 'Lower batch_size (use gradient_accumulation_steps for the same effective batch) or max_length.',
  });
}

function memoryProblem(
  config: TunableConfig,
  m: ModelSummary,
  e: MemoryEstimate,
  l: Limit,
  written: Written,
): Problem | null {
  const cap = l.bytes ?? GPU_WARN;
  const freeNow = l.bytes !== null && l.free !== null && e.total > l.free;
  if (e.total <= cap && !freeNow) return null;
  const severity = l.hard && e.total > cap ? 'error' : 'warning';
  const limitWords =
    e.total > cap
      ? l.bytes === null
        ? `more than many GPUs have (${l.what})`
        : `more than the ${formatBytes(cap)} of ${l.what}`
      : `more than the ${formatBytes(l.free!)} free now (of ${formatBytes(cap)})`;
  const target = Math.min(cap, freeNow ? l.free! : cap);
  const fits = (batch: number, length: number) =>
    estimateMemory(config, m, l.backend, { batch, length })!.total <= target;
  const { batch: b, length: t } = e;
  const g = config.training.gradient_accumulation_steps;
  const bFit = largest(1, b - 1, (x) => fits(x, t));
  const tFit = roundDown(largest(1, t - 1, (x) => fits(b, x))); // a multiple of 8 reads better, and fits too
  const base = e.weights * (1 + (e.overhead ? HEAP_OVERHEAD.weights : 0)) + e.optimizer + e.process;
  const weightsTooBig = base >= target || (bFit === null && tFit === null && !fits(1, Math.min(t, 64)));
  const scoresHeavy = e.quadratic > e.activations / 2;
  let path: string[];
  let hint: string;
  let fix: Fix | undefined;
  const at = (o: { batch?: number; length?: number }) => formatBytes(estimateMemory(config, m, l.backend, o)!.total);
  if (weightsTooBig) {
    path = ['model'];
    const packed = e.packed ? ` (${formatBytes(e.packed)} of them wasm's packed copies)` : '';
    const gpu = l.backend === 'wasm' || l.backend === 'cpu' ? ', or a GPU (device: cuda or webgpu)' : '';
    hint = `The weights alone need ${formatBytes(e.weights)}${packed}: use a smaller model${gpu}.`;
  } else if (bFit !== null && !(scoresHeavy && written(LENGTH) && tFit !== null)) {
    path = BATCH;
    // batch_size ÷ k with gradient_accumulation_steps × k keeps the effective batch exactly, for k dividing it.
    let k = Math.ceil(b / bFit);
    while (b % k) k++;
    const exact = b / k >= bFit / 2;
    const [batch, steps] = exact ? [b / k, g * k] : [bFit, g * Math.ceil(b / bFit)];
    hint =
      `batch_size ${batch} fits (≈ ${at({ batch })}); set gradient_accumulation_steps to ${steps} to keep the ` +
      `effective batch ${exact ? '' : 'near '}${b * g}${tFit !== null ? `, or lower max_length to ${tFit}` : ''}.`;
    fix = setOrAdd(written, BATCH, batch, `Set batch_size to ${batch}`);
  } else {
    path = LENGTH;
    hint =
      tFit !== null
        ? `max_length ${tFit} fits (≈ ${at({ length: tFit })})${bFit !== null ? `, or batch_size ${bFit}` : ''}.`
        : 'Lower max_length and batch_size.';
    if (tFit !== null) fix = setOrAdd(written, LENGTH, tFit, `Set max_length to ${tFit}`);
  }
  // Classification batches are padded to their longest example: this is the worst case, which max_length bounds.
  if (config.task === 'sequence-classification' && !weightsTooBig)
    hint += " Batches are as long as their longest example, so a max_length near the data's longest costs nothing.";
  return problem({
    severity,
    code: 'config/memory-too-large',
    message:
      `this config needs ≈ ${formatBytes(e.total)} on ${l.backend}${l.auto ? ` (${l.auto})` : ''} ` +
      `for batch_size ${b} × max_length ${t} (${describeParts(e)}), ${limitWords}`,
    path,
    at: path.length === 1 || written(path) ? 'value' : 'parent',
    hint,
    ...(fix ? { fix } : {}),
  });
}

function roundDown(x: number | null): number | null {
  return x !== null && x >= 16 ? x - (x % 8) : x;
}

/** The largest x in [lo, hi] with ok(x), for ok monotone (true up to some x); null when none. */
function largest(lo: number, hi: number, ok: (x: number) => boolean): number | null {
  if (hi < lo || !ok(lo)) return null;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function setOrAdd(written: Written, path: string[], value: number, title: string): Fix {
  return written(path) ? { kind: 'setValue', title, value } : addKeyFix(title, path, value);
}
