// The hover over learning_rate and loraplus_lr_ratio: both learning rates as the config stands now (lora_B at η·λ
// under LoRA+), computed from the text on every hover so it follows each edit; a comment written once would not.
import { parse } from 'yaml';
import { defaults } from '../../config/schema';
import { isObject } from '../../protocol/json';
import { usesRatio } from '../../protocol/tune';

const num = (x: number): string => String(Number(x.toPrecision(4)));

export function learningRatesInfo(text: string): string {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return ''; // broken YAML: the diagnostics say so
  }
  const t = isObject(doc) && isObject(doc.training) ? doc.training : {};
  const lr = t.learning_rate ?? defaults.training.learning_rate;
  const ratio = t.loraplus_lr_ratio ?? defaults.training.loraplus_lr_ratio;
  const optimizer = typeof t.optimizer === 'string' ? t.optimizer : defaults.training.optimizer;
  if (lr === 'auto' || ratio === 'auto')
    return 'With `auto`, a tune picks the rates before training (`loraplus tune`).';
  if (typeof lr !== 'number' || typeof ratio !== 'number') return '';
  if (!usesRatio(optimizer)) return `With \`optimizer: ${optimizer}\` every tensor trains at η = ${num(lr)} (no λ).`;
  const plain = ratio === 1 ? ' (λ = 1: plain LoRA, one rate for both)' : '';
  return (
    `In this config: lora_A trains at η = ${num(lr)}, lora_B (and 1-D tensors) at η·λ = ${num(lr)} × ${num(ratio)} ` +
    `= **${num(lr * ratio)}**${plain}.`
  );
}
