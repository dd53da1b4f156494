// `loraplus.json` beside adapter_config.json: how an adapter was trained, in our own file, so adapter_config.json
// holds PEFT's LoraConfig fields only (PEFT warns about any other key on every from_pretrained) and Python loads our
// adapters without a warning. PEFT ignores files it does not know in an adapter folder.
//   { "loraplus_lr_ratio": 16, "learning_rate": 0.0005, "optimizer": "adamw", "optimizer_args": {} }
// Adapters written before this file carried loraplus_lr_ratio inside adapter_config.json: readLoraPlus still takes
// it from there, and saveAdapter never writes it there again.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LoraPlusError } from '../protocol/errors';
import { isObject } from '../protocol/json';
import { writeJsonAtomic } from './files';

export const LORAPLUS_FILE = 'loraplus.json';

/** Keys earlier versions wrote into adapter_config.json that are not PEFT's: moved to loraplus.json. */
export const NON_PEFT_KEYS = ['loraplus_lr_ratio'] as const;

/** The LoRA+ settings an adapter was trained with (none of them changes how it is applied). */
export interface LoraPlusSettings {
  loraplus_lr_ratio: number; // λ as applied: lr_B = learning_rate·λ (1 with riemannian and lorafa)
  learning_rate?: number; // η, lora_A's peak learning rate
  optimizer?: string; // training.optimizer: adamw (LoRA+), riemannian, lorafa
  optimizer_args?: Record<string, number>; // what the optimizer took beyond the config, e.g. {reg: 0.01}
}

export function writeLoraPlus(dir: string, settings: LoraPlusSettings): void {
  writeJsonAtomic(join(dir, LORAPLUS_FILE), settings);
}

/**
 * The settings from loraplus.json, else from an older adapter_config.json's own key (`config`), else null (a PEFT
 * adapter trained elsewhere says nothing about λ).
 */
export function readLoraPlus(dir: string, config: Record<string, unknown>): LoraPlusSettings | null {
  const file = join(dir, LORAPLUS_FILE);
  if (!existsSync(file)) {
    const legacy = config.loraplus_lr_ratio;
    return typeof legacy === 'number' && Number.isFinite(legacy) ? { loraplus_lr_ratio: legacy } : null;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw bad(`not valid JSON (${(err as Error).message})`, file);
  }
  if (!isObject(raw) || typeof raw.loraplus_lr_ratio !== 'number' || !Number.isFinite(raw.loraplus_lr_ratio))
    throw bad('loraplus_lr_ratio must be a number', file);
  return raw as unknown as LoraPlusSettings;
}

/** adapter_config.json's fields without ours (a legacy key read from an older adapter is not written back). */
export function withoutNonPeftKeys<T extends Record<string, unknown>>(config: T): T {
  const out = { ...config };
  for (const k of NON_PEFT_KEYS) delete out[k];
  return out;
}

const bad = (message: string, file: string) =>
  new LoraPlusError({
    code: 'adapter/bad-config',
    message,
    file,
    hint: `Fix the file, or delete ${LORAPLUS_FILE} (the adapter loads without it).`,
  });
