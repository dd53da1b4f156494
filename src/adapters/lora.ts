// LoRA on a Linear, as PEFT computes it: y = x·Wᵀ + b + scaling · lora_B(lora_A(dropout(x))).
// The forward and backward are written out (tf.customGrad) so that every matmul is a plain 2-D product with no
// transpose flags: that is the only case the wasm backend runs on its fast XNNPACK path (autodiff of matMul emits
// transposed products, which run 10× slower there). Gradients match autodiff; a test checks against finite
// differences.
import * as tf from '@tensorflow/tfjs';

/**
 * A frozen nn.Linear, stored once, as Wᵀ [in, out]: the forward's x·Wᵀ is a plain 2-D product, and the backward's
 * dx = dy·W is computed from Wᵀ with transient transposes (see inputGrad). Keeping W too would double the weights,
 * and XNNPACK keeps a packed copy of every right-hand side it multiplies by, so W would cost twice again.
 */
export interface FrozenLinear {
  inFeatures: number;
  outFeatures: number;
  wT: tf.Tensor2D; // [in, out]
  bias: tf.Tensor1D | null; // [out]
  /** The checkpoint stores this weight [in, out] (GPT-2's Conv1D; PEFT's fan_in_fan_out): saved copies use it. */
  fanInFanOut: boolean;
}

/** From W [out, in] (PyTorch's nn.Linear layout). Takes ownership of w and bias: w is transposed and disposed. */
export function frozenLinear(w: tf.Tensor2D, bias: tf.Tensor1D | null): FrozenLinear {
  const wT = tf.keep(tf.transpose(w));
  w.dispose();
  const [inFeatures, outFeatures] = wT.shape;
  return { inFeatures, outFeatures, wT, bias, fanInFanOut: false };
}

/** From Wᵀ [in, out], e.g. GPT-2's Conv1D weights: kept as is, no transpose. Takes ownership of wT and bias. */
export function frozenLinearFromTransposed(wT: tf.Tensor2D, bias: tf.Tensor1D | null): FrozenLinear {
  const [inFeatures, outFeatures] = wT.shape;
  return { inFeatures, outFeatures, wT, bias, fanInFanOut: true };
}

/**
 * A head tied to the embedding E [V, H] (W = E): Wᵀ [H, V] is a new tensor, E stays the caller's. A model can drop E
 * and look tokens up in Wᵀ instead (embeddingLookup in models/layers.ts).
 */
export function tiedLinear(embed: tf.Tensor2D): FrozenLinear {
  return { ...frozenLinearFromTransposed(tf.keep(tf.transpose(embed)), null), fanInFanOut: false };
}

/** W [out, in] as a new tensor (the caller disposes it). */
export function frozenW(l: FrozenLinear): tf.Tensor2D {
  return tf.transpose(l.wT);
}

export function disposeFrozen(l: FrozenLinear): void {
  tf.dispose([l.wT, ...(l.bias ? [l.bias] : [])]);
}

/** The trainable pair of one adapted module. This object owns its two variables. */
export class LoraModule {
  readonly A: tf.Variable<tf.Rank.R2>; // lora_A.weight [r, in]
  readonly B: tf.Variable<tf.Rank.R2>; // lora_B.weight [out, r]

  constructor(
    readonly module: string, // PEFT module path, e.g. model.layers.0.self_attn.q_proj
    A: tf.Tensor2D,
    B: tf.Tensor2D,
    readonly scaling: number, // lora_alpha / r (or / √r with rsLoRA)
    readonly dropout: number,
  ) {
    // Unnamed: tfjs variable names are global, and two adapters of one model (e.g. compared) may coexist.
    this.A = tf.variable(A, true);
    this.B = tf.variable(B, true);
  }

  get r(): number {
    return this.A.shape[0];
  }

  dispose(): void {
    this.A.dispose();
    this.B.dispose();
  }
}

/** PEFT's init: A ~ kaiming_uniform(a=√5) over fan_in = in, i.e. U(-1/√in, 1/√in); B = 0. */
export function initLoraWeights(
  r: number,
  inFeatures: number,
  outFeatures: number,
  uniform: () => number,
): { A: tf.Tensor2D; B: tf.Tensor2D } {
  const bound = 1 / Math.sqrt(inFeatures);
  const a = new Float32Array(r * inFeatures);
  for (let i = 0; i < a.length; i++) a[i] = (2 * uniform() - 1) * bound;
  return { A: tf.tensor2d(a, [r, inFeatures]), B: tf.zeros([outFeatures, r]) };
}

type GradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];

/**
 * tf.customGrad with typed arguments. The forward runs inside a tidy: whatever the gradient needs must be saved
 * with `save` or be long-lived (frozen weights); inputs made inside the differentiated function are gone by then.
 * The gradient runs in a tidy too: tfjs does not wrap it in one, so its intermediates would otherwise live until the
 * whole backward pass ends (for attention, several [B, h, T, T] tensors per layer).
 */
export function customOp(
  f: (inputs: tf.Tensor[], save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: GradFunc },
): (...xs: tf.Tensor[]) => tf.Tensor {
  return tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const { value, gradFunc } = f(args as tf.Tensor[], save);
    return { value, gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.tidy(() => gradFunc(dy, saved)) };
  }) as Parameters<typeof tf.customGrad>[0]);
}

/** y = x·Wᵀ + b, with dx = dy·W. x: [N, in] → [N, out]. */
export function linear(x: tf.Tensor2D, base: FrozenLinear): tf.Tensor2D {
  const f = customOp(([xx]) => ({
    value: addBias(tf.matMul(xx as tf.Tensor2D, base.wT), base.bias),
    gradFunc: (dy) => inputGrad(dy as tf.Tensor2D, base),
  }));
  return f(x) as tf.Tensor2D;
}

/**
 * y = x·Wᵀ + b + s·(x'·Aᵀ)·Bᵀ where x' = dropout(x) (x' = x without dropout). x: [N, in] → [N, out].
 * `dropoutSeed` is null in eval, else a per-step seed so a resumed run draws the same masks.
 */
export function loraLinear(
  x: tf.Tensor2D,
  base: FrozenLinear,
  lora: LoraModule,
  dropoutSeed: number | null,
): tf.Tensor2D {
  const s = lora.scaling;
  const xd =
    lora.dropout > 0 && dropoutSeed !== null ? (tf.dropout(x, lora.dropout, undefined, dropoutSeed) as tf.Tensor2D) : x;
  const f = customOp(([xx, xdd, A, B], save) => {
    const h = tf.matMul(xdd as tf.Tensor2D, tf.transpose(A as tf.Tensor2D)); // [N, r]
    const value = tf.add(
      addBias(tf.matMul(xx as tf.Tensor2D, base.wT), base.bias),
      tf.mul(tf.matMul(h, tf.transpose(B as tf.Tensor2D)), s),
    );
    save([xdd, A, B, h]);
    return {
      value,
      gradFunc: (dy, saved) => {
        const [xs, As, Bs, hs] = saved as tf.Tensor2D[];
        const dy2 = dy as tf.Tensor2D; // [N, out]
        const dh = tf.mul(tf.matMul(dy2, Bs), s) as tf.Tensor2D; // [N, r]
        const dA = tf.matMul(tf.transpose(dh), xs); // [r, in]
        const dB = tf.mul(tf.matMul(tf.transpose(dy2), hs), s); // [out, r]
        // Without dropout x and x' are one tensor: the tape adds the two gradients, as it should.
        return [inputGrad(dy2, base), tf.matMul(dh, As), dA, dB]; // dx, dx' [N, in]; dA [r, in]; dB [out, r]
      },
    };
  });
  return f(x, xd, lora.A, lora.B) as tf.Tensor2D;
}

/** A Linear trained in full (PEFT modules_to_save, e.g. a classification head): plain autodiff, it is small. */
export interface TrainableLinear {
  w: tf.Variable<tf.Rank.R2>; // [out, in]
  bias: tf.Variable<tf.Rank.R1> | null; // [out]
}

export function trainableLinear(x: tf.Tensor2D, l: TrainableLinear): tf.Tensor2D {
  return addBias(tf.matMul(x, l.w, false, true), l.bias);
}

/**
 * dx = dy·W [N, in] for dy [N, out], from Wᵀ, as plain 2-D products (the wasm fast path). With few rows,
 * N·(in + out) < in·out, as (Wᵀ·dyᵀ)ᵀ: transposing dy and the result moves less than transposing W, and
 * XNNPACK packs dyᵀ rather than W (measured on GPT-2-small's MLP at N = 254: 57 ms vs 99 ms; its 50257-wide
 * head: 1.06 s, faster than 1.6 s with a stored W). Otherwise as dy·W with W transposed for this product. The tidy
 * disposes the transient copies, and tfjs-wasm frees XNNPACK's packed copy of a right-hand side with its tensor.
 */
function inputGrad(dy: tf.Tensor2D, base: FrozenLinear): tf.Tensor2D {
  const [n, out] = dy.shape;
  const inF = base.inFeatures;
  return tf.tidy(() =>
    n * (inF + out) < inF * out
      ? tf.transpose(tf.matMul(base.wT, tf.transpose(dy)))
      : tf.matMul(dy, tf.transpose(base.wT)),
  ) as tf.Tensor2D;
}

function addBias(y: tf.Tensor2D, bias: tf.Tensor1D | null): tf.Tensor2D {
  return bias ? tf.add(y, bias) : y;
}
