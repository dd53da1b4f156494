// Each compared item's caption: what sets it apart from the others, in a few words ("λ 16" vs "λ 1", "lr 2e-3 ·
// step 2"), so legends, table heads and pick lists say what differs instead of repeating run names. Built from the
// config keys that differ (report.differs), most telling first, and the step when checkpoints of one run meet.
import * as path from 'node:path';
import type { CompareItem, ConfigValue } from '../../protocol/compare';
import { fmtSetting } from '../../protocol/tune';

/** The keys a caption may name, most telling first, with their short names ('' = the value alone). */
const SHORT: [string, string][] = [
  ['training.optimizer', ''],
  ['training.loraplus_lr_ratio', 'λ'],
  ['training.learning_rate', 'lr'],
  ['lora.r', 'r'],
  ['lora.lora_alpha', 'α'],
  ['lora.target_modules', 'targets'],
  ['training.seed', 'seed'],
  ['model', ''],
  ['task', ''],
  ['training.max_steps', 'steps'],
  ['training.epochs', 'epochs'],
  ['training.batch_size', 'batch'],
  ['lora.use_rslora', 'rslora'],
  ['lora.lora_dropout', 'dropout'],
  ['training.weight_decay', 'wd'],
  ['training.warmup_steps', 'warmup'],
  ['training.lr_scheduler', ''],
  ['data.train', 'data'],
];
/** Keys that differ between runs without telling them apart. */
const NOISE = /^(run_name|output_dir|device)$|_every$|save_total_limit$/;
const MAX_PARTS = 3;

/** Sets `caption` on every item; all stay null unless every item gets a distinct one. */
export function captionItems(items: CompareItem[], differs: string[]): void {
  const short = new Map(SHORT);
  const keys = differs
    .filter((k) => !NOISE.test(k))
    .sort((a, b) => rank(a) - rank(b))
    .slice(0, MAX_PARTS);
  const runs = items.map((it) => it.run_dir).filter(Boolean);
  const stepsTell = new Set(runs).size < runs.length && new Set(items.map((it) => it.step)).size > 1;
  const captions = items.map((it) => {
    const parts = keys
      .filter((k) => it.config[k] !== undefined)
      .map((k) => [short.get(k) ?? k.slice(k.lastIndexOf('.') + 1), show(it.config[k]!)].filter(Boolean).join(' '));
    if (stepsTell && it.step !== null) parts.push(`step ${it.step}`);
    return parts.join(' · ') || null;
  });
  const distinct = captions.every((c) => c !== null) && new Set(captions).size === captions.length;
  items.forEach((it, i) => (it.caption = distinct && items.length > 1 ? captions[i] : null));
}

function rank(key: string): number {
  const i = SHORT.findIndex(([k]) => k === key);
  return i < 0 ? SHORT.length : i;
}

function show(v: ConfigValue): string {
  if (typeof v === 'number') return fmtSetting(v);
  if (Array.isArray(v)) return v.map(show).join(',');
  if (typeof v === 'string' && /[\\/]/.test(v)) return path.basename(v); // a model or data path
  return String(v);
}
