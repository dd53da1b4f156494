// The MLP activations of the encoder and GPT-2 families, by transformers' ACT2FN names.
import * as tf from '@tensorflow/tfjs';
import { gelu, geluTanh } from './layers';

export type Activation = 'gelu' | 'gelu_tanh' | 'relu';

/** ACT2FN name → what is implemented here (`gelu` is the exact, erf-based GELU; `gelu_new` the tanh approximation). */
export const ACTIVATIONS: Readonly<Record<string, Activation>> = { gelu: 'gelu', gelu_new: 'gelu_tanh', gelu_pytorch_tanh: 'gelu_tanh', relu: 'relu' };

export function activation(act: Activation, x: tf.Tensor2D): tf.Tensor2D {
  return (act === 'gelu' ? gelu(x) : act === 'gelu_tanh' ? geluTanh(x) : tf.relu(x)) as tf.Tensor2D;
}
