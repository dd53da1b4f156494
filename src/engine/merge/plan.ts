// What the merged checkpoint holds, tensor by tensor: every adapted weight as W + scaling·B·A under the base
// checkpoint's own key and dtype (PEFT module names such as `model.layers.0.self_attn.q_proj` are mapped back to the
// file's key, which may lack the `model.` / `transformer.` / `bert.` prefix), modules_to_save (a trained head) under
// the key transformers expects, everything else byte for byte. Plus config.json for the merged architecture.
import * as path from 'node:path';
import { mergeWeight } from '../../adapters/merge';
import { loraScaling, moduleLoraParams, type Adapter } from '../../adapters/peft';
import type { HostTensor } from '../../adapters/safetensors';
import { LAYOUTS } from '../../models/layouts';
import type { HFConfig, Model, Task } from '../../models/types';
import { LoraPlusError } from '../../protocol/errors';
import type { OutDtype } from '../../protocol/merge';
import { countNonFinite } from './check';
import { decodeFloats, encodeFloats, isFloatDtype, readStoredBytes, type OutTensor, type StoredTensor } from './write';
import type { ModelFolder } from '../train/inputs';

export interface MergePlan {
  tensors: OutTensor[];
  merged: string[]; // output keys of the adapted weights
  added: string[]; // output keys the base checkpoint did not have (a new head)
  replaced: string[]; // base keys overwritten by modules_to_save
  rekeyed: boolean; // base keys written with their model prefix (a head was added to a bare checkpoint)
  nonfinite: string[]; // filled while the tensors are written: merged tensors with NaN/Inf
}

/** The module-path name the engine gives a checkpoint key (`h.0.attn.c_attn.weight` → `transformer.h.0…`). */
export function keyNormalizer(folder: ModelFolder): (key: string) => string {
  const layout = LAYOUTS[folder.family.name];
  return layout ? layout.keyRenamer(folder.config, path.join(folder.dir, 'config.json')) : (k) => k;
}

export function planMergedTensors(
  folder: ModelFolder,
  stored: StoredTensor[],
  adapter: Adapter,
  model: Model,
  dtype: OutDtype,
): MergePlan {
  const normalize = keyNormalizer(folder);
  const byName = new Map<string, StoredTensor>(); // normalized name → stored tensor
  for (const t of stored) byName.set(normalize(t.key), t);
  const plan: MergePlan = { tensors: [], merged: [], added: [], replaced: [], rekeyed: false, nonfinite: [] };
  const outDtype = (d: string) => (dtype === 'float32' && isFloatDtype(d) ? 'F32' : d);

  // Sources by normalized name: the adapted weights, then modules_to_save, then the rest as stored.
  const lora = new Map<string, string>(); // normalized weight name → module
  for (const module of adapter.lora.keys()) {
    const name = `${module}.weight`;
    if (!byName.has(name)) {
      const tied = module === 'lm_head' || module.endsWith('.lm_head');
      throw new LoraPlusError({
        code: tied ? 'merge/tied-head' : 'merge/missing-weight',
        message: tied
          ? `the adapter trains LoRA on '${module}', which this checkpoint ties to the token embedding ` +
            `(it has no ${name}); merging it would untie the head`
          : `the adapter has LoRA weights for '${module}', but the base checkpoint has no weight for it`,
        file: folder.dir,
        hint: tied
          ? 'Use the adapter with the base model unmerged (loraplus generate --adapter), ' +
            'or train without lm_head in target_modules.'
          : 'Use the base model the adapter was trained on (--base).',
      });
    }
    lora.set(name, module);
  }
  const newNames = [...adapter.modulesToSave.keys()].filter((p) => !byName.has(p));
  // transformers cannot load a head next to the bare keys of a base-model checkpoint (`h.0…` with `score.weight`):
  // then every key is written with its model prefix, as save_pretrained of the full model would.
  plan.rekeyed =
    newNames.length > 0 && stored.some((t) => normalize(t.key) !== t.key && normalize(t.key).endsWith(`.${t.key}`));
  const keyOf = (t: StoredTensor) => (plan.rekeyed ? normalize(t.key) : t.key);

  for (const t of stored) {
    const name = normalize(t.key);
    const module = lora.get(name);
    const head = adapter.modulesToSave.get(name);
    if (module) {
      const key = keyOf(t);
      plan.merged.push(key);
      plan.tensors.push(mergedTensor(key, t, outDtype(t.dtype), adapter, module, model, plan));
    } else if (head) {
      const key = keyOf(t);
      plan.replaced.push(key);
      plan.tensors.push(hostTensor(key, head, outDtype(t.dtype), plan));
    } else {
      const od = outDtype(t.dtype);
      const n = t.shape.reduce((a, b) => a * b, 1);
      plan.tensors.push(
        od === t.dtype
          ? {
              key: keyOf(t),
              dtype: t.dtype,
              shape: t.shape,
              byteLength: t.end - t.begin,
              bytes: () => readStoredBytes(t),
            }
          : {
              key: keyOf(t),
              dtype: od,
              shape: t.shape,
              byteLength: 4 * n,
              bytes: () => encodeFloats(od, decodeFloats(t.dtype, readStoredBytes(t))),
            },
      );
    }
  }
  // New parameters (a fresh head): the dtype of the checkpoint's floats, under the module-path name.
  const floatDtype = outDtype(stored.find((t) => isFloatDtype(t.dtype))?.dtype ?? 'F32');
  for (const name of newNames) {
    plan.added.push(name);
    plan.tensors.push(hostTensor(name, adapter.modulesToSave.get(name)!, floatDtype, plan));
  }
  return plan;
}

// W + scaling·B·A in W's layout (Conv1D: [in, out]), rounded once to the output dtype.
function mergedTensor(
  key: string,
  t: StoredTensor,
  dtype: string,
  adapter: Adapter,
  module: string,
  model: Model,
  plan: MergePlan,
): OutTensor {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return {
    key,
    dtype,
    shape: t.shape,
    byteLength: n * bytesOf(dtype),
    bytes: () => {
      const w: HostTensor = { dtype: 'float32', shape: t.shape, data: decodeFloats(t.dtype, readStoredBytes(t)) };
      const { A, B } = adapter.lora.get(module)!;
      const scaling = loraScaling(moduleLoraParams(adapter.config, module));
      const merged = mergeWeight(w, A, B, scaling, model.linears.get(module)?.fanInFanOut ?? false);
      if (countNonFinite(merged.data)) plan.nonfinite.push(key);
      return encodeFloats(dtype, merged.data as Float32Array);
    },
  };
}

function hostTensor(key: string, h: HostTensor, dtype: string, plan: MergePlan): OutTensor {
  const n = h.shape.reduce((a, b) => a * b, 1);
  return {
    key,
    dtype,
    shape: h.shape,
    byteLength: n * bytesOf(dtype),
    bytes: () => {
      if (countNonFinite(h.data)) plan.nonfinite.push(key);
      return encodeFloats(dtype, h.data as Float32Array);
    },
  };
}

function bytesOf(dtype: string): number {
  return { F32: 4, F16: 2, BF16: 2, F64: 8 }[dtype] ?? 4;
}

// ---- config.json ------------------------------------------------------------------------------------------------

const HEADS = [
  'ForCausalLM',
  'LMHeadModel',
  'ForMaskedLM',
  'ForSequenceClassification',
  'ForPreTraining',
  'ForTokenClassification',
  'ForQuestionAnswering',
  'Model',
];
const HEAD_SUFFIX = new RegExp(`(${HEADS.join('|')})$`);
const CLASS_PREFIX: Record<string, string> = {
  llama: 'Llama',
  mistral: 'Mistral',
  qwen2: 'Qwen2',
  qwen3: 'Qwen3',
  phi3: 'Phi3',
  gpt2: 'GPT2',
  bert: 'Bert',
  roberta: 'Roberta',
  'xlm-roberta': 'XLMRoberta',
  distilbert: 'DistilBert',
};
// Where the classifier's class is not the causal LM's prefix + ForSequenceClassification.
const SEQ_CLS_CLASS: Record<string, string> = {
  gemma3_text: 'Gemma3TextForSequenceClassification',
  gemma3: 'Gemma3ForSequenceClassification',
};

/** config.json of the merged model: the classification architecture and labels when a head was merged in. */
export function mergedConfig(
  base: HFConfig,
  o: { task: Task; labels: string[] | null; numLabels: number; padId: number; decoder: boolean; dtype: OutDtype },
): HFConfig {
  const config: HFConfig = { ...base };
  if (o.task === 'sequence-classification') {
    const arch = base.architectures?.[0];
    const prefix =
      arch && HEAD_SUFFIX.test(arch)
        ? arch.replace(HEAD_SUFFIX, '')
        : (CLASS_PREFIX[String(base.model_type)] ?? 'Auto');
    config.architectures = [SEQ_CLS_CLASS[String(base.model_type)] ?? `${prefix}ForSequenceClassification`];
    const names =
      o.labels && o.labels.length === o.numLabels
        ? o.labels
        : (sameCount(base.id2label, o.numLabels) ?? Array.from({ length: o.numLabels }, (_, i) => `LABEL_${i}`));
    config.id2label = Object.fromEntries(names.map((n, i) => [String(i), n]));
    config.label2id = Object.fromEntries(names.map((n, i) => [n, i]));
    delete config.num_labels; // transformers derives it from id2label
    // Decoder classifiers read the last non-padding token, found with pad_token_id: without it batches fail.
    if (o.decoder && typeof config.pad_token_id !== 'number') config.pad_token_id = o.padId;
  }
  if (o.dtype === 'float32') config.torch_dtype = 'float32';
  return config;
}

function sameCount(id2label: unknown, n: number): string[] | null {
  if (!id2label || typeof id2label !== 'object') return null;
  const names = Object.entries(id2label as Record<string, unknown>)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([, v]) => String(v));
  return names.length === n ? names : null;
}
