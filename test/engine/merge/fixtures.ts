// Adapters for the merge tests: random but deterministic, with non-zero lora_B (a zero B would merge to the base
// model and no test could fail), on the shared checkpoints; and helpers to read merged folders.
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  makeAdapterConfig,
  saveAdapter,
  type Adapter,
  type AdapterConfig,
  type LoraPair,
} from '../../../src/adapters/peft';
import type { HostTensor } from '../../../src/adapters/safetensors';
import { Rng } from '../../../src/engine/data/rng';
import { SHARED, tempDir } from '../../helpers/shared';

export const GPT2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
export const BERT = path.join(SHARED, 'models', 'tiny-random-bert');

export function rand(shape: number[], rng: Rng, scale: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: Float32Array.from({ length: n }, () => (rng.next() * 2 - 1) * scale) };
}

/** modules: [path, out, in]. */
function loraOf(modules: [string, number, number][], r: number, rng: Rng): Map<string, LoraPair> {
  return new Map(modules.map(([m, out, inF]) => [m, { A: rand([r, inF], rng, 0.3), B: rand([out, r], rng, 0.1) }]));
}

export function llamaAdapter(base: string, seed: number, r = 4, extra: Partial<AdapterConfig> = {}): Adapter {
  const modules: [string, number, number][] = [];
  for (let i = 0; i < 5; i++)
    modules.push(
      [`model.layers.${i}.self_attn.q_proj`, 64, 64],
      [`model.layers.${i}.self_attn.v_proj`, 32, 64],
      [`model.layers.${i}.mlp.down_proj`, 64, 172],
    );
  return {
    config: makeAdapterConfig({
      r,
      lora_alpha: 2 * r,
      target_modules: ['q_proj', 'v_proj', 'down_proj'],
      base_model_name_or_path: base,
      task_type: 'CAUSAL_LM',
      ...extra,
    }),
    lora: loraOf(modules, r, new Rng(seed)),
    modulesToSave: new Map(),
  };
}

/** GPT-2's Conv1D modules (stored [in, out]: fan_in_fan_out); with `labels`, a sequence classifier with a `score` head. */
export function gpt2Adapter(seed: number, labels = 0): Adapter {
  const rng = new Rng(seed);
  const modules: [string, number, number][] = [];
  for (let i = 0; i < 2; i++)
    modules.push(
      [`transformer.h.${i}.attn.c_attn`, 96, 32],
      [`transformer.h.${i}.attn.c_proj`, 32, 32],
      [`transformer.h.${i}.mlp.c_fc`, 128, 32],
      [`transformer.h.${i}.mlp.c_proj`, 32, 128],
    );
  const lora = loraOf(modules, 4, rng);
  const config = makeAdapterConfig({
    r: 4,
    lora_alpha: 8,
    target_modules: ['c_attn', 'c_proj', 'c_fc'],
    base_model_name_or_path: GPT2,
    task_type: labels ? 'SEQ_CLS' : 'CAUSAL_LM',
    modules_to_save: labels ? ['score'] : null,
  });
  return { config, lora, modulesToSave: new Map(labels ? [['score.weight', rand([labels, 32], rng, 0.5)]] : []) };
}

/** BERT query/value LoRA and a trained `classifier` head (modules_to_save), as PEFT's SEQ_CLS adapters. */
export function bertAdapter(seed: number): Adapter {
  const rng = new Rng(seed);
  const modules: [string, number, number][] = [];
  for (let i = 0; i < 2; i++)
    modules.push(
      [`bert.encoder.layer.${i}.attention.self.query`, 32, 32],
      [`bert.encoder.layer.${i}.attention.self.value`, 32, 32],
    );
  const lora = loraOf(modules, 4, rng);
  const config = makeAdapterConfig({
    r: 4,
    lora_alpha: 8,
    target_modules: ['query', 'value'],
    base_model_name_or_path: BERT,
    task_type: 'SEQ_CLS',
    modules_to_save: ['classifier'],
  });
  return {
    config,
    lora,
    modulesToSave: new Map([
      ['classifier.weight', rand([2, 32], rng, 0.5)],
      ['classifier.bias', rand([2], rng, 0.5)],
    ]),
  };
}

/** Saves `adapter` into a fresh folder and returns it. */
export function saved(adapter: Adapter): string {
  const dir = path.join(tempDir('loraplus-merge-'), 'adapter');
  saveAdapter(dir, adapter);
  return dir;
}

/** Tensor names, dtypes and shapes of a merged (or base) folder, from the safetensors headers. */
export function headerOf(dir: string): Map<string, { dtype: string; shape: number[] }> {
  const out = new Map<string, { dtype: string; shape: number[] }>();
  const index = path.join(dir, 'model.safetensors.index.json');
  const files = fs.existsSync(index)
    ? [
        ...new Set(
          Object.values(
            (JSON.parse(fs.readFileSync(index, 'utf8')) as { weight_map: Record<string, string> }).weight_map,
          ),
        ),
      ]
    : ['model.safetensors'];
  for (const f of files) {
    const buf = fs.readFileSync(path.join(dir, f));
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
      string,
      { dtype: string; shape: number[] }
    >;
    for (const [k, v] of Object.entries(header))
      if (k !== '__metadata__') out.set(k, { dtype: v.dtype, shape: v.shape });
  }
  return out;
}
