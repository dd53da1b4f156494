// Rules of training.optimizer: settings the chosen optimizer does without. PEFT's riemannian and lorafa train lora_A
// and lora_B at one learning rate (λ means nothing there), only riemannian takes `reg`, and create_lorafa_optimizer
// fixes AdamW's betas and ε. A setting the run would quietly ignore is a warning, unless it is the value the run
// uses anyway or the default (a run's config.yaml writes every key out).
import { usesRatio } from '../protocol/tune';
import type { ProblemInit } from './problem';
import { defaults } from './schema';

type Obj = Record<string, unknown>;
type Report = (p: ProblemInit) => void;
type Written = (path: readonly string[]) => boolean;

/** The PEFT function behind each optimizer, as the messages name it. */
export const PEFT_FUNCTION: Record<string, string> = {
  adamw: 'create_loraplus_optimizer',
  riemannian: 'create_riemannian_optimizer',
  lorafa: 'create_lorafa_optimizer',
};

/** optimizer_args keys and the optimizers that take them. */
const ARG_OWNERS: Record<string, string[]> = { reg: ['riemannian'] };

/** lorafa's AdamW settings, fixed by create_lorafa_optimizer (betas (0.9, 0.999); it passes no eps: 1e-6). */
export const LORAFA_ADAM = { adam_beta1: 0.9, adam_beta2: 0.999, adam_epsilon: 1e-6 } as const;

export function checkOptimizer(training: Obj, written: Written, report: Report): void {
  const optimizer = training.optimizer;
  if (typeof optimizer !== 'string') return; // refused by the schema already
  const fn = PEFT_FUNCTION[optimizer];
  const ignored = (key: string[], why: string, users: string[]) =>
    report({
      severity: 'warning',
      code: 'config/ignored-by-optimizer',
      message: `${key.at(-1)} is ignored with optimizer ${optimizer}: ${why}`,
      path: ['training', ...key],
      at: 'key',
      hint: `Delete it, or set optimizer: ${users.join(' or ')} to use it.`,
      fix: { kind: 'removeKey', title: `Delete ${key.at(-1)}` },
    });
  const ratio = training.loraplus_lr_ratio;
  if (!usesRatio(optimizer) && written(['training', 'loraplus_lr_ratio']) && ratio !== 1 && ratio !== undefined) {
    const why = `PEFT's ${fn} trains lora_A and lora_B at learning_rate alone (there is no λ)`;
    ignored(['loraplus_lr_ratio'], why, ['adamw']);
  }
  const args = (training.optimizer_args ?? {}) as Obj;
  const argDefaults = defaults.training.optimizer_args as Obj;
  for (const [arg, owners] of Object.entries(ARG_OWNERS)) {
    if (owners.includes(optimizer) || !written(['training', 'optimizer_args', arg])) continue;
    if (args[arg] === argDefaults[arg] || args[arg] === undefined) continue;
    const takes = optimizer === 'lorafa' ? 'it takes no optimizer_args' : `only ${owners.join(', ')} takes it`;
    ignored(['optimizer_args', arg], `${takes} (PEFT's ${fn})`, owners);
  }
  if (optimizer !== 'lorafa') return;
  for (const [k, used] of Object.entries(LORAFA_ADAM)) {
    const v = training[k];
    if (!written(['training', k]) || v === used || v === defaults.training[k as keyof typeof LORAFA_ADAM]) continue;
    if (v === undefined) continue;
    const why = `PEFT's ${fn} fixes AdamW's betas at (0.9, 0.999) and ε at 1e-6`;
    ignored([k], why, ['adamw', 'riemannian']);
  }
}
