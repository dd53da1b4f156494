// Opening what a run works on: the Hugging Face model folder (config.json, weights, tokenizer) and the data sets.
// Shared by train, eval and generate.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadModelWeights, releaseAfterUpload } from '../../adapters/safetensors';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import { createModel } from '../../models/create';
import { FAMILIES, type Family } from '../../models/registry';
import { loadTokenizer, type TextTokenizer } from '../../models/tokenizer';
import type { BatchTensors, HFConfig, Model, Task } from '../../models/types';
import type { LogEvent } from '../../protocol/events';
import {
  buildCausalLM,
  buildClassification,
  collateCausal,
  collateClassification,
  collectLabels,
  countTokens,
  readRows,
  splitEval,
  type Batch,
  type CausalLMData,
  type ClsData,
} from '../data/datasets';
import { singleClass } from '../data/labels';
import { Rng } from '../data/rng';
import { chatTemplateSource, loadChatTemplate, templateTokens } from '../../models/chat-template';
import { chatTemplate } from '../data/chat-render';
import { buildSft, collatePacked, collateSft, type SftBuildOptions, type SftData } from '../data/sft-data';

export interface ModelFolder {
  dir: string;
  config: HFConfig;
  family: Family;
  tokenizer: TextTokenizer;
  /** The chat template (Jinja) transformers would use by default, or null (models/chat-template.ts). */
  chatTemplate: string | null;
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
  const tokenizer = loadTokenizer(dir, config as Record<string, number>);
  return { dir, config, family, tokenizer, chatTemplate: loadChatTemplate(dir) };
}

export function buildModel(folder: ModelFolder, task: Task, numLabels: number, rng: Rng): Model {
  const normal = () => {
    // Box–Muller from the run's seeded generator, so a fresh head is the same on every run with the same seed.
    const u = Math.max(rng.next(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng.next());
  };
  // Nothing reads the host weights after the build: each is freed as soon as the backend has it.
  return createModel(folder.family, folder.config, releaseAfterUpload(loadModelWeights(folder.dir)), {
    task,
    numLabels,
    normal,
    dir: folder.dir,
  });
}

export type Dataset = CausalLMData | ClsData | SftData;

export interface DataSplits {
  train: Dataset;
  eval: Dataset | null;
  labels: string[]; // classification label names, in label-id order (empty for causal LM)
}

export interface LoadOptions {
  /** Where progress goes: a `log` event every `progressEveryMs` while a file takes longer than that to prepare. */
  emit?: (e: LogEvent) => void;
  progressEveryMs?: number;
  /** What pre-tokenized ids must fit; by default the model's config.json (vocab_size, type_vocab_size), else the
   *  tokenizer's size. */
  vocabSize?: number;
  typeVocabSize?: number | null;
}

/** Reads and tokenizes data.train and data.eval (or splits eval_fraction off train). */
export function loadData(config: TrainConfig, tok: TextTokenizer, o: LoadOptions = {}): DataSplits {
  const s = readSplits(config);
  const train = buildSet(config, tok, s.trainRows, config.data.train, s, o);
  if (train.kind === 'sequence-classification') {
    const counts = s.labels.map(() => 0);
    for (const e of train.examples) counts[e.label]++;
    const d = config.data;
    const cut = [
      ...(d.max_train_samples ? [`data.max_train_samples (${d.max_train_samples}) keeps only the first rows`] : []),
      ...(!d.eval && d.eval_fraction > 0 ? [`data.eval_fraction holds ${d.eval_fraction} of them out`] : []),
    ];
    const err = singleClass(s.labels, counts, {
      file: d.train,
      given: !s.labelsFrom,
      note: cut.length ? `; ${cut.join(', and ')}` : '',
    });
    if (err) throw err;
  }
  const evalSet = s.evalRows ? buildSet(config, tok, s.evalRows, evalFile(config), s, o) : null;
  return { train, eval: evalSet, labels: s.labels };
}

/** Only the eval set (data.train when there is none), with the label order training used. */
export function loadEvalData(
  config: TrainConfig,
  tok: TextTokenizer,
  o: LoadOptions = {},
): { eval: Dataset; labels: string[] } {
  const s = readSplits(config);
  const rows = s.evalRows ?? s.trainRows;
  return { eval: buildSet(config, tok, rows, evalFile(config), s, o), labels: s.labels };
}

const evalFile = (config: TrainConfig): string => config.data.eval ?? config.data.train;

type Rows = Record<string, unknown>[];
interface Splits {
  trainRows: Rows;
  evalRows: Rows | null;
  labels: string[];
  labelsFrom: string | null; // the file the labels were collected from; null: data.labels
}

function readSplits(config: TrainConfig): Splits {
  const d = config.data;
  let trainRows = nonEmpty(readRows(d.train), d.train, 'data.train');
  let evalRows = d.eval ? nonEmpty(readRows(d.eval), d.eval, 'data.eval') : null;
  if (!evalRows && d.eval_fraction > 0)
    ({ train: trainRows, eval: evalRows } = splitEval(trainRows, d.eval_fraction, config.training.seed));
  if (d.max_train_samples) trainRows = trainRows.slice(0, d.max_train_samples);
  if (evalRows && d.max_eval_samples) evalRows = evalRows.slice(0, d.max_eval_samples);
  // Label ids follow data.labels, else the training data's labels, so eval scores the head the way it was trained.
  if (config.task !== 'sequence-classification') return { trainRows, evalRows, labels: [], labelsFrom: null };
  if (d.labels?.length) return { trainRows, evalRows, labels: d.labels, labelsFrom: null };
  const labels = collectLabels(trainRows, { labelField: d.label_field, file: d.train });
  return { trainRows, evalRows, labels, labelsFrom: d.train };
}

/** A file with no rows (empty, or only a header) trains or scores nothing: say so, not "max_length is too long". */
function nonEmpty(rows: Rows, file: string, yamlPath: string): Rows {
  if (rows.length) return rows;
  throw new LoraPlusError({
    code: 'data/empty',
    message: `${path.basename(file)} has no data rows`,
    file,
    yamlPath,
    hint: 'The file is empty or holds only a header: point the config at the data, or add rows.',
  });
}

function buildSet(config: TrainConfig, tok: TextTokenizer, rows: Rows, file: string, s: Splits, o: LoadOptions) {
  const d = config.data;
  const limits = idLimits(config.model, tok, o);
  const part = file === d.train && rows !== s.trainRows ? ' (eval rows)' : '';
  const progress = dataProgress(`${path.basename(file)}${part}`, rows.length, o);
  const common = { maxLength: d.max_length, file, ...limits, onRow: progress.row };
  const ds: Dataset =
    config.task === 'sft'
      ? buildSft(rows, tok, { ...sftOptions(config), file, maxLength: d.max_length, onRow: progress.row })
      : config.task === 'causal-lm'
        ? buildCausalLM(rows, tok, { ...common, textField: d.text_field })
        : buildClassification(rows, tok, {
            ...common,
            textField: d.text_field,
            textPairField: d.text_pair_field,
            labelField: d.label_field,
            labels: s.labels,
            labelsFrom: s.labelsFrom,
          });
  progress.end(ds.kind === 'sft' ? ds.examples.reduce((n, e) => n + e.ids.length, 0) : countTokens(ds));
  return ds;
}

/** What the sft data needs of the model folder: its chat template (or data.chat_template) and special tokens. */
function sftOptions(config: TrainConfig): Omit<SftBuildOptions, 'file' | 'maxLength' | 'onRow'> {
  const d = config.data;
  const { tokens, special } = templateTokens(config.model);
  const model = { template: loadChatTemplate(config.model), source: chatTemplateSource(config.model) };
  return {
    format: d.format,
    template: chatTemplate(d.chat_template, model, tokens),
    assistantOnlyLoss: d.assistant_only_loss,
    completionOnlyLoss: d.completion_only_loss,
    packing: d.packing,
    eosToken: tokens.eos_token ?? null,
    specialTokens: special,
    textField: d.text_field,
  };
}

/** The model's embedding sizes from its config.json (the ids that fail in the model are past these). */
function idLimits(
  modelDir: string,
  tok: TextTokenizer,
  o: LoadOptions,
): { vocabSize: number; typeVocabSize: number | null } {
  let config: Record<string, unknown> = {};
  try {
    config = JSON.parse(fs.readFileSync(path.join(modelDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  } catch {
    // no readable config.json: opening the model reports that; the tokenizer's size is the fallback
  }
  const positive = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : null);
  return {
    vocabSize: o.vocabSize ?? positive(config.vocab_size) ?? tok.vocabSize,
    typeVocabSize: o.typeVocabSize !== undefined ? o.typeVocabSize : positive(config.type_vocab_size),
  };
}

/**
 * Progress of tokenizing one file, as `log` events at most every `progressEveryMs` (2 s): silent for files that
 * take less, and a closing line for those that took longer (a single huge row gives only that line).
 */
function dataProgress(
  name: string,
  total: number,
  o: LoadOptions,
): { row?: (done: number) => void; end(tokens: number): void } {
  const emit = o.emit;
  if (!emit) return { end: () => undefined };
  const every = o.progressEveryMs ?? 2000;
  const started = Date.now();
  let last = started;
  let shown = false;
  const n = (x: number) => x.toLocaleString('en-US');
  return {
    row(done) {
      const now = Date.now();
      if (now - last < every || done === total) return;
      last = now;
      shown = true;
      const pct = Math.floor((100 * done) / total);
      emit({ type: 'log', level: 'info', message: `tokenizing ${name}: ${pct}% (${n(done)} of ${n(total)} rows)` });
    },
    end(tokens) {
      if (!shown && Date.now() - started < every) return;
      const s = ((Date.now() - started) / 1000).toFixed(1);
      emit({
        type: 'log',
        level: 'info',
        message: `tokenized ${name}: ${n(total)} row${total === 1 ? '' : 's'}, ${n(tokens)} tokens in ${s} s`,
      });
    },
  };
}

export function datasetSize(ds: Dataset): number {
  if (ds.kind === 'sft') return ds.packed ? ds.packed.length : ds.examples.length;
  return ds.kind === 'causal-lm' ? ds.blocks.length : ds.examples.length;
}

/** Padded batches are a multiple of 8 long: the wasm attention kernel needs sequence lengths that are multiples of 4
 *  (padding is masked, so results do not change). */
const PAD_TO_MULTIPLE_OF = 8;

export function collate(ds: Dataset, indices: number[], padId: number): Batch {
  if (ds.kind === 'sft') {
    return ds.packed
      ? collatePacked(
          indices.map((i) => ds.packed![i]),
          ds.examples,
          padId,
          PAD_TO_MULTIPLE_OF,
        )
      : collateSft(
          indices.map((i) => ds.examples[i]),
          padId,
          PAD_TO_MULTIPLE_OF,
        );
  }
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
    lossMask: b.lossMask ? tf.tensor2d(b.lossMask, [b.batch, b.seq], 'int32') : null,
    segmentIds: b.segmentIds ? tf.tensor2d(b.segmentIds, [b.batch, b.seq], 'int32') : null,
    positionIds: b.positionIds ? tf.tensor2d(b.positionIds, [b.batch, b.seq], 'int32') : null,
  };
}

/** The targets of a batch: what its loss is a mean over (sft: the answer tokens; causal LM: all but each first). */
export function targetCount(b: Batch): number {
  if (b.labels) return b.batch;
  if (!b.lossMask) return b.tokens - b.batch;
  let n = 0;
  for (let r = 0; r < b.batch; r++) for (let t = 1; t < b.seq; t++) n += b.lossMask[r * b.seq + t];
  return n;
}

export function disposeBatch(b: BatchTensors): void {
  const optional: (tf.Tensor | null | undefined)[] = [b.typeIds, b.labels, b.lossMask, b.segmentIds, b.positionIds];
  tf.dispose([b.inputIds, b.attentionMask, ...optional.filter((t): t is tf.Tensor => Boolean(t))]);
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
