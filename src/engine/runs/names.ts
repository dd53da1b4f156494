// Run names. A run's name is its folder's name everywhere (explorer, dashboard, compare). The default is the config
// file's name and the settings that tell its runs apart, in the vocabulary of tune trials: sst2-cls-lr5e-4-ratio16.
// createRun adds -2, -3, … when it is taken, so default names never collide; `run_name` in the config wins. No
// file system here: rename.ts renames a run's folder.
import * as path from 'node:path';
import { defaults, type TrainConfig } from '../../config/schema';
import { fmtSetting, usesRatio } from '../../protocol/tune';

/** What run_name allows (src/config/schema.ts): a folder name on every OS, not a command-line flag. */
export const RUN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const MAX_NAME = 100;
/** Config file names that say nothing about the run: the model's folder name says more. */
const PLAIN_STEMS = new Set(['loraplus', 'config', 'lora', 'train', 'training']);

/** sst2-cls.lora.yaml → sst2-cls; loraplus.yaml or no file → the model's folder name; made a valid folder name. */
export function configStem(configFile: string | null | undefined, model: string): string {
  const base = configFile ? path.basename(configFile).replace(/(\.(lora|loraplus))?\.ya?ml$/i, '') : '';
  const stem = base && !PLAIN_STEMS.has(base.toLowerCase()) ? base : path.basename(model);
  const clean = stem
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/-+$/, '');
  return clean.slice(0, 60) || 'run';
}

/**
 * The default run name: `<config stem>-lr<η>-ratio<λ>`, as tune trials are named (riemannian and lorafa, which
 * have no λ: `-<optimizer>` instead), with `-r<r>` when r is not the default.
 */
export function runName(config: TrainConfig, configFile?: string | null): string {
  if (config.run_name) return config.run_name;
  const t = config.training;
  const parts = [configStem(configFile, config.model), `lr${fmtSetting(t.learning_rate)}`];
  parts.push(usesRatio(t.optimizer) ? `ratio${fmtSetting(t.loraplus_lr_ratio)}` : t.optimizer);
  if (config.lora.r !== defaults.lora.r) parts.push(`r${config.lora.r}`);
  return parts.join('-').slice(0, MAX_NAME);
}

/** Why `name` cannot name a run folder, or null. */
export function badRunName(name: string): string | null {
  if (!name) return 'Give a name.';
  if (name.length > MAX_NAME) return `At most ${MAX_NAME} characters.`;
  if (!RUN_NAME_PATTERN.test(name)) return "Letters, digits, '.', '_' and '-', starting with a letter or digit.";
  return null;
}
