// What a run trains: LoRA pairs on the target modules and the fully trained modules_to_save (e.g. a fresh
// classification head). This object owns every trainable tf.Variable and disposes them.
import * as tf from '@tensorflow/tfjs';
import { LoraModule, frozenW, initLoraWeights, type TrainableLinear } from '../../adapters/lora';
import {
  inModulesToSave,
  loraScaling,
  makeAdapterConfig,
  patternValue,
  type Adapter,
  type AdapterWeights,
} from '../../adapters/peft';
import type { HostTensor } from '../../adapters/safetensors';
import { LoraPlusError } from '../../protocol/errors';
import type { Family } from '../../models/registry';
import type { Adapters, Model } from '../../models/types';
import type { Trainable } from './optimizer';

export interface LoraSettings {
  r: number;
  lora_alpha: number;
  lora_dropout: number;
  use_rslora: boolean;
  // suffixes, 'all-linear', a regex (PEFT: a string is a full-match regex), or null: the family default
  target_modules: string[] | string | null;
  modules_to_save: string[] | null; // module names (PEFT's suffix matching); null: the task head when the task has one
  alpha_pattern?: Record<string, number>; // a saved adapter's per-module lora_alpha (PEFT's get_pattern_key)
}

/** PEFT's matching: a list entry matches a module named exactly that or ending in `.<entry>`; a string is a regex. */
export function resolveTargets(
  model: Model,
  family: Family,
  targets: string[] | string | null,
  exclude: string[],
): string[] {
  const names = [...model.linears.keys()].filter((n) => !exclude.includes(n));
  let picked: string[];
  if (targets === 'all-linear') picked = names.filter((n) => !family.outputHeads.includes(n));
  else if (typeof targets === 'string') picked = names.filter((n) => new RegExp(`^(?:${targets})$`).test(n));
  else {
    const list = targets ?? family.defaultTargets;
    picked = names.filter((n) => list.some((t) => n === t || n.endsWith(`.${t}`)));
    const unmatched = list.filter((t) => !names.some((n) => n === t || n.endsWith(`.${t}`)));
    if (unmatched.length) throw noSuchModule(unmatched, names);
  }
  if (!picked.length) throw noSuchModule([String(targets)], names);
  return picked;
}

function noSuchModule(wanted: string[], names: string[]): LoraPlusError {
  const suffixes = [...new Set(names.map((n) => n.split('.').pop()!))].join(', ');
  return new LoraPlusError({
    code: 'config/unknown-module',
    message: `no Linear module of this model matches ${wanted.map((w) => `'${w}'`).join(', ')}`,
    yamlPath: 'lora.target_modules',
    hint: `This model's Linear layers are: ${suffixes} (or use all-linear).`,
  });
}

export class Trainables implements Adapters {
  readonly lora = new Map<string, LoraModule>();
  readonly trainable = new Map<string, TrainableLinear>();
  /** modules_to_save whose checkpoint layout is [in, out] (GPT-2's Conv1D): trained as [out, in], saved as PEFT
   *  stores them. */
  private readonly fanInFanOut = new Set<string>();
  dropoutSeed: number | null = null;
  /** The modules_to_save entries as configured (e.g. `classifier`), written back to adapter_config.json. */
  private readonly saveList: string[];

  constructor(
    model: Model,
    readonly settings: LoraSettings,
    family: Family,
    uniform: () => number,
    init: AdapterWeights | null,
  ) {
    const saveList = (this.saveList = settings.modules_to_save ?? (model.head ? [model.head] : []));
    // Every Linear in a listed module: `classifier` trains RoBERTa's classifier.dense and classifier.out_proj.
    const full = [...model.linears.keys()].filter((n) => inModulesToSave(n, saveList));
    const missing = saveList.filter((s) => !full.some((n) => inModulesToSave(n, [s])));
    if (missing.length)
      throw new LoraPlusError({
        code: 'config/unknown-module',
        message: `modules_to_save names no Linear of this model: ${missing.join(', ')}`,
        yamlPath: 'lora.modules_to_save',
      });
    if (init) checkAgainstModel(model, init, full); // before any variable exists, so a failure leaks none
    for (const path of full) {
      const base = model.linears.get(path)!;
      if (base.fanInFanOut) this.fanInFanOut.add(path);
      const stored = init?.modulesToSave;
      const w = stored?.get(`${path}.weight`);
      const b = stored?.get(`${path}.bias`);
      this.trainable.set(path, {
        w: ownedVariable(
          w ? this.fromSaved(path, hostToTensor(w) as tf.Tensor2D) : frozenW(base),
        ) as tf.Variable<tf.Rank.R2>,
        bias:
          base.bias || b
            ? (ownedVariable(b ? hostToTensor(b) : tf.clone(base.bias!)) as tf.Variable<tf.Rank.R1>)
            : null,
      });
    }

    const targets = init ? [...init.lora.keys()] : resolveTargets(model, family, settings.target_modules, full);
    for (const path of targets) {
      const base = model.linears.get(path)!; // resolved, or checked against the model above
      const pair = init?.lora.get(path);
      const { A, B } = pair
        ? { A: hostToTensor(pair.A), B: hostToTensor(pair.B) }
        : initLoraWeights(settings.r, base.inFeatures, base.outFeatures, uniform);
      const r = A.shape[0];
      // A saved adapter's alpha_pattern sets its scaling per module (fromAdapter); r comes from the tensors' shapes.
      const alpha = patternValue(settings.alpha_pattern, path) ?? settings.lora_alpha;
      this.lora.set(
        path,
        new LoraModule(path, A, B, loraScaling({ ...settings, r, lora_alpha: alpha }), settings.lora_dropout),
      );
      tf.dispose([A, B]);
    }
  }

  /**
   * A saved PEFT adapter applied to `model` (its own r, alpha and modules decide; nothing is initialised). The fully
   * trained modules are those the file holds weights for (PEFT's DistilBERT adapters hold pre_classifier too).
   */
  static fromAdapter(model: Model, family: Family, adapter: Adapter): Trainables {
    const saved = [...new Set([...adapter.modulesToSave.keys()].map((p) => p.slice(0, p.lastIndexOf('.'))))];
    return new Trainables(
      model,
      { ...adapter.config, target_modules: null, modules_to_save: saved },
      family,
      Math.random,
      adapter,
    );
  }

  /** Every trainable tensor with its PEFT name, in a stable order (LoRA modules, then modules_to_save). */
  params(): Trainable[] {
    const out: Trainable[] = [];
    for (const l of this.lora.values()) {
      out.push(
        { name: `${l.module}.lora_A.weight`, variable: l.A, embedding: false },
        { name: `${l.module}.lora_B.weight`, variable: l.B, embedding: false },
      );
    }
    for (const [path, t] of this.trainable) {
      out.push({ name: `${path}.weight`, variable: t.w, embedding: false });
      if (t.bias) out.push({ name: `${path}.bias`, variable: t.bias, embedding: false });
    }
    return out;
  }

  count(): { lora: number; trainable: number } {
    let lora = 0;
    for (const l of this.lora.values()) lora += l.A.size + l.B.size;
    let trainable = lora;
    for (const t of this.trainable.values()) trainable += t.w.size + (t.bias?.size ?? 0);
    return { lora, trainable };
  }

  /** The current weights as a PEFT adapter (read from the device). */
  async toAdapter(base: string | null, taskType: string, extra: Record<string, unknown>): Promise<Adapter> {
    const lora = new Map<string, { A: HostTensor; B: HostTensor }>();
    for (const [path, l] of this.lora) lora.set(path, { A: await toHost(l.A), B: await toHost(l.B) });
    const modulesToSave = new Map<string, HostTensor>();
    for (const [path, t] of this.trainable) {
      if (this.fanInFanOut.has(path)) {
        const saved = tf.transpose(t.w);
        modulesToSave.set(`${path}.weight`, await toHost(saved));
        saved.dispose();
      } else {
        modulesToSave.set(`${path}.weight`, await toHost(t.w));
      }
      if (t.bias) modulesToSave.set(`${path}.bias`, await toHost(t.bias));
    }
    const s = this.settings;
    const config = makeAdapterConfig({
      r: s.r,
      lora_alpha: s.lora_alpha,
      lora_dropout: s.lora_dropout,
      use_rslora: s.use_rslora,
      target_modules: [...new Set([...this.lora.keys()].map((p) => p.split('.').pop()!))].sort(),
      modules_to_save: this.trainable.size ? this.saveList : null,
      base_model_name_or_path: base,
      task_type: taskType,
      ...extra,
    });
    return { config, lora, modulesToSave };
  }

  /** Overwrites the weights with a saved adapter's (resume), once every tensor is there in this run's shape. */
  assign(w: AdapterWeights): void {
    const fail = (message: string, code = 'adapter/shape-mismatch'): never => {
      throw new LoraPlusError({
        code,
        message,
        file: w.file,
        hint: 'The checkpoint was written by a run with other LoRA settings or another model: start a new run.',
      });
    };
    const expect = (name: string, t: HostTensor | undefined, shape: readonly number[]): void => {
      if (!t) fail(`the checkpoint lacks ${name}`, 'adapter/incomplete');
      else if (t.shape.join() !== shape.join()) fail(`${name} is [${t.shape}] but this run trains [${shape}]`);
    };
    for (const [path, l] of this.lora) {
      const p = w.lora.get(path);
      expect(`${path}.lora_A.weight`, p?.A, l.A.shape);
      expect(`${path}.lora_B.weight`, p?.B, l.B.shape);
    }
    for (const [path, t] of this.trainable) {
      const [out, inp] = t.w.shape;
      expect(
        `${path}.weight`,
        w.modulesToSave.get(`${path}.weight`),
        this.fanInFanOut.has(path) ? [inp, out] : [out, inp],
      );
      const pb = w.modulesToSave.get(`${path}.bias`);
      if (t.bias && pb) expect(`${path}.bias`, pb, t.bias.shape);
    }
    tf.tidy(() => this.assignAll(w));
  }

  private assignAll(w: AdapterWeights): void {
    for (const [path, l] of this.lora) {
      const p = w.lora.get(path)!;
      l.A.assign(hostToTensor(p.A));
      l.B.assign(hostToTensor(p.B));
    }
    for (const [path, t] of this.trainable) {
      t.w.assign(this.fromSaved(path, hostToTensor(w.modulesToSave.get(`${path}.weight`)!) as tf.Tensor2D));
      const pb = w.modulesToSave.get(`${path}.bias`);
      if (t.bias && pb) t.bias.assign(hostToTensor(pb) as unknown as tf.Tensor1D);
    }
  }

  /** A saved modules_to_save weight in the layout the model trains ([out, in]); `w` is consumed. */
  private fromSaved(path: string, w: tf.Tensor2D): tf.Tensor2D {
    if (!this.fanInFanOut.has(path)) return w;
    const t = tf.transpose(w);
    w.dispose();
    return t;
  }

  dispose(): void {
    for (const l of this.lora.values()) l.dispose();
    for (const t of this.trainable.values()) tf.dispose([t.w, ...(t.bias ? [t.bias] : [])]);
  }
}

/**
 * A saved adapter (init_adapter, or one applied with --adapter) against the model it is applied to: each LoRA pair
 * on a Linear of the model, lora_A [r, in] and lora_B [out, r] for it; each other tensor the weight [out, in] (Conv1D:
 * [in, out]) or bias [out] of a module trained in full. Otherwise tfjs would fail deep inside a matMul.
 */
function checkAgainstModel(model: Model, init: AdapterWeights, full: string[]): void {
  const fail = (code: string, message: string, hint: string): never => {
    throw new LoraPlusError({ code, message, file: init.file, hint });
  };
  const sameBase = 'Use an adapter trained on this base model.';
  for (const [path, { A, B }] of init.lora) {
    const base = model.linears.get(path);
    if (!base)
      fail('adapter/unknown-module', `the adapter has weights for '${path}', which this model does not have`, sameBase);
    const { inFeatures: inp, outFeatures: out } = base!;
    if (A.shape[1] !== inp || B.shape[0] !== out) {
      fail(
        'adapter/shape-mismatch',
        `module '${path}': lora_A is [${A.shape}] and lora_B is [${B.shape}], but the model's Linear maps ` +
          `${inp} → ${out} features (expected lora_A [r, ${inp}], lora_B [${out}, r])`,
        sameBase,
      );
    }
  }
  for (const [param, t] of init.modulesToSave) {
    const cut = param.lastIndexOf('.');
    const [module, leaf] = [param.slice(0, cut), param.slice(cut + 1)];
    const base = full.includes(module) ? model.linears.get(module) : undefined;
    if (!base || (leaf !== 'weight' && leaf !== 'bias')) {
      fail(
        'adapter/unknown-key',
        `tensor '${param}' is not the weight or bias of a Linear trained in full here (${full.join(', ') || 'none'})`,
        'Add its module to modules_to_save, or use an adapter trained on this base model and task.',
      );
    }
    const { inFeatures: inp, outFeatures: out, fanInFanOut } = base!;
    const shape = leaf === 'bias' ? [out] : fanInFanOut ? [inp, out] : [out, inp];
    if (t.shape.join() !== shape.join()) {
      fail(
        'adapter/shape-mismatch',
        `modules_to_save tensor '${param}' is [${t.shape}], but the model's ${module} needs [${shape}]`,
        'Use an adapter trained on this base model, with as many labels as the data has.',
      );
    }
  }
}

/** A trainable variable with `init`'s values; `init` is disposed (the variable holds its own reference to the data). */
function ownedVariable(init: tf.Tensor): tf.Variable {
  const v = tf.variable(init, true);
  init.dispose();
  return v;
}

function hostToTensor(h: HostTensor): tf.Tensor2D {
  const t: tf.Tensor = tf.tensor(h.data, h.shape, 'float32');
  return t as tf.Tensor2D; // (1-D for a bias)
}

async function toHost(t: tf.Tensor): Promise<HostTensor> {
  return { dtype: 'float32', shape: [...t.shape], data: (await t.data()) as Float32Array };
}
