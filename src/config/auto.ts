// `learning_rate: auto` and `loraplus_lr_ratio: auto`: the two keys a tune picks (`loraplus tune`, or `train` of such
// a config, which tunes first). A validated config may still say `auto` (TunableConfig); train() takes only a config
// with numbers (TrainConfig), so nothing trains at a value nobody chose.
import { LoraPlusError } from '../protocol/errors';
import { defaults } from './schema';
import type { TrainConfig, TunableConfig } from './schema';

export const AUTO_KEYS = ['learning_rate', 'loraplus_lr_ratio'] as const;
export type AutoKey = (typeof AUTO_KEYS)[number];

/** The keys of `training` that say `auto`, in AUTO_KEYS order. */
export function autoKeys(config: TunableConfig): AutoKey[] {
  return AUTO_KEYS.filter((k) => config.training[k] === 'auto');
}

export function isResolved(config: TunableConfig): config is TrainConfig {
  return autoKeys(config).length === 0;
}

/**
 * The config with the defaults in place of `auto`: for what does not depend on those values (the checks against
 * the model and data, an evaluation, the memory estimate). Never for training.
 */
export function withAutoDefaults(config: TunableConfig): TrainConfig {
  if (isResolved(config)) return config;
  const training = { ...config.training };
  for (const k of autoKeys(config)) training[k] = defaults.training[k];
  return { ...config, training } as TrainConfig;
}

/** The config as train() takes it, or a LoraPlusError saying that `auto` needs a tune. */
export function requireResolved(config: TunableConfig, file?: string): TrainConfig {
  const keys = autoKeys(config);
  if (!keys.length) return config as TrainConfig;
  throw new LoraPlusError({
    code: 'config/auto',
    message: `${keys.join(' and ')} ${keys.length > 1 ? 'are' : 'is'} auto: a tune picks ${keys.length > 1 ? 'them' : 'it'} first`,
    file,
    yamlPath: `training.${keys[0]}`,
    hint: "Run 'loraplus tune CONFIG' or 'loraplus train CONFIG' (it tunes first), or write a number.",
  });
}

/** `--resume` (or Resume) of a config that says auto: it names no run; the tune's trials are runs of their own. */
export function resumeAutoError(config: TunableConfig, file: string): LoraPlusError {
  const keys = autoKeys(config);
  return new LoraPlusError({
    code: 'config/resume-auto',
    message: `${keys.join(' and ')} ${keys.length > 1 ? 'are' : 'is'} auto, so this config names no run to resume`,
    file,
    hint:
      "Resume a trial of the tune with its own config: 'loraplus train <trial>/config.yaml --run-dir <trial> " +
      "--resume', or start a new tune.",
  });
}
