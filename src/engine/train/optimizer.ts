// The LoRA+ optimizer: AdamW (PyTorch's formulas, decoupled weight decay) over PEFT create_loraplus_optimizer's groups:
//   A          every other trainable tensor (lora_A, 2-D weights of modules_to_save)      lr
//   embedding  LoRA adapters of embedding layers                                            loraplus_lr_embedding
//   B          lora_B weights                                                               lr · loraplus_lr_ratio
//   B_no_decay 1-D trainable tensors (biases, norms): no weight decay, as transformers'
//              get_decay_parameter_names leaves them out                                   lr · loraplus_lr_ratio
// With loraplus_lr_ratio = 1 this is exactly plain LoRA with AdamW. PEFT's other LoRA optimizers (riemannian, lorafa)
// are this AdamW with their own groups and a gradient transform: peft-optimizers.ts.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../../adapters/safetensors';
import type { ParamGroupInfo } from '../../protocol/events';

export interface Trainable {
  name: string; // PEFT parameter name, e.g. model.layers.0.self_attn.q_proj.lora_B.weight, score.weight
  variable: tf.Variable;
  embedding: boolean; // an adapter of an embedding layer
}

export interface LoraPlusSettings {
  learning_rate: number;
  loraplus_lr_ratio: number;
  loraplus_lr_embedding: number;
  weight_decay: number;
}

export interface Group extends ParamGroupInfo {
  vars: Trainable[];
}

export function loraplusGroups(params: Trainable[], s: LoraPlusSettings): Group[] {
  const groups: Group[] = [
    { name: 'A', lr: s.learning_rate, weight_decay: s.weight_decay, params: [], vars: [] },
    { name: 'embedding', lr: s.loraplus_lr_embedding, weight_decay: s.weight_decay, params: [], vars: [] },
    { name: 'B', lr: s.learning_rate * s.loraplus_lr_ratio, weight_decay: s.weight_decay, params: [], vars: [] },
    { name: 'B_no_decay', lr: s.learning_rate * s.loraplus_lr_ratio, weight_decay: 0, params: [], vars: [] },
  ];
  const byName = Object.fromEntries(groups.map((g) => [g.name, g]));
  for (const p of params) {
    const g = p.embedding
      ? byName.embedding
      : p.variable.rank === 1
        ? byName.B_no_decay
        : p.name.includes('lora_B')
          ? byName.B
          : byName.A;
    g.vars.push(p);
    g.params.push(p.name);
  }
  return groups.filter((g) => g.vars.length > 0);
}

export interface AdamSettings {
  beta1: number;
  beta2: number;
  eps: number;
  // transformers' former AdamW ("adamw_hf"), which PEFT's LoraFAOptimizer is: ε is added to √v before the bias
  // correction, and the decay multiplies the weight after the update. Unset: PyTorch's AdamW.
  hf?: boolean;
}

/** What an optimizer does to the gradients before AdamW's step (PEFT's riemannian and lorafa; peft-optimizers.ts). */
export interface GradientTransform {
  /** The gradients AdamW steps with: a new map; tensors it replaces stay the caller's, new ones become the caller's. */
  apply(grads: Map<string, tf.Tensor>): Promise<Map<string, tf.Tensor>>;
  dispose(): void;
}

/** AdamW over groups. Owns its moment variables; the parameters belong to the model's adapters. */
export class AdamW {
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();
  t = 0; // updates taken

  constructor(
    readonly groups: Group[],
    private readonly o: AdamSettings,
    readonly transform: GradientTransform | null = null,
  ) {
    for (const g of groups) {
      for (const p of g.vars) {
        this.m.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
        this.v.set(p.name, tf.variable(tf.zerosLike(p.variable), false));
      }
    }
  }

  /**
   * One update with each group's lr scaled by `lrScale` (the schedule). Returns ‖Δp‖ per parameter name as scalars
   * (the caller reads them together with the other step figures, in one device read). The updates Δp of the names in
   * `keep` are also put into `kept` (the caller owns and disposes them): the A/B view needs ΔA and ΔB themselves.
   */
  step(
    grads: Map<string, tf.Tensor>,
    lrScale: number,
    keep?: ReadonlySet<string>,
    kept?: Map<string, tf.Tensor>,
  ): Map<string, tf.Scalar> {
    this.t += 1;
    const { beta1: b1, beta2: b2, eps, hf } = this.o;
    const bc1 = 1 - Math.pow(b1, this.t);
    const bc2Sqrt = Math.sqrt(1 - Math.pow(b2, this.t));
    // PyTorch: p ← p·(1 − lr·wd) − lr/bc1 · m / (√v/√bc2 + ε);  adamw_hf: p ← (p − lr·√bc2/bc1 · m / (√v + ε))·(1 − lr·wd)
    const stepScale = hf ? bc2Sqrt / bc1 : 1 / bc1;
    const deltas = new Map<string, tf.Scalar>();
    for (const g of this.groups) {
      const lr = g.lr * lrScale;
      for (const p of g.vars) {
        const grad = grads.get(p.name);
        if (!grad) continue;
        const m = this.m.get(p.name)!;
        const v = this.v.get(p.name)!;
        const norm = tf.tidy(() => {
          const old = p.variable;
          const decay = (x: tf.Tensor) => (g.weight_decay ? tf.mul(x, 1 - lr * g.weight_decay) : x);
          const m1 = tf.add(tf.mul(m, b1), tf.mul(grad, 1 - b1));
          const v1 = tf.add(tf.mul(v, b2), tf.mul(tf.square(grad), 1 - b2));
          const denom = hf ? tf.add(tf.sqrt(v1), eps) : tf.add(tf.div(tf.sqrt(v1), bc2Sqrt), eps);
          const update = tf.mul(tf.div(m1, denom), lr * stepScale);
          const next = hf ? decay(tf.sub(old, update)) : tf.sub(decay(old), update);
          m.assign(m1);
          v.assign(v1);
          const delta = tf.sub(next, old);
          if (keep?.has(p.name)) kept?.set(p.name, tf.keep(delta));
          p.variable.assign(next);
          return tf.norm(delta) as tf.Scalar;
        });
        deltas.set(p.name, norm);
      }
    }
    return deltas;
  }

  /** Moments by `<name>.exp_avg` / `<name>.exp_avg_sq`, for checkpoints. */
  async state(): Promise<Map<string, HostTensor>> {
    const out = new Map<string, HostTensor>();
    for (const [suffix, table] of [
      ['exp_avg', this.m],
      ['exp_avg_sq', this.v],
    ] as const) {
      for (const [name, t] of table)
        out.set(`${name}.${suffix}`, { dtype: 'float32', shape: t.shape, data: (await t.data()) as Float32Array });
    }
    return out;
  }

  loadState(state: Map<string, HostTensor>, t: number): void {
    for (const [suffix, table] of [
      ['exp_avg', this.m],
      ['exp_avg_sq', this.v],
    ] as const) {
      for (const [name, variable] of table) {
        const s = state.get(`${name}.${suffix}`);
        if (!s || s.shape.join() !== variable.shape.join())
          throw new Error(`optimizer state lacks ${name}.${suffix} or its shape differs`);
        variable.assign(tf.tensor(s.data, s.shape, 'float32'));
      }
    }
    this.t = t;
  }

  /** The gradients this step uses: the transform's (riemannian, lorafa), else `grads` itself. */
  prepare(grads: Map<string, tf.Tensor>): Promise<Map<string, tf.Tensor>> {
    return this.transform ? this.transform.apply(grads) : Promise.resolve(grads);
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
    this.transform?.dispose();
  }
}

/** Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_): returns the norm before clipping. */
export function clipGradients(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { grads: Map<string, tf.Tensor>; norm: tf.Scalar } {
  const names = [...grads.keys()];
  const out = tf.tidy(() => {
    const gs = [...grads.values()];
    const norm = tf.sqrt(tf.addN(gs.map((g) => tf.sum(tf.square(g))))) as tf.Scalar;
    const coef = maxNorm > 0 ? tf.minimum(tf.div(maxNorm, tf.add(norm, 1e-6)), 1) : tf.scalar(1);
    return { clipped: gs.map((g) => tf.mul(g, coef)), norm };
  });
  return { grads: new Map(names.map((n, i) => [n, out.clipped[i]])), norm: out.norm };
}
