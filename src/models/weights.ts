// Checks shared by every family's loader: the checkpoint has each weight the architecture needs, in the shape
// config.json implies.
import type { HostTensor } from '../adapters/safetensors';
import { LoraPlusError } from '../protocol/errors';

export function checkWeights(weights: Map<string, HostTensor>, required: Map<string, number[]>, dir: string): void {
  const missing = [...required.keys()].filter((k) => !weights.has(k));
  if (missing.length) {
    throw new LoraPlusError({
      code: 'model/missing-weights',
      message: `the checkpoint lacks ${missing.length} weight(s) this architecture needs, e.g. ${missing.slice(0, 3).join(', ')}`,
      file: dir,
      hint: 'Check that config.json and model.safetensors come from the same model.',
    });
  }
  for (const [k, shape] of required) {
    const got = weights.get(k)!.shape;
    if (got.join() !== shape.join()) {
      throw new LoraPlusError({
        code: 'model/shape-mismatch',
        message: `weight ${k} has shape [${got}] but config.json implies [${shape}]`,
        file: dir,
        hint: 'Check that config.json and model.safetensors come from the same model.',
      });
    }
  }
}
