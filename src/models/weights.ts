// The checkpoint as a family's constructor reads it: host tensors by module path (keys already normalised), the
// checks every loader makes, and tf tensors made on request. Only the constructor holds it, so the host copies can be
// freed once the model is built.
import * as tf from '@tensorflow/tfjs';
import type { HostTensor } from '../adapters/safetensors';
import { LoraPlusError } from '../protocol/errors';

export class Weights {
  constructor(
    private readonly weights: Map<string, HostTensor>,
    readonly dir: string, // for error messages
  ) {}

  has(key: string): boolean {
    return this.weights.has(key);
  }

  get(key: string): HostTensor | undefined {
    return this.weights.get(key);
  }

  /** A new float32 tensor of weight `key` (the caller owns it). */
  tensor(key: string): tf.Tensor {
    const w = this.weights.get(key);
    if (!w) throw new Error(`internal: no weight named ${key}`);
    return tf.tensor(w.data, w.shape, 'float32');
  }

  /** The checkpoint has each weight the architecture needs, in the shape config.json implies. */
  check(required: Map<string, number[]>): void {
    const missing = [...required.keys()].filter((k) => !this.weights.has(k));
    if (missing.length) {
      const eg = missing.slice(0, 3).join(', ');
      throw new LoraPlusError({
        code: 'model/missing-weights',
        message: `the checkpoint lacks ${missing.length} weight(s) this architecture needs, e.g. ${eg}`,
        file: this.dir,
        hint: 'Check that config.json and model.safetensors come from the same model.',
      });
    }
    for (const [k, shape] of required) {
      const got = this.weights.get(k)!.shape;
      if (got.join() !== shape.join()) {
        throw new LoraPlusError({
          code: 'model/shape-mismatch',
          message: `weight ${k} has shape [${got}] but config.json implies [${shape}]`,
          file: this.dir,
          hint: 'Check that config.json and model.safetensors come from the same model.',
        });
      }
    }
  }
}
