// Rules between keys, after each value has passed the schema: LoRA+ sanity (λ, the adapter's scale), settings that
// another setting makes useless, and the one normalisation consumers rely on (exactly one of max_steps and epochs).
// Everything here reads only the config; checks against the model and the data are the engine's (check-config.ts).
import { usesRatio } from '../protocol/tune';
import { checkOptimizer } from './optimizer-rules';
import { addKeyFix } from './problem';
import type { ProblemInit } from './problem';

type Obj = Record<string, unknown>;
type Report = (p: ProblemInit) => void;

/** λ from 2^0 to 2^8 is the range LoRA+ is used in; outside it is most likely a slip. */
export const RATIO_USUAL_MAX = 256;
export const RATIO_START = 16;
/**
 * lora_alpha / r (or / √r): 1 or 2 is the usual scale; beyond these the update is scaled like a wrong learning rate.
 */
export const SCALE_FAR_BELOW = 1 / 8;
export const SCALE_FAR_ABOVE = 8;
/** Past this scale the first steps of lora_B (at lr·λ) already move a layer by more than its pretrained weights. */
export const SCALE_LIMIT = 256;
const RANK_USUAL_MAX = 256;
/** A learning rate past 1 rewrites the weights on the first step (see the limit of training.learning_rate). */
export const LR_LIMIT = 1;
/** A clip norm below this leaves gradients smaller than AdamW's ε: the updates vanish. */
const CLIP_FAR_BELOW = 1e-3;
/** What a layer name looks like when it is an embedding table (llama, bert: *embed*; gpt2: wte, wpe). */
export const EMBEDDING_NAME = /(^|\.)([^.]*embed[^.]*|wte|wpe)$/;

export function checkRules(out: Obj, written: (path: readonly string[]) => boolean, report: Report): void {
  const data = out.data as Obj;
  const lora = out.lora as Obj;
  const training = out.training as Obj;
  // PEFT's riemannian and lorafa have no λ: the rules about learning rates see the one rate they train at.
  const hasRatio = typeof training.optimizer !== 'string' || usesRatio(training.optimizer);
  const rates = hasRatio ? training : { ...training, loraplus_lr_ratio: 1 };
  if (!checkLoraplusLr(rates, report) && hasRatio) checkRatio(training, report);
  checkDecay(rates, report);
  checkOptimizer(training, written, report);
  checkClip(training, report);
  checkAdapterScale(lora, written, report);
  settleStepsAndEpochs(training, report);
  checkEval(out, data, training, written, report);
  // (A value the schema refused is reported already: undefined here.)
  const embeddingLr = written(['training', 'loraplus_lr_embedding']) && training.loraplus_lr_embedding !== undefined;
  if (embeddingLr && !targetsEmbedding(lora.target_modules)) {
    report({
      severity: 'hint',
      code: 'config/embedding-lr-unused',
      message: 'loraplus_lr_embedding has no effect: no target module is an embedding layer',
      path: ['training', 'loraplus_lr_embedding'],
      at: 'key',
      hint: 'It sets the learning rate of LoRA adapters on embedding layers only; delete it.',
      fix: { kind: 'removeKey', title: 'Delete loraplus_lr_embedding' },
    });
  }
}

const num = (o: Obj, k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : undefined);

function checkRatio(training: Obj, report: Report): void {
  const lr = num(training, 'learning_rate');
  const ratio = num(training, 'loraplus_lr_ratio');
  const path = ['training', 'loraplus_lr_ratio'];
  const fix = { kind: 'setValue', title: `Set loraplus_lr_ratio to ${RATIO_START}`, value: RATIO_START } as const;
  if (ratio === undefined) return;
  if (ratio < 1) {
    report({
      severity: 'error',
      code: 'config/loraplus-ratio-below-1',
      message:
        `loraplus_lr_ratio λ = ${ratio} is below 1: ` + 'lora_B would learn slower than lora_A, the opposite of LoRA+',
      path,
      at: 'value',
      hint: `Use λ ≥ 1; ${RATIO_START} is the usual start (1 is plain LoRA).`,
      fix,
    });
  } else if (ratio === 1) {
    report({
      severity: 'hint',
      code: 'config/plain-lora',
      message: 'loraplus_lr_ratio λ = 1: this is plain LoRA (lora_A and lora_B share one learning rate)',
      path,
      at: 'value',
      hint: `LoRA+ uses λ > 1; ${RATIO_START} is the usual start.`,
      fix: { ...fix, title: `Use LoRA+: set loraplus_lr_ratio to ${RATIO_START}` },
    });
  } else if (ratio > RATIO_USUAL_MAX) {
    const lrB = lr !== undefined ? `; lora_B's learning rate would be ${lr * ratio}` : '';
    report({
      severity: 'warning',
      code: 'config/loraplus-ratio-unusual',
      message: `loraplus_lr_ratio λ = ${ratio} is outside the usual range [1, ${RATIO_USUAL_MAX}]${lrB}`,
      path,
      at: 'value',
      hint: `LoRA+ suggests λ ≈ ${RATIO_START}; lower it unless you have measured that this trains well.`,
      fix,
    });
  }
}

/** lora_B trains at learning_rate·λ: past LR_LIMIT the run diverges at once. False when that is fine. */
function checkLoraplusLr(training: Obj, report: Report): boolean {
  const lr = num(training, 'learning_rate');
  const ratio = num(training, 'loraplus_lr_ratio');
  if (lr === undefined || ratio === undefined || lr * ratio <= LR_LIMIT) return false;
  // Blame the factor that is out of its usual range: λ when it is past 2^8, else the learning rate.
  const key = ratio > RATIO_USUAL_MAX ? 'loraplus_lr_ratio' : 'learning_rate';
  report({
    severity: 'error',
    code: 'config/loraplus-lr-too-large',
    message:
      `lora_B's learning rate learning_rate·λ = ${lr} × ${ratio} = ${lr * ratio} is more than ${LR_LIMIT}: ` +
      'AdamW would move every lora_B weight by that much per step, and the run diverges at once',
    path: ['training', key],
    at: 'value',
    hint:
      key === 'learning_rate'
        ? `Lower learning_rate below ${LR_LIMIT / ratio} (about 2e-4 is usual with λ = ${RATIO_START}).`
        : `Use λ ≤ ${RATIO_USUAL_MAX}; ${RATIO_START} is the usual start.`,
  });
  return true;
}

/** AdamW's decoupled decay multiplies each weight by 1 − lr·wd per step: at lr·wd ≥ 1 they vanish or flip sign. */
function checkDecay(training: Obj, report: Report): void {
  const wd = num(training, 'weight_decay');
  const lr = num(training, 'learning_rate');
  const ratio = num(training, 'loraplus_lr_ratio');
  if (!wd || lr === undefined || ratio === undefined) return;
  const fastest = Math.max(lr, lr * ratio); // the embedding group is empty: only Linear layers are adapted
  if (lr * ratio > LR_LIMIT || wd * fastest < 1) return; // a too-large lr_B is reported already
  report({
    severity: 'error',
    code: 'config/weight-decay-too-large',
    message:
      `weight_decay × the largest learning rate = ${wd} × ${fastest} = ${wd * fastest} is at least 1: ` +
      "AdamW's decoupled decay multiplies the weights by 1 − lr·weight_decay ≤ 0 each step",
    path: ['training', 'weight_decay'],
    at: 'value',
    hint: 'Usual values are 0 to 0.1.',
  });
}

function checkClip(training: Obj, report: Report): void {
  const clip = num(training, 'max_grad_norm');
  if (clip === undefined || clip === 0 || clip >= CLIP_FAR_BELOW) return;
  report({
    severity: 'warning',
    code: 'config/clip-too-small',
    message:
      `max_grad_norm ${clip} clips every gradient to almost nothing: ` +
      "AdamW's ε then outweighs it and the updates vanish",
    path: ['training', 'max_grad_norm'],
    at: 'value',
    hint: '1.0 is usual; 0 turns clipping off.',
    fix: { kind: 'setValue', title: 'Set max_grad_norm to 1', value: 1 },
  });
}

/** The update is (lora_alpha / r)·B·A: a scale far from 1–2 acts like a learning rate off by that factor. */
function checkAdapterScale(lora: Obj, written: (path: readonly string[]) => boolean, report: Report): void {
  const r = num(lora, 'r');
  const alpha = num(lora, 'lora_alpha');
  if (r === undefined || alpha === undefined) return;
  if (r > RANK_USUAL_MAX) {
    report({
      severity: 'warning',
      code: 'config/rank-unusual',
      message: `r = ${r} is an unusually large rank: LoRA ranks are usually 4 to 64, and the adapter grows with r`,
      path: ['lora', 'r'],
      at: 'value',
      hint: 'A rank this large trains almost as many numbers as the layers themselves; try 8 or 16 first.',
    });
  }
  const rslora = lora.use_rslora === true;
  const scale = alpha / (rslora ? Math.sqrt(r) : r);
  if (scale >= SCALE_FAR_BELOW && scale <= SCALE_FAR_ABOVE) return;
  const formula = rslora ? 'lora_alpha / √r' : 'lora_alpha / r';
  const usual = rslora ? Math.round(2 * Math.sqrt(r) * 1000) / 1000 : 2 * r;
  // Point at what the user wrote: lora_alpha when set (the usual slip), else the rank (the defaults alone scale by 2).
  const alphaWritten = written(['lora', 'lora_alpha']);
  const tooLarge = scale > SCALE_LIMIT;
  report({
    severity: tooLarge ? 'error' : 'warning',
    code: tooLarge ? 'config/adapter-scale-too-large' : 'config/adapter-scale-unusual',
    message:
      `${formula} = ${alpha} / ${rslora ? `√${r}` : r} = ${Math.round(scale * 1000) / 1000} ` +
      (tooLarge
        ? `scales the update up more than ${SCALE_LIMIT}×: the first steps of lora_B would overwhelm the layer`
        : `scales the update ${scale > 1 ? 'up' : 'down'} far from the usual 1 to 2`),
    path: alphaWritten ? ['lora', 'lora_alpha'] : ['lora', 'r'],
    at: 'value',
    hint:
      `The usual choice is lora_alpha = ${rslora ? '2·√r' : '2·r'} (${usual} here); ` +
      'the scale multiplies the update like a learning rate.',
    fix: alphaWritten
      ? { kind: 'setValue', title: `Set lora_alpha to ${usual}`, value: usual }
      : addKeyFix(`Set lora_alpha to ${usual}`, ['lora', 'lora_alpha'], usual),
  });
}

/** max_steps wins over epochs; with neither, train one epoch. Consumers then read exactly one of them. */
function settleStepsAndEpochs(training: Obj, report: Report): void {
  if (training.max_steps !== null && training.max_steps !== undefined) {
    if (num(training, 'epochs') !== undefined) {
      report({
        severity: 'warning',
        code: 'config/epochs-ignored',
        message: `epochs is ignored because max_steps (${training.max_steps}) is set`,
        path: ['training', 'epochs'],
        at: 'value',
        hint: 'Delete one of the two.',
        fix: { kind: 'removeKey', title: 'Delete epochs' },
      });
    }
    training.epochs = null;
    const warmup = num(training, 'warmup_steps');
    const steps = training.max_steps as number;
    if (warmup !== undefined && warmup >= steps) {
      const tenth = Math.floor(steps / 10);
      report({
        severity: 'warning',
        code: 'config/warmup-too-long',
        message:
          `warmup_steps (${warmup}) is not below max_steps (${steps}): ` +
          'the learning rate never finishes warming up',
        path: ['training', 'warmup_steps'],
        at: 'value',
        fix: { kind: 'setValue', title: `Set warmup_steps to ${tenth} (a tenth of max_steps)`, value: tenth },
      });
    }
  } else if (training.epochs === null) {
    training.epochs = 1;
  }
}

function checkEval(
  out: Obj,
  data: Obj,
  training: Obj,
  written: (path: readonly string[]) => boolean,
  report: Report,
): void {
  const fraction = num(data, 'eval_fraction') ?? 0;
  if (typeof data.eval === 'string' && fraction > 0) {
    report({
      severity: 'warning',
      code: 'config/eval-fraction-ignored',
      message: 'eval_fraction is ignored because data.eval is set',
      path: ['data', 'eval_fraction'],
      at: 'value',
      fix: { kind: 'removeKey', title: 'Delete eval_fraction' },
    });
  }
  const every = num(training, 'eval_every') ?? 0;
  if (every > 0 && data.eval === null && fraction === 0) {
    report({
      severity: 'warning',
      code: 'config/no-eval-data',
      message:
        `eval_every is ${every} but there is no evaluation data: ` + 'data.eval is not set and data.eval_fraction is 0',
      path: ['training', 'eval_every'],
      at: 'value',
      hint: 'Set data.eval to a file, or data.eval_fraction to hold out part of the training rows.',
      fix: addKeyFix('Hold out 5% of the training rows (eval_fraction: 0.05)', ['data', 'eval_fraction'], 0.05),
    });
  }
  checkTaskKeys(out.task, data, written, report);
}

/** The data keys of task sft (instruction tuning), with the value that leaves them without effect. */
const SFT_KEYS: Record<string, unknown> = {
  format: 'auto',
  chat_template: null,
  assistant_only_loss: null,
  completion_only_loss: null,
  packing: false,
};

/** Keys of one task set in a config of another: a warning, since the run would quietly do without them. */
function checkTaskKeys(task: unknown, data: Obj, written: (path: readonly string[]) => boolean, report: Report): void {
  const ignored = (k: string, hint: string): void =>
    report({
      severity: 'warning',
      code: 'config/ignored-for-task',
      message: `${k} is ignored for task ${String(task)}`,
      path: ['data', k],
      at: 'key',
      hint,
      fix: { kind: 'removeKey', title: `Delete ${k}` },
    });
  const set = (k: string): boolean => data[k] !== null && data[k] !== undefined;
  if (task !== 'sequence-classification') {
    // label_field has a default: only a written one is someone's intent.
    for (const k of ['labels', 'text_pair_field', 'label_field']) {
      if (k === 'label_field' ? written(['data', k]) && set(k) : set(k))
        ignored(k, 'Set task: sequence-classification to train a classifier.');
    }
  }
  if (task !== 'sft') {
    for (const [k, none] of Object.entries(SFT_KEYS)) {
      if (set(k) && data[k] !== none)
        ignored(k, 'It applies to task: sft (instruction tuning on conversations or prompt/completion rows).');
    }
  }
}

function targetsEmbedding(targets: unknown): boolean {
  return Array.isArray(targets) && targets.some((t) => typeof t === 'string' && EMBEDDING_NAME.test(t));
}
