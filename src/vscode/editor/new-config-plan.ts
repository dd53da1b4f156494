// What "LoRA+: New Training Config" offers and writes, without `vscode` (so tests run it): the model folders and data
// files near the workspace, what a model folder is (family, tasks, default targets, limits), guesses for the data's
// columns, and the choices handed to configTemplate. new-config.ts is only the quick picks around these.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TemplateChoices } from '../../config/template';
import { LABEL_NAMES, TEXT_NAMES } from '../../engine/checks/config';
import { inspectModel } from '../../engine/checks/inspect';
import type { DataSummary, InspectProblem, ModelSummary } from '../../engine/checks/inspect';
import { fallbackTemplate } from '../../engine/checks/sft-template';
import type { ChatFormat } from '../../engine/data/chat';
import { SUPPORTED_EXTENSIONS } from '../../engine/data/rows';
import { listCachedModels } from '../../engine/hub/cache';
import { chatTemplateSource, loadChatTemplate } from '../../models/chat-template';
import { FAMILIES } from '../../models/registry';

// ---- Finding models and data ----

const SKIP_DIRS = new Set(['node_modules', 'dist', 'out', 'media', '__pycache__']);

export interface Found {
  models: string[]; // folders with config.json and safetensors weights
  data: string[]; // files with a data extension (not inside model folders, not run logs)
}

/**
 * Walks each root down to `depth` levels (the workspace folders, and their parents with a smaller depth, so
 * `../shared/models/*` is found), visiting at most `maxDirs` folders in all: a home folder must not stall the picker.
 */
export async function findModelsAndData(
  roots: readonly { dir: string; depth: number }[],
  maxDirs = 3000,
): Promise<Found> {
  const models = new Set<string>();
  const data = new Set<string>();
  const seen = new Set<string>();
  let budget = maxDirs;
  const queue = roots.map((r) => ({ dir: path.resolve(r.dir), depth: r.depth }));
  while (queue.length && budget > 0) {
    const { dir, depth } = queue.shift()!;
    const real = await fs.promises.realpath(dir).catch(() => undefined);
    if (!real || seen.has(real)) continue;
    seen.add(real);
    budget--;
    const entries = await fs.promises.readdir(dir, { withFileTypes: true }).catch(() => []);
    const names = entries.map((e) => e.name);
    if (
      names.includes('config.json') &&
      names.some((n) => n.endsWith('.safetensors') || n === 'model.safetensors.index.json')
    ) {
      models.add(dir);
      continue; // a model folder's tokenizer.json and vocab.txt are not data
    }
    if (names.includes('metrics.jsonl')) continue; // a run folder
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory() || e.isSymbolicLink()) {
        if (depth > 0 && !e.name.startsWith('.') && !SKIP_DIRS.has(e.name)) queue.push({ dir: full, depth: depth - 1 });
      } else if (isDataFile(full)) data.add(full);
    }
  }
  const order = (a: string, b: string): number =>
    Number(!isTrainName(a)) - Number(!isTrainName(b)) || a.localeCompare(b);
  return { models: [...models].sort(), data: [...data].sort(order) };
}

/** Names that are never training data though their extension says they could be. */
const NOT_DATA =
  /^(package(-lock)?|tsconfig.*|jsconfig|\.?eslintrc|settings|launch|tasks|extensions|requirements|license|licence|readme|changelog|notice|vocab|merges|trainer_state|adapter_config|loraplus|merge_info)\.(json|txt)$/i;

function isDataFile(file: string): boolean {
  const ext = path.extname(file).toLowerCase();
  if (!(SUPPORTED_EXTENSIONS as readonly string[]).includes(ext) || NOT_DATA.test(path.basename(file))) return false;
  if (ext !== '.json') return true;
  // A .json data file is an array of rows; configs and tokenizers are objects.
  try {
    const fd = fs.openSync(file, 'r');
    try {
      const head = Buffer.alloc(256);
      const n = fs.readSync(fd, head, 0, head.length, 0);
      return head
        .subarray(0, n)
        .toString('utf8')
        .replace(/^\uFEFF/, '')
        .trimStart()
        .startsWith('[');
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return false;
  }
}

const isTrainName = (file: string): boolean => /train/i.test(path.basename(file));

// ---- What a model folder is ----

export interface ModelChoice {
  dir: string;
  name: string; // the folder's name
  modelType: string;
  summary: ModelSummary;
  targets: string[] | 'all-linear'; // the family's default targets this model has (else all-linear)
  r: number; // 8, or less when a targeted layer is narrower
  maxPositions: number | null;
  hubId?: string; // a model from the Hugging Face cache: what the config names it by
  chatTemplate: string | null; // the file the model's own chat template is in; null: it has none
}

export function describeModel(dir: string): { ok: true; value: ModelChoice } | { ok: false; problem: InspectProblem } {
  const inspected = inspectModel(dir);
  if (!inspected.ok) return inspected;
  const m = inspected.value;
  const names = [...m.linears.keys()];
  const has = (t: string): boolean => names.some((n) => n === t || n.endsWith(`.${t}`));
  const defaults = m.family.defaultTargets.filter(has);
  const targeted = names.filter((n) =>
    defaults.length ? defaults.some((t) => n === t || n.endsWith(`.${t}`)) : !m.family.outputHeads.includes(n),
  );
  const narrowest = Math.min(...targeted.map((n) => Math.min(...m.linears.get(n)!)));
  return {
    ok: true,
    value: {
      dir,
      name: path.basename(dir),
      modelType: String(m.config.model_type),
      summary: m,
      targets: defaults.length ? defaults : 'all-linear',
      r: Number.isFinite(narrowest) ? Math.min(8, narrowest) : 8,
      maxPositions: m.positions?.max ?? null,
      chatTemplate: ownTemplate(dir),
    },
  };
}

function ownTemplate(dir: string): string | null {
  try {
    return loadChatTemplate(dir) === null ? null : chatTemplateSource(dir);
  } catch {
    return null; // a damaged tokenizer_config.json: the config's checks say so at model
  }
}

/** The complete, supported models of the Hugging Face cache (what Python downloaded, or `loraplus download`). */
export function cachedModelChoices(): ModelChoice[] {
  return listCachedModels().flatMap((m) =>
    m.revisions
      .filter((r) => !r.missing.length && r.modelType !== undefined && r.modelType in FAMILIES)
      .flatMap((r) => {
        const d = describeModel(r.snapshot);
        return d.ok ? [{ ...d.value, name: r.spec, hubId: r.spec }] : [];
      }),
  );
}

/** One line for the model picker: `llama · causal-lm, sequence-classification · targets q_proj, v_proj`. */
export function modelDescription(m: ModelChoice): string {
  const targets = typeof m.targets === 'string' ? m.targets : m.targets.join(', ');
  const family = m.modelType === m.summary.family.name ? m.modelType : `${m.modelType} (${m.summary.family.name})`;
  return `${family} · ${m.summary.family.tasks.join(', ')} · targets ${targets}`;
}

// ---- The task ----

/** Formats whose rows only task sft reads (a text file is causal-lm's or a classifier's). */
const CHAT_DATA: readonly ChatFormat[] = ['messages', 'prompt_completion', 'sharegpt', 'alpaca'];

/** A data file's chat format, when its first row is chat data (messages, prompt/completion, ...): what sft needs. */
export function chatDataOf(data: DataSummary): DataChoices['chat'] | null {
  const f = data.chat?.format ?? null;
  return f && CHAT_DATA.includes(f) ? { format: f, conversational: data.chat?.turns?.conversational ?? true } : null;
}

/** The tasks to offer: sft for chat data when the model has a language-model head, else the family's. */
export function offeredTasks(model: ModelChoice, train: DataSummary): TemplateChoices['task'][] {
  const tasks = model.summary.family.tasks;
  return chatDataOf(train) && tasks.includes('causal-lm') ? ['sft'] : tasks;
}

/** What renders the conversations of an sft config: the model's own template, or the built-in written for it. */
export function chatTemplateChoice(model: ModelChoice): { template: string | null; why: string } {
  if (model.chatTemplate)
    return { template: null, why: `the model's own chat template (${path.basename(model.chatTemplate)})` };
  const fallback = fallbackTemplate(model.dir);
  return {
    template: fallback,
    why:
      fallback === 'chatml'
        ? `${model.name} has no chat template, but its tokenizer has ChatML's <|im_start|>/<|im_end|>`
        : `${model.name} has no chat template (a base model): plain writes ### Instruction / ### Response ` +
          'and eos after each answer',
  };
}

// ---- The data's columns ----

/** `columns` with the likely pick first: the text column, or (`label`) the label column. */
export function orderColumns(columns: readonly string[], what: 'text' | 'label'): string[] {
  const names = what === 'text' ? TEXT_NAMES : LABEL_NAMES;
  const rank = (c: string): number => (names.includes(c.toLowerCase()) ? names.indexOf(c.toLowerCase()) : names.length);
  return [...columns].sort((a, b) => rank(a) - rank(b));
}

/** A file beside the training file that looks like its evaluation split (dev.tsv, validation.jsonl), if any. */
export function guessEvalFile(train: string, files: readonly string[]): string | undefined {
  const dir = path.dirname(train);
  const ext = path.extname(train);
  const splits = files.filter(
    (f) =>
      f !== train &&
      path.dirname(f) === dir &&
      path.extname(f) === ext &&
      /(^|[^a-z])(dev|valid|validation|val|eval)([^a-z]|$)/i.test(path.basename(f)),
  );
  // messages.train.jsonl → messages.dev.jsonl, not another format's dev split beside it
  const same = (f: string): boolean =>
    path.basename(f).replace(/(dev|valid|validation|val|eval)/i, '') === path.basename(train).replace(/train/i, '');
  return splits.find(same) ?? splits[0];
}

// ---- The config ----

export interface DataChoices {
  train: string;
  eval: string | null;
  evalFraction: number;
  textField: string | null; // null: the rows hold input_ids, or (sft) name their own fields
  labelField?: string;
  textPairField?: string | null;
  chat?: { format: ChatFormat; conversational: boolean }; // sft: the rows' format, from the first rows
}

export function planConfig(
  configDir: string,
  model: ModelChoice,
  task: TemplateChoices['task'],
  data: DataChoices,
): TemplateChoices {
  const maxLength = Math.min(128, model.maxPositions ?? 128);
  return {
    configDir,
    model: model.dir,
    ...(model.hubId ? { modelId: model.hubId } : {}),
    modelType: model.modelType,
    family: model.summary.family.name,
    task,
    targets: model.targets,
    r: model.r,
    train: data.train,
    eval: data.eval,
    evalFraction: data.evalFraction,
    textField: data.textField,
    ...(task === 'sequence-classification'
      ? { labelField: data.labelField, textPairField: data.textPairField ?? null }
      : {}),
    ...(task === 'sft' && data.chat ? { chat: { ...data.chat, ...chatTemplateChoice(model) } } : {}),
    maxLength,
  };
}

/** `<model>.lora.yaml`, or `<model>-2.lora.yaml` and so on when taken. */
export function defaultConfigName(dir: string, model: ModelChoice): string {
  const base = model.name;
  for (let i = 1; ; i++) {
    const name = `${base}${i > 1 ? `-${i}` : ''}.lora.yaml`;
    if (!fs.existsSync(path.join(dir, name))) return name;
  }
}
