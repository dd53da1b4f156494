// The A/B view's figure of a step that only the trainer can compute, since it needs each update ΔA, ΔB itself.
import * as tf from '@tensorflow/tfjs';
import type { Trainables } from './trainables';

/**
 * The output change each side's update causes, per LoRA module: ‖s·B·ΔA‖_F and ‖s·ΔB·A‖_F with the pre-update A and B
 * (the first-order split of Δ(s·B·A); the ΔB·ΔA term belongs to neither). Computed through r×r Gram matrices,
 * ‖X·Y‖_F² = Σ (XᵀX) ⊙ (Y·Yᵀ), so no [out, in] product is formed.
 */
export function outputChanges(weights: Trainables, kept: Map<string, tf.Tensor>): tf.Scalar[] {
  return [...weights.lora.entries()].flatMap(([m, l]) =>
    tf.tidy(() => {
      // A side that did not train (lorafa's lora_A) did not change.
      const dA = (kept.get(`${m}.lora_A.weight`) ?? tf.zerosLike(l.A)) as tf.Tensor2D; // [r, in]
      const dB = (kept.get(`${m}.lora_B.weight`) ?? tf.zerosLike(l.B)) as tf.Tensor2D; // [out, r]
      const A = tf.sub(l.A, dA) as tf.Tensor2D; // before the update
      const B = tf.sub(l.B, dB) as tf.Tensor2D;
      const frob = (x: tf.Tensor2D, y: tf.Tensor2D) =>
        tf.mul(
          tf.sqrt(tf.sum(tf.mul(tf.matMul(x, x, true, false), tf.matMul(y, y, false, true)))),
          l.scaling,
        ) as tf.Scalar;
      return [frob(B, dA), frob(dB, A)]; // [out_A, out_B]
    }),
  );
}
