// The YAML that "LoRA+: New Training Config" writes: a complete, commented config with sensible defaults, so a
// first run works as written and every line says what to change. Pure text: the command
// (src/vscode/editor/new-config.ts) reads the model and data and passes what it found here; this layer reads no files.
import * as path from 'node:path';
import { yamlValue } from './problem';
import type { TrainConfig } from './schema';

export interface TemplateChoices {
  configDir: string; // the folder the config is written to: paths are written relative to it
  model: string; // the model folder (absolute)
  modelId?: string; // a Hub id (org/name[@revision]) to write instead, for a model from the Hugging Face cache
  modelType: string; // config.json's model_type, for the comment
  family: string; // the model family (llama, gpt2, bert), for the comment
  task: TrainConfig['task'];
  targets: readonly string[] | 'all-linear'; // lora.target_modules: the family's defaults that this model has
  r?: number; // default 8 (lower when a targeted layer is narrower)
  train: string; // the training data file (absolute)
  eval?: string | null; // the evaluation file (absolute); none: evalFraction of the training rows
  evalFraction?: number; // used when there is no eval file; 0 = no evaluation
  textField?: string | null; // null: the rows hold input_ids already (no text column)
  labelField?: string; // sequence-classification
  textPairField?: string | null;
  maxLength?: number; // default 128; at most the model's positions
  // sft: the rows' format, and the chat template to write (null: the model's own, named in `why`) and why
  chat?: { format: string; conversational: boolean; template: string | null; why: string };
}

/** Where the start of each comment goes, so they line up. */
const COMMENT_COL = 40;
const LEARNING_RATE = 2e-4;
const RATIO = 16;
const MAX_STEPS = 300;

export function configTemplate(c: TemplateChoices): string {
  const rel = (p: string): string => relativePath(c.configDir, p);
  const r = c.r ?? 8;
  const alpha = 2 * r;
  const classify = c.task === 'sequence-classification';
  const sft = c.task === 'sft';
  const evalFile = c.eval ?? null;
  const fraction = evalFile ? 0 : (c.evalFraction ?? 0);
  const hasEval = evalFile !== null || fraction > 0;
  const out: string[] = [
    '# LoRA+ Studio training config. Run it with "LoRA+: Start Training" (or `loraplus train <this file>`).',
    "# Paths are relative to this file's folder. " +
      'Hover a key for what it does; Ctrl+Space lists the keys not written here.',
    line('loraplus: 1', 'marks this YAML as a LoRA+ config'),
    line(
      `model: ${yamlValue(c.modelId ?? rel(c.model))}`,
      c.modelType === c.family ? c.modelType : `${c.modelType} (${c.family} family)`,
    ),
    line(`task: ${c.task}`, TASK_COMMENTS[c.task]),
    line('device: auto', 'the first that works of cuda, webgpu, wasm, cpu'),
    line('output_dir: runs', 'one folder per run: metrics.jsonl, checkpoints/, final/ (the adapter)'),
    '',
    'data:',
    line(`  train: ${yamlValue(rel(c.train))}`, '.tsv .csv .jsonl .json .txt, one example per row'),
  ];
  if (evalFile)
    out.push(line(`  eval: ${yamlValue(rel(evalFile))}`, 'evaluated every eval_every steps and at the end'));
  else if (fraction > 0)
    out.push(line(`  eval_fraction: ${fraction}`, 'held out from the training rows for evaluation'));
  if (c.chat) out.push(...chatLines(c.chat));
  if (c.textField) out.push(line(`  text_field: ${yamlValue(c.textField)}`, 'the column that holds the text'));
  if (classify && c.textPairField)
    out.push(line(`  text_pair_field: ${yamlValue(c.textPairField)}`, 'the second text of a pair'));
  if (classify && c.labelField)
    out.push(
      line(`  label_field: ${yamlValue(c.labelField)}`, 'the class label; the classes are collected from the data'),
    );
  out.push(
    line(
      `  max_length: ${c.maxLength ?? 128}`,
      classify
        ? 'tokens per example (truncated)'
        : sft
          ? 'tokens per example: longer ones lose their end'
          : 'tokens per training block',
    ),
    '',
    'lora:',
    line(`  r: ${r}`, 'rank: A is r×in, B is out×r'),
    line(`  lora_alpha: ${alpha}`, `the update (lora_alpha / r)·B·A is scaled by ${alpha / r}`),
    line(
      `  target_modules: ${yamlValue(typeof c.targets === 'string' ? c.targets : [...c.targets])}`,
      c.targets === 'all-linear'
        ? 'every Linear layer but the output head'
        : `the ${c.family} default; all-linear adapts every Linear layer`,
    ),
  );
  if (classify)
    out.push('  # The classification head is created fresh (unless the checkpoint has one) and trained in full.');
  out.push(
    '',
    'training:',
    line(`  learning_rate: ${LEARNING_RATE.toExponential(1)}`, 'η: the learning rate of lora_A'),
    '  # LoRA+ (Hayou et al. 2024): lora_B learns at η·λ, here λ = loraplus_lr_ratio. λ = 2^4 = 16 is the usual',
    '  # start; 1 is plain LoRA. If the loss spikes or a classifier predicts one class, lower η before λ.',
    line(`  loraplus_lr_ratio: ${RATIO}`, 'λ (hover it for both learning rates as they stand)'),
    line('  batch_size: 8', 'examples per step'),
    line(`  max_steps: ${MAX_STEPS}`, 'or epochs: 1 for a pass over the data'),
    line('  lr_scheduler: linear', 'constant, linear or cosine after the warmup'),
    line(`  warmup_steps: ${MAX_STEPS / 10}`, ''),
  );
  if (hasEval) out.push(line('  eval_every: 100', 'steps between evaluations'));
  out.push(line('  save_every: 100', 'steps between checkpoints (runs can resume from them)'), line('  seed: 42', ''));
  return `${out.join('\n')}\n`;
}

const TASK_COMMENTS: Record<TrainConfig['task'], string> = {
  'causal-lm': 'next-token prediction on the text',
  'sequence-classification': 'a label head on the text',
  sft: "instruction tuning: loss on the answers (TRL's SFTTrainer)",
};

/** data.format and data.chat_template of an sft config, and what carries the loss. */
function chatLines(chat: NonNullable<TemplateChoices['chat']>): string[] {
  const out = [line(`  format: ${chat.format}`, 'detected from the first row (auto would detect it too)')];
  if (chat.format === 'text') return out; // trained on in full, as causal-lm but row by row
  if (!chat.conversational)
    return [...out, '  # Loss on the completion only (completion_only_loss: false trains on the prompt too).'];
  if (chat.template === null) out.push(`  # chat_template is not set: ${chat.why} renders the rows.`);
  else out.push(`  # ${chat.why}:`, line(`  chat_template: ${chat.template}`, 'built-in; or a .jinja file'));
  out.push(
    chat.format === 'prompt_completion'
      ? '  # Loss on the completion only (completion_only_loss: false trains on the prompt too).'
      : "  # Loss on the assistant's answers only (assistant_only_loss: false trains on the whole conversation).",
  );
  return out;
}

/** `key: value` with its comment at COMMENT_COL (or one space after a long line). */
function line(text: string, comment: string): string {
  if (!comment) return text;
  return `${text.padEnd(COMMENT_COL - 1)} # ${comment}`;
}

/** A path as written in the config: relative to its folder, with `/` on every OS (Node accepts it on Windows too). */
export function relativePath(configDir: string, file: string): string {
  const rel = path.relative(configDir, file);
  if (rel === '') return '.';
  if (path.isAbsolute(rel)) return file; // another drive on Windows: nothing relative reaches it
  return rel.split(path.sep).join('/');
}
