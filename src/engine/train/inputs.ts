// Opening what a run works on: the Hugging Face model folder (config.json, weights, tokenizer) and the data sets.
// Shared by train, eval and generate.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights } from '../../adapters/safetensors';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import { createModel } from '../../models/create';
import { FAMILIES, type Family } from '../../models/registry';
import { loadTokenizer, type TextTokenizer } from '../../models/tokenizer';
import type { BatchTensors, HFConfig, Model, Task } from '../../models/types';
import {
  buildCausalLM,
  buildClassification,
  collateCausal,
  collateClassification,
  collectLabels,
  readRows,
  splitEval,
  type Batch,
  type CausalLMData,
  type ClsData,
} from '../data/datasets';
import { Rng } from '../data/rng';

export interface ModelFolder {
  dir: string;
  config: HFConfig;
  family: Family;
  tokenizer: TextTokenizer;
}

/** Reads config.json and the tokenizer; the weights are read by `buildModel`. */
export function openModelFolder(dir: string): ModelFolder {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new LoraPlusError({
      code: 'model/not-found',
      message: `model folder ${dir} does not exist`,
      yamlPath: 'model',
      hint: 'Point `model` at a folder downloaded from the Hugging Face Hub (config.json, model.safetensors, tokenizer.json).',
    });
  }
  const configFile = path.join(dir, 'config.json');
  if (!fs.existsSync(configFile)) {
    throw new LoraPlusError({
      code: 'model/no-config',
      message: `${dir} has no config.json`,
      file: dir,
      hint: 'Download the whole model folder from the Hub, not only the weights.',
    });
  }
  let config: HFConfig;
  try {
    config = JSON.parse(fs.readFileSync(configFile, 'utf8')) as HFConfig;
  } catch (err) {
    throw new LoraPlusError({
      code: 'model/bad-config',
      message: `config.json is not valid JSON (${(err as Error).message})`,
      file: configFile,
    });
  }
  const family = FAMILIES[String(config.model_type)];
  if (!family) {
    throw new LoraPlusError({
      code: 'model/unsupported',
      message: `model_type '${config.model_type}' is not supported`,
      file: configFile,
      hint: `Supported model types: ${Object.keys(FAMILIES).join(', ')}.`,
    });
  }
  return { dir, config, family, tokenizer: loadTokenizer(dir, config as Record<string, number>) };
}

export function buildModel(folder: ModelFolder, task: Task, numLabels: number, rng: Rng): Model {
  const normal = () => {
    // Box–Muller from the run's seeded generator, so a fresh head is the same on every run with the same seed.
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  return createModel(folder.family, folder.config, loadModelWeights(folder.dir), {
    task,
    numLabels,
    normal,
    dir: folder.dir,
  });
}

export type Dataset = CausalLMData | ClsData;

export interface DataSplits {
  train: Dataset;
  eval: Dataset | null;
  labels: string[]; // classification label names, in label-id order (empty for causal LM)
}

/** Reads and tokenizes data.train and data.eval (or splits eval_fraction off train). */
export function loadData(config: TrainConfig, tok: TextTokenizer): DataSplits {
  const s = readSplits(config);
  const train = buildSet(config, tok, s.trainRows, config.data.train, s.labels);
  const evalSet = s.evalRows
    ? buildSet(config, tok, s.evalRows, config.data.eval ?? config.data.train, s.labels)
    : null;
  return { train, eval: evalSet, labels: s.labels };
}

/** Only the eval set (data.train when there is none), with the label order training used. */
export function loadEvalData(config: TrainConfig, tok: TextTokenizer): { eval: Dataset; labels: string[] } {
  const s = readSplits(config);
  const rows = s.evalRows ?? s.trainRows;
  return { eval: buildSet(config, tok, rows, config.data.eval ?? config.data.train, s.labels), labels: s.labels };
}

type Rows = Record<string, unknown>[];

function readSplits(config: TrainConfig): { trainRows: Rows; evalRows: Rows | null; labels: string[] } {
  const d = config.data;
  let trainRows = readRows(d.train);
  let evalRows = d.eval ? readRows(d.eval) : null;
  if (!evalRows && d.eval_fraction > 0)
    ({ train: trainRows, eval: evalRows } = splitEval(trainRows, d.eval_fraction, config.training.seed));
  if (d.max_train_samples) trainRows = trainRows.slice(0, d.max_train_samples);
  if (evalRows && d.max_eval_samples) evalRows = evalRows.slice(0, d.max_eval_samples);
  // Label ids follow data.labels, else the training data's labels, so eval scores the head the way it was trained.
  const labels =
    config.task === 'causal-lm'
      ? []
      : d.labels?.length
        ? d.labels
        : collectLabels(trainRows, { labelField: d.label_field, file: d.train });
  return { trainRows, evalRows, labels };
}

function buildSet(config: TrainConfig, tok: TextTokenizer, rows: Rows, file: string, labels: string[]): Dataset {
  const d = config.data;
  return config.task === 'causal-lm'
    ? buildCausalLM(rows, tok, { textField: d.text_field, maxLength: d.max_length, file })
    : buildClassification(rows, tok, {
        textField: d.text_field,
        textPairField: d.text_pair_field,
        labelField: d.label_field,
        labels,
        maxLength: d.max_length,
        file,
      });
}

export function datasetSize(ds: Dataset): number {
  return ds.kind === 'causal-lm' ? ds.blocks.length : ds.examples.length;
}

/** Padded batches are a multiple of 8 long: the wasm attention kernel needs sequence lengths that are multiples of 4
 *  (padding is masked, so results do not change). */
const PAD_TO_MULTIPLE_OF = 8;

export function collate(ds: Dataset, indices: number[], padId: number): Batch {
  return ds.kind === 'causal-lm'
    ? collateCausal(indices.map((i) => ds.blocks[i]))
    : collateClassification(
        indices.map((i) => ds.examples[i]),
        padId,
        PAD_TO_MULTIPLE_OF,
      );
}

export function toTensors(b: Batch): BatchTensors {
  return {
    inputIds: tf.tensor2d(b.inputIds, [b.batch, b.seq], 'int32'),
    attentionMask: tf.tensor2d(b.attentionMask, [b.batch, b.seq], 'int32'),
    typeIds: tf.tensor2d(b.typeIds, [b.batch, b.seq], 'int32'),
    labels: b.labels ? tf.tensor1d(b.labels, 'int32') : null,
  };
}

export function disposeBatch(b: BatchTensors): void {
  tf.dispose([b.inputIds, b.attentionMask, ...(b.typeIds ? [b.typeIds] : []), ...(b.labels ? [b.labels] : [])]);
}

/** The id used to pad classification batches: pad_token_id, else eos, else 0 (as transformers falls back). */
export function padId(folder: ModelFolder): number {
  return (
    folder.tokenizer.padId ??
    (typeof folder.config.pad_token_id === 'number' ? folder.config.pad_token_id : null) ??
    folder.tokenizer.eosId ??
    0
  );
}
