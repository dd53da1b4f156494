// Merging a LoRA pair into its base weight, PEFT's formula: W' = W + scaling · B·A (W: [out, in]).
// GPT-2's Conv1D stores W as [in, out] (PEFT's fan_in_fan_out): there W' = W + scaling · (B·A)ᵀ, kept [in, out].
// The merged model must give the same outputs as base + adapter; tests check it to 1e-4.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from './safetensors';

/** W [out, in] (or [in, out] when fanInFanOut) + scaling · B [out, r] · A [r, in], in W's layout. */
export function mergeWeight(
  w: HostTensor,
  A: HostTensor,
  B: HostTensor,
  scaling: number,
  fanInFanOut = false,
): HostTensor {
  const [out, inF] = fanInFanOut ? [w.shape[1], w.shape[0]] : w.shape;
  if (A.shape[1] !== inF || B.shape[0] !== out || A.shape[0] !== B.shape[1]) {
    throw new Error(
      `cannot merge: W [${w.shape}]${fanInFanOut ? ' (stored [in, out])' : ''} ` +
        `with lora_A [${A.shape}] and lora_B [${B.shape}]`,
    );
  }
  const merged = tf.tidy(() => {
    const delta = tf.matMul(
      tf.tensor2d(B.data as Float32Array, [out, B.shape[1]]),
      tf.tensor2d(A.data as Float32Array, [A.shape[0], inF]),
    ); // [out, in]
    return tf.add(
      tf.tensor2d(w.data as Float32Array, [w.shape[0], w.shape[1]]),
      tf.mul(fanInFanOut ? tf.transpose(delta) : delta, scaling),
    );
  });
  const data = merged.dataSync() as Float32Array; // merge runs on the CPU backends, where a sync read is cheap
  merged.dispose();
  return { dtype: 'float32', shape: [...w.shape], data };
}
