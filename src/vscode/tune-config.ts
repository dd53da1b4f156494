// "Train with these settings": the tune's config again, with the winner's learning_rate, loraplus_lr_ratio (and
// optimizer) written as numbers in place of `auto`, next to the original so its relative paths still resolve. The
// YAML is edited, not rewritten: the user's comments, order and other keys stay. Pure (no `vscode`, no files):
// tune-winner.ts writes and opens the result; the tests check it.
import * as path from 'node:path';
import { isScalar, parseDocument, type Document, type Scalar } from 'yaml';
import { fmtSetting, usesRatio, type TuneWinner } from '../protocol/tune';

const SUFFIXES = ['.lora.yaml', '.loraplus.yaml']; // what the extension recognises as a config by its name

/** Where the tuned config goes: t.lora.yaml → t.tuned.lora.yaml; loraplus.yaml and x.yaml → *.tuned.lora.yaml. */
export function tunedConfigPath(original: string): string {
  const base = path.basename(original);
  const suffix = SUFFIXES.find((s) => base.endsWith(s)) ?? '';
  const stem = suffix ? base.slice(0, -suffix.length) : base.replace(/\.ya?ml$/, '');
  return path.join(path.dirname(original), `${stem}.tuned${suffix || '.lora.yaml'}`);
}

/**
 * The original config's text with the winner's settings (λ 1 for an optimizer without one, as its trials ran).
 * `run_name`, if set, gets "-tuned" (the tune took the original name for its folder). The optimizer is written when
 * the config names one or the winner's is not AdamW (so configs stay valid where the schema has no optimizer key).
 */
export function tunedConfigText(text: string, tuneName: string, w: TuneWinner): string {
  const doc = parseDocument(text);
  const { learning_rate: lr, loraplus_lr_ratio: ratio, optimizer } = w.settings;
  setNumber(doc, ['training', 'learning_rate'], lr);
  setNumber(doc, ['training', 'loraplus_lr_ratio'], ratio);
  if (doc.hasIn(['training', 'optimizer']) || optimizer !== 'adamw') doc.setIn(['training', 'optimizer'], optimizer);
  const runName = doc.get('run_name');
  if (typeof runName === 'string' && runName) doc.set('run_name', `${runName}-tuned`);
  const lrB = fmtSetting(Number((lr * ratio).toPrecision(4)));
  const rates = usesRatio(optimizer) ? `λ ${fmtSetting(ratio)} (lr_B ${lrB})` : 'no λ';
  const note = [
    ` Tuned by LoRA+ (tune ${tuneName}): lr_A ${fmtSetting(lr)}, ${rates}, ${optimizer};`,
    ` the winner ${w.trial} reached ${figure(w)} (${w.run_dir}).`,
  ].join('\n');
  doc.commentBefore = doc.commentBefore ? `${note}\n${doc.commentBefore}` : note;
  return doc.toString();
}

/** Replaces the value (keeping the line's comment) or adds the key; small rates in exponent form (5e-4). */
function setNumber(doc: Document, keys: string[], value: number): void {
  const node = doc.getIn(keys, true);
  const scalar = isScalar(node) ? node : (doc.createNode(value) as Scalar);
  scalar.value = value;
  scalar.format = value !== 0 && Math.abs(value) < 0.01 ? 'EXP' : undefined;
  if (!isScalar(node)) doc.setIn(keys, scalar);
}

function figure(w: TuneWinner): string {
  const e = w.eval;
  if (e.accuracy !== undefined) return `accuracy ${(100 * e.accuracy).toFixed(1)}% on ${e.examples} eval examples`;
  if (e.perplexity !== undefined) return `perplexity ${e.perplexity.toFixed(2)} on ${e.examples} eval examples`;
  return `eval loss ${e.loss.toFixed(4)} on ${e.examples} eval examples`;
}
