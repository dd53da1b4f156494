// The data of an exported job exactly as our engine sees it: every example tokenized by our own pipeline
// (data/, train/inputs.ts), and the micro-batches of every step in our order (epochOrder), so train.py never
// tokenizes or shuffles and both stacks train on identical batches.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TrainConfig } from '../../config/schema';
import { epochOrder } from '../data/datasets';
import { collate, datasetSize, type Dataset } from '../train/inputs';

/**
 * One example as transformers takes it: labels -100 where a token carries no loss (causal LM and sft). A packed sft
 * block has position_ids restarting at 0 for each of its examples and no attention_mask: from those restarts
 * transformers builds the block-diagonal causal mask that keeps the examples apart, as our segment ids do.
 */
export interface ExportRow {
  input_ids: number[];
  attention_mask?: number[];
  position_ids?: number[];
  token_type_ids?: number[];
  labels: number[] | number; // per token (causal LM, sft) or the class id (classification)
}

/** The rows of a data set in its order, each cut to its own tokens (collate pads; the padding is dropped here). */
export function exportRows(ds: Dataset, padId: number): ExportRow[] {
  return Array.from({ length: datasetSize(ds) }, (_, i) => {
    const b = collate(ds, [i], padId);
    const n = b.attentionMask.reduce((s, m) => s + m, 0); // padding is on the right
    const ids = Array.from(b.inputIds.subarray(0, n));
    const row: ExportRow = b.positionIds
      ? { input_ids: ids, position_ids: Array.from(b.positionIds.subarray(0, n)), labels: ids }
      : { input_ids: ids, attention_mask: Array(n).fill(1) as number[], labels: ids };
    if (b.typeIds.some((x) => x !== 0)) row.token_type_ids = Array.from(b.typeIds.subarray(0, n));
    if (b.labels) row.labels = b.labels[0];
    else if (b.lossMask) row.labels = ids.map((id, t) => (b.lossMask![t] ? id : -100));
    return row;
  });
}

/** The example indices of every micro-batch of the run, in training order: what Trainer.gradients() draws. */
export function microBatches(t: TrainConfig['training'], n: number, totalSteps: number): number[][] {
  const perEpoch = Math.ceil(n / t.batch_size);
  const orders = new Map<number, number[]>();
  return Array.from({ length: totalSteps * t.gradient_accumulation_steps }, (_, k) => {
    const epoch = Math.floor(k / perEpoch);
    if (!orders.has(epoch)) orders.set(epoch, epochOrder(n, t.seed, epoch, t.shuffle));
    const start = (k % perEpoch) * t.batch_size;
    return orders.get(epoch)!.slice(start, start + t.batch_size);
  });
}

/** Optimizer steps of a run over n examples: max_steps, else epochs (as Trainer.open counts them). */
export function totalSteps(t: TrainConfig['training'], n: number): number {
  const stepsPerEpoch = Math.max(1, Math.floor(Math.ceil(n / t.batch_size) / t.gradient_accumulation_steps));
  return t.max_steps ?? Math.max(1, Math.ceil((t.epochs ?? 1) * stepsPerEpoch));
}

export function writeJsonl(file: string, rows: unknown[]): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, rows.map((r) => `${JSON.stringify(r)}\n`).join(''));
}
