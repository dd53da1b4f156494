// Checkpoint keys → the module paths a family builds. Two keys of one file may name the same weight (a bare
// `embed_tokens.weight` beside `model.embed_tokens.weight`, GPT-2's `h.0…` beside `transformer.h.0…`, or BERT's
// `LayerNorm.gamma` beside `LayerNorm.weight`): that is an error, never one silently overwriting the other. No TF.js
// here, so the config checks (inspect.ts) normalise header keys with the loaders' own code.
import { LoraPlusError } from '../protocol/errors';

/** `weights` with every key renamed by `rename`; `where` (the model folder) is named when two keys collide. */
export function renameKeys<T>(
  weights: Map<string, T>,
  rename: (key: string) => string,
  where?: string,
): Map<string, T> {
  const out = new Map<string, T>();
  const origin = new Map<string, string>(); // module path → the file's key
  for (const [key, value] of weights) {
    const name = rename(key);
    const first = origin.get(name);
    if (first !== undefined) {
      throw new LoraPlusError({
        code: 'model/duplicate-weight',
        message: `the checkpoint holds both '${first}' and '${key}', which are the same weight ('${name}')`,
        file: where,
        hint:
          'Keep one of them: the file mixes keys saved from the bare model with those of the full model. ' +
          'Save it again with save_pretrained, or download it again.',
      });
    }
    origin.set(name, key);
    out.set(name, value);
  }
  return out;
}
