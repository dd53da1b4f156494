// training.optimizer: PEFT 0.21's three LoRA optimizers, each as AdamW (optimizer.ts) with its groups and, for the two
// that need no λ, a transform of the gradients before the step:
//   adamw       create_loraplus_optimizer: loraplusGroups, PyTorch's AdamW.
//   riemannian  create_riemannian_optimizer: PyTorch's AdamW over every trainable tensor at one learning rate; before
//               each step, per LoRA pair (A, B as they are before it): ∇A ← (BᵀB + reg·I)⁺∇A, ∇B ← ∇B(AAᵀ + reg·I)⁺.
//   lorafa      create_lorafa_optimizer: lora_A frozen; ∇B ← s⁻²·∇B(AAᵀ + 1e-8·I)⁺ with s the module's scaling,
//               in bfloat16 as PEFT computes it (under autocast whenever bf16 is available, CPUs included); then
//               LoraFAOptimizer's AdamW ("adamw_hf", betas (0.9, 0.999), ε 1e-6) on every trained tensor.
import * as tf from '@tensorflow/tfjs';
import type { LoraModule } from '../../adapters/lora';
import { LORAFA_ADAM } from '../../config/optimizer-rules';
import type { TrainConfig } from '../../config/schema';
import { AdamW, loraplusGroups, type GradientTransform, type Group, type Trainable } from './optimizer';
import { dampedPinv } from './pinv';

type Training = TrainConfig['training'];

/** LoraFAOptimizer's damping of AAᵀ before pinv (its `delta`). */
const LORAFA_DELTA = 1e-8;

const aName = (m: LoraModule) => `${m.module}.lora_A.weight`;
const bName = (m: LoraModule) => `${m.module}.lora_B.weight`;

/** The optimizer `t.optimizer` names, over `params` (the adapter's tensors) with `lora` the adapter's LoRA pairs. */
export function createOptimizer(t: Training, params: Trainable[], lora: LoraModule[]): AdamW {
  const adam = { beta1: t.adam_beta1, beta2: t.adam_beta2, eps: t.adam_epsilon };
  if (t.optimizer === 'riemannian')
    return new AdamW(oneRateGroups(params, t), adam, new RiemannianPreconditioner(lora, t.optimizer_args.reg));
  if (t.optimizer === 'lorafa') {
    const trained = params.filter((p) => !p.name.endsWith('.lora_A.weight'));
    // create_lorafa_optimizer's betas and ε, whatever the config says (the validator warns)
    const { adam_beta1: beta1, adam_beta2: beta2, adam_epsilon: eps } = LORAFA_ADAM;
    return new AdamW(oneRateGroups(trained, t), { beta1, beta2, eps, hf: true }, new LoraFaProjection(lora));
  }
  return new AdamW(loraplusGroups(params, t), adam); // adamw (also a config written before the key existed)
}

/**
 * One learning rate and weight decay for every tensor, as PEFT's riemannian and lorafa have (a single param group;
 * 1-D tensors decay too). Split by name only so the run shows A and B: `B` holds lora_B, `A` everything else.
 */
export function oneRateGroups(params: Trainable[], t: Pick<Training, 'learning_rate' | 'weight_decay'>): Group[] {
  const make = (name: Group['name']): Group => ({
    name,
    lr: t.learning_rate,
    weight_decay: t.weight_decay,
    params: [],
    vars: [],
  });
  const [a, b] = [make('A'), make('B')];
  for (const p of params) {
    const g = p.name.includes('lora_B') ? b : a;
    g.vars.push(p);
    g.params.push(p.name);
  }
  return [a, b].filter((g) => g.vars.length > 0);
}

/** PEFT's _RiemannianPreconditioner: the r×r inverses come from the host (pinv.ts), one device read per step. */
export class RiemannianPreconditioner implements GradientTransform {
  constructor(
    private readonly lora: LoraModule[],
    private readonly reg: number,
  ) {}

  async apply(grads: Map<string, tf.Tensor>): Promise<Map<string, tf.Tensor>> {
    const out = new Map(grads);
    const pairs = this.lora.filter((m) => grads.has(aName(m)) && grads.has(bName(m)));
    if (!pairs.length) return out;
    // BᵀB and AAᵀ of every pair, flattened one after the other.
    const grams = tf.tidy(() =>
      tf.concat(pairs.flatMap((m) => [tf.matMul(m.B, m.B, true, false), tf.matMul(m.A, m.A, false, true)].map(flat))),
    );
    const host = await grams.data();
    grams.dispose();
    const inverses = new Float32Array(host.length);
    let at = 0;
    for (const m of pairs) {
      const size = m.r * m.r;
      for (let k = 0; k < 2; k++, at += size) inverses.set(dampedPinv(host.subarray(at, at + size), m.r, this.reg), at);
    }
    const next = tf.tidy(() => {
      const inv = tf.tensor1d(inverses);
      let off = 0;
      return pairs.flatMap((m) => {
        const size = m.r * m.r;
        const pB = tf.reshape(tf.slice(inv, off, size), [m.r, m.r]) as tf.Tensor2D; // (BᵀB + reg·I)⁺
        const pA = tf.reshape(tf.slice(inv, off + size, size), [m.r, m.r]) as tf.Tensor2D; // (AAᵀ + reg·I)⁺
        off += 2 * size;
        return [tf.matMul(pB, grads.get(aName(m)) as tf.Tensor2D), tf.matMul(grads.get(bName(m)) as tf.Tensor2D, pA)];
      });
    });
    pairs.forEach((m, i) => {
      out.set(aName(m), next[2 * i]);
      out.set(bName(m), next[2 * i + 1]);
    });
    return out;
  }

  dispose(): void {}
}

/**
 * LoraFAOptimizer's projection of ∇B. A never changes, so each module's bf16 (AAᵀ + δI)⁺ is made once, at the first
 * step (after a resume has loaded A), and kept.
 */
export class LoraFaProjection implements GradientTransform {
  private projectors: Map<string, tf.Tensor2D> | null = null;

  constructor(private readonly lora: LoraModule[]) {}

  async apply(grads: Map<string, tf.Tensor>): Promise<Map<string, tf.Tensor>> {
    this.projectors ??= await this.build();
    const out = new Map(grads);
    const modules = this.lora.filter((m) => grads.has(bName(m)));
    const next = tf.tidy(() =>
      modules.map((m) => {
        const g = grads.get(bName(m)) as tf.Tensor2D;
        // autocast: the matmul's inputs and output in bf16, then the bf16 product with 1/s² (python float).
        const projected = bf16(tf.matMul(bf16(g) as tf.Tensor2D, this.projectors!.get(m.module)!));
        return bf16(tf.mul(projected, 1 / m.scaling ** 2));
      }),
    );
    modules.forEach((m, i) => out.set(bName(m), next[i]));
    return out;
  }

  private async build(): Promise<Map<string, tf.Tensor2D>> {
    const grams = tf.tidy(() => tf.concat(this.lora.map((m) => flat(tf.matMul(m.A, m.A, false, true)))));
    const host = await grams.data();
    grams.dispose();
    const out = new Map<string, tf.Tensor2D>();
    let at = 0;
    for (const m of this.lora) {
      const size = m.r * m.r;
      const inv = Float32Array.from(dampedPinv(host.subarray(at, at + size), m.r, LORAFA_DELTA));
      at += size;
      out.set(
        m.module,
        tf.tidy(() => bf16(tf.tensor2d(inv, [m.r, m.r])) as tf.Tensor2D),
      );
    }
    return out;
  }

  dispose(): void {
    for (const p of this.projectors?.values() ?? []) p.dispose();
    this.projectors = null;
  }
}

/**
 * x rounded to bfloat16's 8 significant bits, to nearest, in float32 arithmetic (Veltkamp's split with 2^16 + 1):
 * what autocast's casts to bf16 do, on any backend, without bit access. (bf16 keeps float32's exponent range.)
 */
export function bf16(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const c = tf.mul(x, 65537);
    return tf.sub(c, tf.sub(c, x));
  });
}

function flat(x: tf.Tensor): tf.Tensor1D {
  return tf.reshape(x, [-1]);
}
