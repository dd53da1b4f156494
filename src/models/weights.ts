// The checkpoint as a family's constructor reads it: host tensors by module path (keys already normalised), the
// checks every loader makes, and tf tensors made on request. Only the constructor holds it, so the host copies can be
// freed once the model is built. Each weight the model uses is checked once, as it becomes a tensor: a float dtype
// (an embedding relabelled I32 would be read as huge floats) and no NaN/Inf (one pass over its values: 0.3-0.8 ms
// for stories260k's 260k weights, of the ~6.5 ms that building it takes, on a busy 2-core machine).
import * as tf from '@tensorflow/tfjs';
import { countNonFinite, FLOAT_DTYPES, storedDtype, type HostTensor } from '../adapters/safetensors';
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

  /** New float32 tensors of weights `keys` (the caller owns them), made once every one of them is checked, so a
   *  refused weight leaves nothing half-made. */
  tensors(keys: string[]): tf.Tensor[] {
    const host = keys.map((k) => this.checked(k));
    return host.map((w) => tf.tensor(w.data, w.shape, 'float32'));
  }

  /** A new float32 tensor of weight `key` (the caller owns it), once its dtype and values are checked. */
  tensor(key: string): tf.Tensor {
    return this.tensors([key])[0];
  }

  // A weight the model uses as floats: stored with a float dtype, and finite.
  private checked(key: string): HostTensor {
    const w = this.weights.get(key);
    if (!w) throw new Error(`internal: no weight named ${key}`);
    if (w.dtype !== 'float32') {
      throw new LoraPlusError({
        code: 'model/bad-dtype',
        message:
          `weight ${key} is stored as ${storedDtype(w) ?? 'an integer dtype'}, but the model uses it as floats ` +
          `(${FLOAT_DTYPES.join(', ')})`,
        file: this.dir,
        hint: 'The checkpoint is damaged or was converted wrongly: download or export it again.',
      });
    }
    const bad = countNonFinite(w.data);
    if (bad) {
      throw new LoraPlusError({
        code: 'model/non-finite',
        message: `weight ${key} holds ${bad} NaN/Inf value${bad > 1 ? 's' : ''} (of ${w.data.length})`,
        file: this.dir,
        hint: 'The checkpoint is damaged (or was saved after training diverged): download or export it again.',
      });
    }
    return w;
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
