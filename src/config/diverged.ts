// What to blame when a run's loss or update becomes NaN/Inf: the setting furthest outside its usual range, so the
// error points at the key to change rather than always at learning_rate. Pure: it reads only the config (the
// trainer adds which step failed and which checkpoint was kept).
import { usesRatio } from '../protocol/tune';
import { RATIO_START, RATIO_USUAL_MAX, SCALE_FAR_ABOVE } from './rules';
import type { TrainConfig } from './schema';

export interface DivergenceCause {
  yamlPath: string; // the key to change, e.g. `lora.lora_alpha`
  hint: string; // what it is and what to set it to
}

/** lora_B's learning rate is usually about 1e-3 to 2e-3 (lr_A 1e-4 to 2e-4 at λ = 16); 10× the top is far off. */
export const LR_B_USUAL = [1e-3, 2e-3] as const;
const LR_B_FAR_ABOVE = 10 * LR_B_USUAL[1];
/** A clip norm this large clips nothing: a gradient spike goes straight into the update. */
const CLIP_FAR_ABOVE = 100;

const round = (x: number): number => Number(x.toPrecision(3));

/** The most likely cause of a divergence in `config`, with the key to change and what to set it to. */
export function divergenceCause(config: Pick<TrainConfig, 'lora' | 'training'>): DivergenceCause {
  const { lora, training: t } = config;
  const candidates: (DivergenceCause & { factor: number })[] = [];

  const rslora = lora.use_rslora;
  const scale = lora.lora_alpha / (rslora ? Math.sqrt(lora.r) : lora.r);
  if (scale > SCALE_FAR_ABOVE) {
    const usual = round(2 * (rslora ? Math.sqrt(lora.r) : lora.r));
    candidates.push({
      factor: scale / SCALE_FAR_ABOVE,
      yamlPath: 'lora.lora_alpha',
      hint:
        `lora_alpha / ${rslora ? '√r' : 'r'} = ${round(scale)} scales every update ${round(scale)}× ` +
        `(1 to 2 is usual): set lora_alpha to ${usual}.`,
    });
  }

  const ratio = usesRatio(t.optimizer) ? t.loraplus_lr_ratio : 1; // riemannian, lorafa: one rate
  const lrB = t.learning_rate * ratio;
  if (lrB > LR_B_FAR_ABOVE) {
    // Blame λ when it is itself unusual, else the learning rate it multiplies.
    const ratioOff = ratio > RATIO_USUAL_MAX;
    const band = `${LR_B_USUAL[0]} to ${LR_B_USUAL[1]}`;
    candidates.push({
      factor: lrB / LR_B_FAR_ABOVE,
      yamlPath: ratioOff ? 'training.loraplus_lr_ratio' : 'training.learning_rate',
      hint: ratioOff
        ? `lora_B trains at learning_rate·λ = ${round(lrB)}, far above the usual ${band}: ` +
          `set loraplus_lr_ratio to ${RATIO_START}.`
        : `lora_B trains at learning_rate·λ = ${round(lrB)}, far above the usual ${band}: ` +
          `lower learning_rate to ${round(LR_B_USUAL[1] / ratio)} or below.`,
    });
  }

  const best = candidates.sort((a, b) => b.factor - a.factor)[0];
  if (best) return { yamlPath: best.yamlPath, hint: best.hint };
  if (t.max_grad_norm === 0 || t.max_grad_norm > CLIP_FAR_ABOVE) {
    return {
      yamlPath: 'training.max_grad_norm',
      hint:
        `max_grad_norm ${t.max_grad_norm} ${t.max_grad_norm === 0 ? 'turns clipping off' : 'clips nothing'}, ` +
        'so one gradient spike can blow up the weights: set max_grad_norm to 1.0, or lower learning_rate.',
    };
  }
  return {
    yamlPath: 'training.learning_rate',
    hint: 'Lower learning_rate (or loraplus_lr_ratio); a warmup (warmup_steps) also helps a spiky start.',
  };
}
