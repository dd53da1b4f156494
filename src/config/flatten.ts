// Configs as flat dotted keys ({lora: {r: 8}} → {'lora.r': 8}), and which keys differ between configs: what
// `loraplus compare` shows side by side, and what a resume checks against the run it continues.
import type { ConfigValue } from '../protocol/compare';
import { isObject } from '../protocol/json';

/** {lora: {r: 8}} → {'lora.r': 8}; lists stay values. */
export function flattenConfig(
  obj: Record<string, unknown>,
  prefix = '',
  out: Record<string, ConfigValue> = {},
): Record<string, ConfigValue> {
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (isObject(v)) flattenConfig(v, key, out);
    else out[key] = (v === undefined ? null : v) as ConfigValue;
  }
  return out;
}

/** Keys of every item in first-seen order, and those whose values are not all equal (missing counts as a value). */
export function diffConfigs(configs: Record<string, ConfigValue>[]): { keys: string[]; differs: string[] } {
  const keys = [...new Set(configs.flatMap((c) => Object.keys(c)))];
  const same = (k: string) => new Set(configs.map((c) => (k in c ? JSON.stringify(c[k]) : '\u0000missing'))).size === 1;
  return { keys, differs: keys.filter((k) => !same(k)) };
}
