// The MLP activations of the encoder and GPT-2 families, by transformers' ACT2FN names. Data only (the functions are
// in layers.ts), so reading a config never loads TensorFlow.js.
export type Activation = 'gelu' | 'gelu_tanh' | 'relu';

/** ACT2FN name → what is implemented here (`gelu` is the exact, erf-based GELU; `gelu_new` the tanh approximation). */
export const ACTIVATIONS: Readonly<Record<string, Activation>> = {
  gelu: 'gelu',
  gelu_new: 'gelu_tanh',
  gelu_pytorch_tanh: 'gelu_tanh',
  relu: 'relu',
};
