// PEFT adapter folders: `adapter_config.json` + `adapter_model.safetensors`, as Python PEFT writes and reads them,
// so an adapter trained here loads with `PeftModel.from_pretrained(base, dir)` and the other way round.
//   base_model.model.<module>.lora_A.weight   [r, in]
//   base_model.model.<module>.lora_B.weight   [out, r]
//   base_model.model.<param path>             modules_to_save (PEFT strips `modules_to_save.<adapter>.` on save)
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';
import { writeJsonAtomic } from './files';
import { readLoraPlus, withoutNonPeftKeys, writeLoraPlus, type LoraPlusSettings } from './loraplus-file';
import { countNonFinite, readSafetensors, storedDtype, writeSafetensors, type HostTensor } from './safetensors';

export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
const PREFIX = 'base_model.model.';

export interface AdapterConfig {
  peft_type: 'LORA';
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  target_modules: string[] | string; // a list of module-name suffixes, or one regex matched against the full name
  use_rslora: boolean;
  modules_to_save: string[] | null;
  base_model_name_or_path: string | null;
  task_type: string | null;
  bias: 'none';
  fan_in_fan_out: boolean; // true for GPT-2's Conv1D; lora_A/lora_B keep their [r, in]/[out, r] shapes either way
  init_lora_weights: boolean | string; // PEFT also allows 'gaussian', 'pissa', ...; irrelevant once trained
  inference_mode: boolean;
  rank_pattern?: Record<string, number>; // module regex → r, overriding `r`
  alpha_pattern?: Record<string, number>; // module regex → lora_alpha
  revision?: string | null;
  [k: string]: unknown;
}

export interface LoraPair {
  A: HostTensor; // [r, in]
  B: HostTensor; // [out, r]
}

export interface AdapterWeights {
  lora: Map<string, LoraPair>; // module path, e.g. `model.layers.0.self_attn.q_proj`
  modulesToSave: Map<string, HostTensor>; // parameter path, e.g. `score.weight`, `classifier.bias`
  file?: string; // the file they were read from, for errors found later (shapes against the model)
}

/** `allowNonFinite`: keep NaN/Inf weights (merge, whose check names them and whose --force writes them anyway). */
export interface LoadOptions {
  allowNonFinite?: boolean;
}

export interface Adapter extends AdapterWeights {
  config: AdapterConfig; // PEFT's LoraConfig fields only
  loraplus?: LoraPlusSettings | null; // how it was trained: loraplus.json beside adapter_config.json
}

// Every field PEFT's LoraConfig writes, at its defaults, so Python reads our files without surprises.
const PEFT_DEFAULTS: Record<string, unknown> = {
  alpha_pattern: {},
  auto_mapping: null,
  base_model_name_or_path: null,
  bias: 'none',
  exclude_modules: null,
  fan_in_fan_out: false,
  inference_mode: false,
  init_lora_weights: true,
  layer_replication: null,
  layers_pattern: null,
  layers_to_transform: null,
  loftq_config: {},
  lora_alpha: 8,
  lora_bias: false,
  lora_dropout: 0,
  megatron_config: null,
  megatron_core: 'megatron.core',
  modules_to_save: null,
  peft_type: 'LORA',
  r: 8,
  rank_pattern: {},
  revision: null,
  target_modules: null,
  task_type: null,
  use_dora: false,
  use_rslora: false,
};

/** PEFT's scaling: alpha / r, or alpha / √r with rsLoRA. */
export function loraScaling(cfg: { r: number; lora_alpha: number; use_rslora: boolean }): number {
  return cfg.use_rslora ? cfg.lora_alpha / Math.sqrt(cfg.r) : cfg.lora_alpha / cfg.r;
}

/** r and lora_alpha for one module, after rank_pattern / alpha_pattern (PEFT's `get_pattern_key`). */
export function moduleLoraParams(
  cfg: AdapterConfig,
  module: string,
): { r: number; lora_alpha: number; use_rslora: boolean } {
  return {
    r: patternValue(cfg.rank_pattern, module) ?? cfg.r,
    lora_alpha: patternValue(cfg.alpha_pattern, module) ?? cfg.lora_alpha,
    use_rslora: cfg.use_rslora,
  };
}

/**
 * PEFT's modules_to_save matching (`_set_trainable`): a module is trained in full when its path ends with an entry,
 * as a plain string suffix (so `classifier` also takes DistilBERT's `pre_classifier`, as in PEFT), and so is every
 * module inside it (`classifier` takes RoBERTa's classifier.dense and classifier.out_proj).
 */
export function inModulesToSave(modulePath: string, entries: readonly string[]): boolean {
  const parts = modulePath.split('.');
  for (let i = 1; i <= parts.length; i++) {
    const ancestor = parts.slice(0, i).join('.');
    if (entries.some((e) => ancestor.endsWith(e))) return true;
  }
  return false;
}

/**
 * transformers' Conv1D modules (GPT-2's c_attn, c_proj, c_fc), whose weights are stored [in, out]. PEFT marks an
 * adapter on them `fan_in_fan_out: true` (LoraModel sets it when it wraps a Conv1D); lora_A [r, in] and lora_B
 * [out, r] and the forward are the same either way, only a merge adds (B·A)ᵀ. Names, not layer types, because this
 * layer does not see the model; no other family registered here has Linears of these names.
 */
export const CONV1D_MODULES: readonly string[] = ['c_attn', 'c_proj', 'c_fc'];

/** True when a target list names a Conv1D module, as PEFT's saved config then says. */
function targetsConv1d(targets: string[] | string | null | undefined): boolean {
  return Array.isArray(targets) && targets.some((t) => CONV1D_MODULES.includes(t.slice(t.lastIndexOf('.') + 1)));
}

/** A complete config from the fields that matter; the rest take PEFT's defaults (fan_in_fan_out: from the targets). */
export function makeAdapterConfig(
  fields: Pick<AdapterConfig, 'r' | 'lora_alpha' | 'target_modules'> & Partial<AdapterConfig>,
): AdapterConfig {
  return normalizeConfig({ ...PEFT_DEFAULTS, fan_in_fan_out: targetsConv1d(fields.target_modules), ...fields });
}

// ---- saving -----------------------------------------------------------------------------------------------------

export function saveAdapter(dir: string, adapter: Adapter): void {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_FILE);
  // PEFT's save_pretrained writes inference_mode: true whatever the training state.
  const fields = { ...PEFT_DEFAULTS, ...withoutNonPeftKeys(adapter.config), inference_mode: true };
  const config = normalizeConfig(fields, configFile);
  checkAgainstConfig(config, adapter, weightsFile);

  const tensors = new Map<string, HostTensor>();
  for (const [module, { A, B }] of adapter.lora) {
    tensors.set(`${PREFIX}${module}.lora_A.weight`, A);
    tensors.set(`${PREFIX}${module}.lora_B.weight`, B);
  }
  for (const [param, t] of adapter.modulesToSave) {
    const key = `${PREFIX}${param}`;
    if (tensors.has(key)) throw badKey(`modules_to_save parameter '${param}' collides with a LoRA weight`, weightsFile);
    tensors.set(key, t);
  }
  // Weights first: a folder with a config is a finished adapter.
  writeSafetensors(weightsFile, tensors, { format: 'pt' });
  if (adapter.loraplus) writeLoraPlus(dir, adapter.loraplus);
  writeJsonAtomic(configFile, sortKeys(config)); // PEFT writes json.dumps(indent=2, sort_keys=True)
}

// ---- loading ----------------------------------------------------------------------------------------------------

export function loadAdapter(dir: string, opts: LoadOptions = {}): Adapter {
  const configFile = join(dir, ADAPTER_CONFIG_FILE);
  const weightsFile = join(dir, ADAPTER_WEIGHTS_FILE);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new LoraPlusError({
      code: 'adapter/not-found',
      message: 'adapter folder not found',
      file: dir,
      hint: `An adapter folder holds ${ADAPTER_CONFIG_FILE} and ${ADAPTER_WEIGHTS_FILE}; check the path.`,
    });
  }
  if (!existsSync(configFile)) {
    const isModel = existsSync(join(dir, 'config.json'));
    throw new LoraPlusError({
      code: 'adapter/not-found',
      message: `no ${ADAPTER_CONFIG_FILE} in the adapter folder`,
      file: dir,
      hint: isModel
        ? 'This looks like a full model folder: use it as the base model, not as an adapter.'
        : 'Point at a folder written by PEFT save_pretrained or by a LoRA+ Studio run.',
    });
  }
  if (!existsSync(weightsFile)) {
    const bin = existsSync(join(dir, 'adapter_model.bin'));
    throw new LoraPlusError({
      code: bin ? 'adapter/pytorch-format' : 'adapter/not-found',
      message: bin ? 'found adapter_model.bin but no adapter_model.safetensors' : `no ${ADAPTER_WEIGHTS_FILE}`,
      file: dir,
      hint: bin
        ? 'Convert it in Python: `PeftModel.from_pretrained(base, dir).save_pretrained(dir, safe_serialization=True)`.'
        : 'The adapter was not saved completely: save it again.',
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(configFile, 'utf8'));
  } catch (err) {
    throw badConfig(`not valid JSON (${(err as Error).message})`, configFile);
  }
  const config = normalizeConfig(raw, configFile, { allowNullTargets: true });
  const weights = adapterWeightsFromSafetensors(readSafetensors(weightsFile).tensors, weightsFile, opts);
  // Hand-written configs may lack target_modules: fall back to the module names the weights hold.
  config.target_modules ??= [...new Set([...weights.lora.keys()].map((m) => m.slice(m.lastIndexOf('.') + 1)))].sort();
  checkAgainstConfig(config, weights, weightsFile);
  return { config: withoutNonPeftKeys(config), loraplus: readLoraPlus(dir, config), ...weights };
}

/** Split PEFT-named tensors into LoRA pairs and modules_to_save parameters. Accepts keys with or without the
 *  `base_model.model.` prefix, with or without the adapter name (`lora_A.default.weight`), and
 *  `X.modules_to_save.default.weight`, so files from any PEFT version (or a bare head file) load. */
export function adapterWeightsFromSafetensors(
  tensors: Map<string, HostTensor>,
  file: string,
  opts: LoadOptions = {},
): AdapterWeights {
  const halves = new Map<string, Partial<LoraPair>>();
  const modulesToSave = new Map<string, HostTensor>();
  const origin = new Map<string, string>(); // canonical name → file key, to report duplicates
  const claim = (name: string, key: string): void => {
    if (origin.has(name)) throw badKey(`tensors '${origin.get(name)}' and '${key}' are the same weight`, file);
    origin.set(name, key);
  };
  for (const [key, t] of tensors) {
    if (t.dtype !== 'float32') {
      throw new LoraPlusError({
        code: 'adapter/bad-dtype',
        message: `tensor '${key}' is stored as ${storedDtype(t) ?? 'an integer dtype'}, but adapter weights are floats`,
        file,
        hint: 'The file is damaged or was converted wrongly: save the adapter again (float32, float16 or bfloat16).',
      });
    }
    const bad = opts.allowNonFinite ? 0 : countNonFinite(t.data);
    if (bad) {
      throw new LoraPlusError({
        code: 'adapter/non-finite',
        message: `tensor '${key}' holds ${bad} NaN/Inf value${bad > 1 ? 's' : ''} (of ${t.data.length})`,
        file,
        hint: 'The adapter was saved after training diverged, or is damaged: use an earlier checkpoint.',
      });
    }
    const path = key.startsWith(PREFIX) ? key.slice(PREFIX.length) : key;
    const lora = /^(.+)\.lora_([AB])(?:\.[^.]+)?\.weight$/.exec(path);
    if (lora) {
      const [, module, which] = lora as unknown as [string, string, 'A' | 'B'];
      claim(`${module}.lora_${which}`, key);
      if (t.shape.length !== 2) throw shapeError(`tensor '${key}' must be a 2-D float tensor, got [${t.shape}]`, file);
      halves.set(module, { ...halves.get(module), [which]: t });
      continue;
    }
    if (path.split('.').some((seg) => seg.startsWith('lora_'))) {
      throw new LoraPlusError({
        code: 'adapter/unsupported',
        file,
        message: `tensor '${key}' is a kind of LoRA weight not supported here (embedding LoRA, DoRA or LoRA bias)`,
        hint: 'Use plain LoRA on linear layers (use_dora=False, lora_bias=False, no embedding targets).',
      });
    }
    const param = path.replace(/\.modules_to_save\.[^.]+\./, '.');
    if (param.includes('.original_module.')) {
      throw badKey(`tensor '${key}' is a base-model weight, not adapter state`, file);
    }
    claim(param, key);
    modulesToSave.set(param, t);
  }

  const lora = new Map<string, LoraPair>();
  for (const [module, { A, B }] of halves) {
    if (!A || !B) {
      throw new LoraPlusError({
        code: 'adapter/incomplete',
        file,
        message: `module '${module}' has lora_${A ? 'A' : 'B'} but no ${PREFIX}${module}.lora_${A ? 'B' : 'A'}.weight`,
        hint: 'The adapter file is incomplete: save it again.',
      });
    }
    if (A.shape[0] !== B.shape[1]) {
      throw shapeError(
        `module '${module}': lora_A is [${A.shape}] and lora_B is [${B.shape}]; ` +
          'expected A [r, in] and B [out, r] with the same r',
        file,
      );
    }
    lora.set(module, { A, B });
  }
  return { lora, modulesToSave, file };
}

// ---- validation -------------------------------------------------------------------------------------------------

function normalizeConfig(raw: unknown, file?: string, opts: { allowNullTargets?: boolean } = {}): AdapterConfig {
  if (!isObject(raw)) throw badConfig('not a JSON object', file);
  const c = { ...PEFT_DEFAULTS, ...raw };
  const unsupported = (message: string, hint: string): LoraPlusError =>
    new LoraPlusError({ code: 'adapter/unsupported', message, file, hint });
  if (c.peft_type !== 'LORA') {
    throw unsupported(
      `peft_type is ${JSON.stringify(c.peft_type)}; only LORA adapters are supported`,
      'Train or convert the adapter with PEFT LoraConfig.',
    );
  }
  if (!Number.isInteger(c.r) || (c.r as number) <= 0) {
    throw badConfig(`r must be a positive integer, got ${fmt(c.r)}`, file);
  }
  if (!isFiniteNumber(c.lora_alpha)) throw badConfig(`lora_alpha must be a number, got ${fmt(c.lora_alpha)}`, file);
  if (!isFiniteNumber(c.lora_dropout) || c.lora_dropout < 0 || c.lora_dropout >= 1) {
    throw badConfig(`lora_dropout must be in [0, 1), got ${fmt(c.lora_dropout)}`, file);
  }
  const tm = c.target_modules;
  const namesOk = Array.isArray(tm) && tm.length > 0 && tm.every((s) => typeof s === 'string');
  if (!(typeof tm === 'string' || namesOk || (tm == null && opts.allowNullTargets))) {
    throw badConfig(`target_modules must be a regex string or a non-empty list of names, got ${fmt(tm)}`, file);
  }
  const mts = c.modules_to_save;
  if (!(mts === null || (Array.isArray(mts) && mts.every((s) => typeof s === 'string')))) {
    throw badConfig(`modules_to_save must be null or a list of module names, got ${fmt(mts)}`, file);
  }
  for (const flag of ['use_rslora', 'fan_in_fan_out', 'inference_mode', 'use_dora', 'lora_bias']) {
    if (typeof c[flag] !== 'boolean') throw badConfig(`${flag} must be true or false, got ${fmt(c[flag])}`, file);
  }
  for (const pattern of ['rank_pattern', 'alpha_pattern']) {
    c[pattern] ??= {};
    if (!isObject(c[pattern]) || !Object.values(c[pattern]).every(isFiniteNumber)) {
      throw badConfig(`${pattern} must map module patterns to numbers, got ${fmt(c[pattern])}`, file);
    }
  }
  // A rank of 0, -1 or 2.5 would give scaling alpha/r = ∞ or NaN, and no tensor could have that shape.
  for (const [key, r] of Object.entries(c.rank_pattern as Record<string, number>)) {
    if (!Number.isInteger(r) || r <= 0)
      throw badConfig(`rank_pattern['${key}'] must be a positive integer, got ${r}`, file);
  }
  if (c.bias !== 'none') {
    throw unsupported(`bias is ${fmt(c.bias)}: training base-model biases is not supported`, 'Use bias="none".');
  }
  if (c.use_dora) throw unsupported('use_dora is true: DoRA adapters are not supported', 'Use plain LoRA.');
  if (c.lora_bias) throw unsupported('lora_bias is true: LoRA biases are not supported', 'Use lora_bias=False.');
  if (c.layer_replication != null) {
    throw unsupported('layer_replication (stacked copies of layers) is not supported', 'Remove layer_replication.');
  }
  return c as AdapterConfig;
}

// Shapes against config.r / rank_pattern, and every non-LoRA tensor against modules_to_save.
function checkAgainstConfig(config: AdapterConfig, weights: AdapterWeights, file: string): void {
  if (weights.lora.size === 0 && weights.modulesToSave.size === 0) {
    throw new LoraPlusError({
      code: 'adapter/incomplete',
      message: 'the adapter holds no weights',
      file,
      hint: 'Save the adapter again after training.',
    });
  }
  for (const [module, { A, B }] of weights.lora) {
    for (const t of [A, B]) {
      if (t.dtype !== 'float32' || t.shape.length !== 2) {
        throw shapeError(`module '${module}': LoRA weights must be 2-D float, got ${t.dtype} [${t.shape}]`, file);
      }
    }
    const { r } = moduleLoraParams(config, module);
    if (A.shape[0] !== r || B.shape[1] !== r) {
      throw shapeError(
        `module '${module}': lora_A is [${A.shape}] and lora_B is [${B.shape}], but r is ${r} ` +
          '(expected A [r, in], B [out, r])',
        file,
      );
    }
  }
  // PEFT's sequence-classification models always save their head, under these names.
  const saved = [...(config.modules_to_save ?? []), ...(config.task_type === 'SEQ_CLS' ? ['classifier', 'score'] : [])];
  for (const param of weights.modulesToSave.keys()) {
    const module = param.includes('.') ? param.slice(0, param.lastIndexOf('.')) : param;
    if (!inModulesToSave(module, saved)) {
      throw badKey(
        `tensor '${param}' is neither a LoRA weight nor part of modules_to_save ` +
          `(${saved.length ? saved.join(', ') : 'none'})`,
        file,
        'Add its module to modules_to_save in adapter_config.json, or remove the tensor.',
      );
    }
  }
}

// PEFT's get_pattern_key: a pattern matches the exact name or, as a regex, the name's tail after a dot.
export function patternValue(pattern: Record<string, number> | undefined, module: string): number | undefined {
  for (const [key, value] of Object.entries(pattern ?? {})) {
    if (key === module) return value;
    try {
      if (new RegExp(`^(.*\\.)?(${key})$`).test(module)) return value;
    } catch {
      // not a valid JS regex: only the exact match above applies
    }
  }
  return undefined;
}

// ---- helpers ----------------------------------------------------------------------------------------------------

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (!isObject(value)) return value;
  return Object.fromEntries(
    Object.keys(value)
      .sort()
      .map((k) => [k, sortKeys(value[k])]),
  );
}

const badConfig = (message: string, file?: string): LoraPlusError =>
  new LoraPlusError({
    code: 'adapter/bad-config',
    message: file ? message : `${ADAPTER_CONFIG_FILE}: ${message}`,
    file,
    hint: 'Fix the field, or save the adapter again with PEFT or LoRA+ Studio.',
  });

const badKey = (message: string, file: string, hint = 'Save the adapter again with PEFT or LoRA+ Studio.') =>
  new LoraPlusError({ code: 'adapter/unknown-key', message, file, hint });

const shapeError = (message: string, file: string): LoraPlusError =>
  new LoraPlusError({
    code: 'adapter/shape-mismatch',
    message,
    file,
    hint: 'The weights do not match adapter_config.json: check r and rank_pattern, or save the adapter again.',
  });

const fmt = (v: unknown): string => JSON.stringify(v) ?? String(v);
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
