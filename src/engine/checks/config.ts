// The config checks that need the model folder and the data files, run by `loraplus validate` and (through
// requireCheckedConfig) before training. They live in the engine because src/config reads no models or data
// (see test/architecture.test.ts); they plug into the config validator as a ConfigCheck, so the CLI and the editor
// get one list of problems with positions and quick fixes. Models are read without their weights (inspect.ts).
import { inModulesToSave } from '../../adapters/peft';
import { loadConfigFile, parseConfigText, requireTunableConfig, requireValidConfig } from '../../config/load';
import type { LoadResult, LocatedProblem } from '../../config/load';
import { addKeyFix, problem, quote } from '../../config/problem';
import type { CheckInput, ConfigCheck, Fix, FixValue, Problem, ProblemInit } from '../../config/problem';
import type { TrainConfig, TunableConfig } from '../../config/schema';
import { closest } from '../../config/validate';
import { LoraPlusError } from '../../protocol/errors';
import { splitEval } from '../data/datasets';
import { labelMatcher, labelNames, labelSummary, singleClass, unknownLabel } from '../data/labels';
import { inspectData, inspectModel } from './inspect';
import type { DataSummary, ModelSummary } from './inspect';
import { checkRunFolder } from './paths';
import { checkMemory } from './memory';
import { checkSft } from './sft';
import { parseModelSpec, resolveModel } from '../hub/cache';
import { modelTask } from '../../models/types';

type Report = (p: ProblemInit) => void;
type Written = CheckInput['written'];

/** The checks against the files a config names: model, task, target modules, positions, data fields and size. */
export const checkAgainstFiles: ConfigCheck = ({ config, written }) => {
  const problems: Problem[] = [];
  const report: Report = (p) => problems.push(problem(p));
  const model = inspectModel(config.model);
  if (!model.ok) report({ severity: 'error', ...model.problem, path: ['model'], at: 'value' });
  else {
    checkTask(config, model.value, written, report);
    checkModules(config, model.value, written, report);
    checkPositions(config, model.value, written, report);
  }
  checkData(config, written, report);
  return problems;
};

// checkMemory: the memory the run needs against the backend's (memory.ts), and the largest tensor of one pass.
// checkSft: task sft's rows, loss switches and chat template (sft.ts).
const CHECKS: readonly ConfigCheck[] = [checkAgainstFiles, checkSft, checkMemory, checkRunFolder];

/** A `model:` value that is a Hub id: its snapshot in the Hugging Face cache (null for a path). */
export function resolveHubModel(value: string, configDir: string): string | null {
  const spec = parseModelSpec(value, { baseDir: configDir });
  return spec.kind === 'hub' ? resolveModel(value, { baseDir: configDir }) : null;
}

const OPTIONS = { checks: CHECKS, resolveModel: resolveHubModel };

/** A config file with every check: what `loraplus validate` prints. */
export function checkConfigFile(file: string): LoadResult {
  return loadConfigFile(file, OPTIONS);
}

/** The same for an editor buffer; relative paths resolve against configDir (the file's folder). */
export function checkConfigText(
  text: string,
  configDir: string,
): { config: TunableConfig | null; problems: LocatedProblem[] } {
  return parseConfigText(text, configDir, OPTIONS);
}

/** Loads a config with every check, or throws LoraPlusError 'config/invalid' listing the errors: for `train`. */
export function requireCheckedConfig(file: string): TrainConfig {
  return requireValidConfig(file, OPTIONS);
}

/** The same, with `auto` values kept: for `loraplus tune`, and `train` of a config that says auto. */
export function requireCheckedTunable(file: string): TunableConfig {
  return requireTunableConfig(file, OPTIONS);
}

// ---- The model ----

function checkTask(config: TrainConfig, m: ModelSummary, written: Written, report: Report): void {
  const { tasks } = m.family;
  if (tasks.includes(modelTask(config.task))) return;
  const fit = tasks[0];
  const head = modelTask(config.task) === 'causal-lm' ? 'language-model' : 'classification';
  const taskWritten = written(['task']);
  report({
    severity: 'error',
    code: 'config/task-unsupported',
    message:
      `${m.config.model_type} has no ${head} head: ` +
      `it cannot train ${config.task} (it supports ${tasks.join(', ')})`,
    path: taskWritten ? ['task'] : ['model'],
    at: 'value',
    ...(taskWritten ? {} : { hint: `task is ${config.task} by default; set task: ${fit}.` }),
    fix: taskWritten
      ? { kind: 'setValue', title: `Set task to ${fit}`, value: fit }
      : addKeyFix(`Add task: ${fit}`, ['task'], fit),
  });
}

const matches = (name: string, target: string): boolean => name === target || name.endsWith(`.${target}`);

/** target_modules and modules_to_save against the model's Linear layers, and r against their sizes. */
function checkModules(config: TrainConfig, m: ModelSummary, written: Written, report: Report): void {
  // The task's head is a Linear of the built model even when the checkpoint lacks it (tied lm_head, a fresh score).
  const heads = m.family.outputHeads.filter((h) => (modelTask(config.task) === 'causal-lm') === (h === 'lm_head'));
  const names = [...new Set([...m.linears.keys(), ...heads])];
  const suffixes = [...new Set(names.map((n) => n.slice(n.lastIndexOf('.') + 1)))];
  const { target_modules: targets, modules_to_save: saved } = config.lora;
  // Modules trained in full get no adapter (resolveTargets leaves them out); by default that is the task's head.
  const full = names.filter((n) => inModulesToSave(n, saved ?? (modelTask(config.task) === 'causal-lm' ? [] : heads)));
  const adaptable = names.filter((n) => !full.includes(n));
  const unknown = (
    list: 'target_modules' | 'modules_to_save',
    i: number,
    name: string,
    found: (n: string) => boolean,
  ): void => {
    const embedding = m.embeddings.find((e) => found(e));
    const trained = list === 'target_modules' ? full.find((n) => found(n)) : undefined;
    const close = embedding || trained ? undefined : closest(name, suffixes);
    report({
      severity: 'error',
      code: embedding ? 'config/embedding-target' : trained ? 'config/target-trained-in-full' : 'config/unknown-module',
      message: embedding
        ? `'${quote(name)}' is an embedding layer (${embedding}); LoRA here adapts Linear layers only`
        : trained
          ? `'${quote(name)}' is trained in full (${trained} is in modules_to_save), so it gets no adapter`
          : `no Linear layer of this ${m.config.model_type} model is named '${quote(name)}'` +
            (close ? `; did you mean '${close}'?` : ''),
      path: ['lora', list, i],
      at: 'value',
      hint: trained
        ? 'Remove it from target_modules, or from modules_to_save to train it with an adapter instead.'
        : `This model's Linear layers: ${suffixes.join(', ')} (or all-linear). ` +
          `\`loraplus info ${m.dir}\` lists them in full.`,
      ...(close ? { suggestions: [close], fix: { kind: 'setValue', title: `Change to ${close}`, value: close } } : {}),
    });
  };
  if (Array.isArray(targets)) {
    targets.forEach((t, i) => {
      if (!adaptable.some((n) => matches(n, t))) unknown('target_modules', i, t, (n) => matches(n, t));
    });
  } else if (targets === null && !m.family.defaultTargets.some((t) => adaptable.some((n) => matches(n, t)))) {
    report({
      severity: 'error',
      code: 'config/unknown-module',
      message: `this model has none of its family's default LoRA targets (${m.family.defaultTargets.join(', ')})`,
      path: ['lora', 'target_modules'],
      at: 'parent',
      hint: `Set lora.target_modules; this model's Linear layers: ${suffixes.join(', ')}.`,
      fix: addKeyFix('Target all Linear layers', ['lora', 'target_modules'], 'all-linear'),
    });
  }
  saved?.forEach((s, i) => {
    if (!names.some((n) => inModulesToSave(n, [s]))) unknown('modules_to_save', i, s, (n) => inModulesToSave(n, [s]));
  });

  // A rank above min(in, out) of a layer only adds parameters: B·A cannot have a higher rank than that.
  const picked =
    targets === 'all-linear'
      ? adaptable.filter((n) => !m.family.outputHeads.includes(n))
      : adaptable.filter((n) => (targets ?? m.family.defaultTargets).some((t) => matches(n, t)));
  const sized = picked.flatMap((n) => (m.linears.has(n) ? [{ n, dims: m.linears.get(n)! }] : []));
  const smallest = sized.sort((a, b) => Math.min(...a.dims) - Math.min(...b.dims))[0];
  const r = config.lora.r;
  if (smallest && r > Math.min(...smallest.dims)) {
    const limit = Math.min(...smallest.dims);
    const beyond = r > Math.max(...smallest.dims); // then lora_A and lora_B each outgrow the weight they adapt
    report({
      severity: beyond ? 'error' : 'warning',
      code: 'config/rank-above-layer',
      message:
        `r = ${r} is more than the ${limit} that ${smallest.n} [${smallest.dims.join(' × ')}] allows: ` +
        (beyond
          ? 'lora_A and lora_B would each hold more numbers than the layer they adapt'
          : 'a rank above min(in, out) adds parameters, not capacity'),
      path: ['lora', 'r'],
      at: written(['lora', 'r']) ? 'value' : 'parent',
      fix: setOrAdd(written, ['lora', 'r'], limit, `Set r to ${limit}`),
    });
  }
}

function checkPositions(config: TrainConfig, m: ModelSummary, written: Written, report: Report): void {
  const len = config.data.max_length;
  if (!m.positions || len <= m.positions.max) return;
  const { max, learned } = m.positions;
  const isWritten = written(['data', 'max_length']);
  const what = isWritten ? `max_length ${len}` : `max_length (by default ${len})`;
  report({
    // A learned position table has no row past its end; rotary positions go on, but untrained.
    severity: learned ? 'error' : 'warning',
    code: 'config/max-length-beyond-positions',
    message: learned
      ? `${what} is more than the ${max} positions this ${m.config.model_type} model has: ` +
        `positions past ${max} have no embedding`
      : `${what} is beyond the ${max} positions this ${m.config.model_type} model was trained on ` +
        '(max_position_embeddings); quality drops past them',
    path: ['data', 'max_length'],
    at: isWritten ? 'value' : 'parent',
    fix: setOrAdd(written, ['data', 'max_length'], max, `Set max_length to ${max}`),
  });
}

// ---- The data ----

/** Columns people name their text and label by, to suggest when the default (`text`, `label`) is not there. */
export const TEXT_NAMES = [
  'text',
  'sentence',
  'content',
  'review',
  'document',
  'sentence1',
  'question',
  'premise',
  'prompt',
];
export const LABEL_NAMES = ['label', 'labels', 'class', 'target', 'category', 'sentiment'];

function checkData(config: TrainConfig, written: Written, report: Report): void {
  const d = config.data;
  const train = inspectData(d.train);
  const evalData = d.eval ? inspectData(d.eval) : null;
  for (const [key, r] of [
    ['train', train],
    ['eval', evalData],
  ] as const) {
    if (r && !r.ok) report({ severity: 'error', ...r.problem, path: ['data', key], at: 'value' });
  }
  // sft rows name their own fields (messages, prompt/completion, ...): only its text format reads text_field.
  const needsText = config.task !== 'sft' || d.format === 'text';
  const fields: ['text_field' | 'label_field' | 'text_pair_field', string][] = needsText
    ? [['text_field', d.text_field]]
    : [];
  if (config.task === 'sequence-classification') {
    fields.push(['label_field', d.label_field]);
    if (d.text_pair_field !== null) fields.push(['text_pair_field', d.text_pair_field]);
  }
  const usable = (r: typeof train | null): DataSummary | null =>
    r?.ok && !r.value.pretokenized && r.value.columns.length ? r.value : null;
  const t = usable(train);
  const e = usable(evalData);
  for (const [key, name] of fields) {
    if (t && !t.columns.includes(name)) {
      const likely = key === 'label_field' ? LABEL_NAMES : key === 'text_field' ? TEXT_NAMES : [];
      const close = closest(name, t.columns) ?? likely.find((c) => t.columns.includes(c));
      const isWritten = written(['data', key]);
      report({
        severity: 'error',
        code: 'config/missing-column',
        message:
          `the training data has no column '${quote(name)}'${isWritten ? '' : ` (the default ${key})`}` +
          (close ? `; did you mean '${close}'?` : ''),
        path: ['data', key],
        at: isWritten ? 'value' : 'parent',
        hint: `Its columns: ${t.columns.join(', ')}.`,
        ...(close
          ? { suggestions: [close], fix: setOrAdd(written, ['data', key], close, `Set ${key} to ${close}`) }
          : {}),
      });
    } else if (e && !e.columns.includes(name)) {
      report({
        severity: 'error',
        code: 'config/missing-column',
        message: `the evaluation data has no column '${quote(name)}' (${key}), which the training data has`,
        path: ['data', 'eval'],
        at: 'value',
        hint: `Its columns: ${e.columns.join(', ')}.`,
      });
    }
  }
  if (train.ok) checkDataSize(config, train.value.rows, written, report);
  if (config.task === 'sequence-classification' && train.ok && (!evalData || evalData.ok)) checkLabels(config, report);
}

/**
 * The label problems training would stop on, from the files alone: a row without a label, one class only, a label
 * that is not among the training data's (or data.labels). The rows are those training uses: after eval_fraction
 * and max_train_samples / max_eval_samples, as train/inputs.ts takes them.
 */
function checkLabels(config: TrainConfig, report: Report): void {
  const d = config.data;
  const train = labelSummary(d.train, d.label_field);
  const evalFile = d.eval ? labelSummary(d.eval, d.label_field) : null;
  if (!train) return; // unreadable, too large or without the column: other checks say so
  const at = (key: 'train' | 'eval', err: LoraPlusError): void =>
    report({
      severity: 'error',
      code: err.code,
      message: `${err.info.file}${err.info.line ? `:${err.info.line}` : ''}: ${err.info.message}`,
      ...(err.info.hint ? { hint: err.info.hint } : {}),
      path: ['data', key],
      at: 'value',
    });
  let trainRows = train.names.map((_, k) => k);
  let evalRows = evalFile ? evalFile.names.map((_, k) => k) : null;
  if (!d.eval && d.eval_fraction > 0)
    ({ train: trainRows, eval: evalRows } = splitEval(trainRows, d.eval_fraction, config.training.seed));
  if (d.max_train_samples) trainRows = trainRows.slice(0, d.max_train_samples);
  if (evalRows && d.max_eval_samples) evalRows = evalRows.slice(0, d.max_eval_samples);
  const evalSet = evalFile ?? train;
  const evalKey = evalFile ? 'eval' : 'train';

  const problem = trainRows.find((k) => train.problems.has(k));
  if (problem !== undefined) return at('train', train.problems.get(problem)!);
  const given = !!d.labels?.length;
  const labels = given ? d.labels! : labelNames(trainRows.map((k) => train.names[k]!));
  const m = { labels, byIndex: given, ...(given ? {} : { from: d.train }) };
  const match = labelMatcher(m);
  const unknown = (s: typeof train, file: string, k: number) =>
    unknownLabel(s.names[k]!, m, { file, labelField: d.label_field, line: s.lines[k], rowName: 'the row' });
  const counts = labels.map(() => 0);
  for (const k of trainRows) {
    const id = match(train.names[k]!);
    if (id === undefined) return at('train', unknown(train, d.train, k));
    counts[id]++;
  }
  const one = singleClass(labels, counts, { file: d.train, given });
  if (one) at('train', one);
  for (const k of evalRows ?? []) {
    const file = d.eval ?? d.train;
    const p = evalSet.problems.get(k);
    if (p) return at(evalKey, p);
    if (match(evalSet.names[k]!) === undefined) return at(evalKey, unknown(evalSet, file, k));
  }
}

/** One optimiser step should not need more examples than there are (classification; a causal LM's blocks are not
 *  known before tokenizing). */
function checkDataSize(config: TrainConfig, rows: number, written: Written, report: Report): void {
  const d = config.data;
  const held = d.eval === null && d.eval_fraction > 0 ? Math.round(rows * d.eval_fraction) : 0;
  const n = Math.min(rows - held, d.max_train_samples ?? Infinity);
  if (n === 0) {
    report({
      severity: 'error',
      code: 'config/no-training-rows',
      message: 'the training data has no rows',
      path: ['data', 'train'],
      at: 'value',
    });
    return;
  }
  const { batch_size: b, gradient_accumulation_steps: g } = config.training;
  if (config.task !== 'sequence-classification' || b * g <= n) return;
  const where =
    written(['training', 'batch_size']) || !written(['training', 'gradient_accumulation_steps'])
      ? 'batch_size'
      : 'gradient_accumulation_steps';
  report({
    severity: 'warning',
    code: 'config/batch-larger-than-data',
    message:
      'one optimiser step takes batch_size × gradient_accumulation_steps = ' +
      `${b} × ${g} = ${b * g} examples, more than the ${n} training examples`,
    path: ['training', where],
    at: written(['training', where]) ? 'value' : 'parent',
    hint: 'Lower batch_size or gradient_accumulation_steps, or add data.',
  });
}

function setOrAdd(written: Written, path: string[], value: FixValue, title: string): Fix {
  return written(path) ? { kind: 'setValue', title, value } : addKeyFix(title, path, value);
}
