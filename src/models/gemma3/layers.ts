// Gemma 3's own elementwise pieces, each a custom op so the tape keeps one tensor (autodiff kept every
// intermediate, and the wasm backend's elementwise kernels are scalar): RMSNorm with (1 + w), tanh soft-capping and
// the tanh-approximated GELU. All in float32, as transformers computes them for float32 weights.
import * as tf from '@tensorflow/tfjs';
import { customOp } from '../../adapters/lora';

/**
 * Gemma3RMSNorm over the last axis: x · rsqrt(mean(x²) + eps) · (1 + w), with `onePlusW` = 1 + w made once in float32
 * (transformers adds 1 to the float32 weight on every call: the same number). The weight is frozen, so only dx:
 * dx = r · (g − x̂ · mean(g · x̂)) with g = dy · (1 + w), x̂ = x · r, r = rsqrt(mean(x²) + eps).
 */
export function rmsNorm1p(x: tf.Tensor, onePlusW: tf.Tensor1D, eps: number): tf.Tensor {
  const f = customOp(([xx], save) => {
    const r = tf.rsqrt(tf.add(tf.mean(tf.square(xx), -1, true), eps)); // [..., 1]
    const xhat = tf.mul(xx, r);
    save([xhat, r]);
    return {
      value: tf.mul(xhat, onePlusW),
      gradFunc: (dy, [xh, rs]) => {
        const g = tf.mul(dy, onePlusW);
        return tf.mul(rs, tf.sub(g, tf.mul(xh, tf.mean(tf.mul(g, xh), -1, true))));
      },
    };
  });
  return f(x);
}

/** Soft-capping, tanh(x / cap) · cap (Gemma's final_logit_softcapping); dx = dy · (1 − tanh²). */
export function softcap(x: tf.Tensor, cap: number): tf.Tensor {
  const f = customOp(([xx], save) => {
    const t = tf.tanh(tf.div(xx, cap));
    save([t]);
    return { value: tf.mul(t, cap), gradFunc: (dy, [ts]) => tf.mul(dy, tf.sub(1, tf.square(ts))) };
  });
  return f(x);
}

const K = Math.sqrt(2 / Math.PI);
const C = 0.044715;

/**
 * gelu_pytorch_tanh: ½x·(1 + tanh(√(2/π)·(x + 0.044715x³))), as torch's gelu(approximate='tanh'). Keeps x alone;
 * the backward recomputes t = tanh(·): ½(1 + t) + ½x·(1 − t²)·√(2/π)·(1 + 3·0.044715x²).
 */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  const f = customOp(([xx], save) => {
    save([xx]);
    const t = tf.tanh(tf.mul(K, tf.add(xx, tf.mul(C, tf.mul(xx, tf.square(xx))))));
    return {
      value: tf.mul(tf.mul(xx, 0.5), tf.add(1, t)),
      gradFunc: (dy, [xs]) => {
        const x2 = tf.square(xs);
        const th = tf.tanh(tf.mul(K, tf.add(xs, tf.mul(C, tf.mul(xs, x2)))));
        const inner = tf.mul(
          tf.mul(tf.mul(xs, 0.5), tf.sub(1, tf.square(th))),
          tf.mul(K, tf.add(1, tf.mul(3 * C, x2))),
        );
        return tf.mul(dy, tf.add(tf.mul(0.5, tf.add(1, th)), inner));
      },
    };
  });
  return f(x);
}
