// Learning-rate schedules as multipliers of each group's peak lr, with transformers' exact formulas
// (get_linear_schedule_with_warmup etc.): `step` counts optimizer steps taken before this one, from 0.

export type Scheduler = 'constant' | 'linear' | 'cosine';

export function lrMultiplier(kind: Scheduler, step: number, warmup: number, total: number): number {
  if (step < warmup) return step / Math.max(1, warmup);
  if (kind === 'constant') return 1;
  const progress = (step - warmup) / Math.max(1, total - warmup);
  if (kind === 'linear') return Math.max(0, 1 - progress);
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
