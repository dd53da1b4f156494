// Whether one training pass fits at all: batch_size and max_length pass the schema's limits one by one, but their
// product with the model's heads and vocabulary can make a single tensor larger than any TF.js backend allocates.
// Such a run would die minutes in, with "Invalid typed array length" or an aborted WebAssembly runtime.
import { problem } from '../../config/problem';
import type { ConfigCheck, Problem } from '../../config/problem';
import { inspectModel } from './inspect';

/**
 * 2^30 float32 numbers are 4 GiB: all the memory 32-bit WebAssembly has, and WebGPU's largest buffer. The CPU
 * backends (wasm, cpu) cannot hold such a tensor; a CUDA or WebGPU device with room might.
 */
export const TENSOR_LIMIT = 2 ** 30;

/** The largest activation of one pass (attention scores, a causal LM's logits) against TENSOR_LIMIT. */
export const checkTensorSizes: ConfigCheck = ({ config, written }) => {
  const m = inspectModel(config.model);
  if (!m.ok) return []; // the model's own problem is reported by checkAgainstFiles
  const raw = m.value.config;
  const int = (...keys: string[]): number => {
    for (const k of keys) if (typeof raw[k] === 'number' && (raw[k] as number) > 0) return raw[k] as number;
    return 1;
  };
  const b = config.training.batch_size;
  const t = config.data.max_length;
  const heads = int('num_attention_heads', 'n_head', 'n_heads');
  const vocab = config.task === 'causal-lm' ? int('vocab_size') : 1;
  const scores = b * heads * t * t; // [batch, heads, T, T]
  const logits = b * t * vocab; // [batch, T, vocab]
  const biggest = Math.max(scores, logits);
  if (biggest <= TENSOR_LIMIT) return [];
  const cpu = config.device === 'wasm' || config.device === 'cpu';
  const what =
    scores >= logits
      ? `its attention scores, batch_size × heads × max_length² = ${b} × ${heads} × ${t}²`
      : `its logits, batch_size × max_length × vocabulary = ${b} × ${t} × ${vocab}`;
  // Point at max_length when the scores dominate and it was written, else at batch_size (it scales both).
  const key = scores >= logits && written(['data', 'max_length']) ? 'max_length' : 'batch_size';
  const at = key === 'max_length' ? ['data', 'max_length'] : ['training', 'batch_size'];
  const out: Problem[] = [
    problem({
      severity: cpu ? 'error' : 'warning',
      code: 'config/pass-too-large',
      message:
        `one training pass needs ${(biggest / 2 ** 30).toFixed(1)}G numbers in a single tensor (${what}), ` +
        `more than the ${TENSOR_LIMIT / 2 ** 30}G (4 GiB) that ` +
        (cpu ? `the ${config.device} backend can hold` : 'the CPU backends hold; only a GPU with room can run it'),
      path: at,
      at: written(at) ? 'value' : 'parent',
      hint: 'Lower batch_size (use gradient_accumulation_steps for the same effective batch) or max_length.',
    }),
  ];
  return out;
};
