// The run explorer as data: what each tree item shows for a RunSummary (label, description, tooltip, icon, menus),
// the order of runs, and whether a run without an `end` is still running. No `vscode` import: run-tree.ts turns
// these into TreeItems, and the tests check them on real run folders.
import * as path from 'node:path';
import type { CheckpointSummary, RunSummary } from '../../engine/runs/summary';
import type { EvalEvent, RunStatus } from '../../protocol/events';
import { CONTEXT } from '../command-table';

export interface ItemIcon {
  id: string; // codicon id, e.g. 'sync~spin'
  color?: string; // theme color id
}

export interface ItemData {
  id: string; // stable across refreshes, so VS Code keeps expansion and selection
  label: string;
  description: string;
  tooltip: string; // Markdown
  icon: ItemIcon;
  contextValue: string;
}

export interface RunItemData extends ItemData {
  collapsible: boolean;
}

export interface ChildItemData extends ItemData {
  kind: 'checkpoint' | 'adapter';
  dir: string;
  step: number;
}

// ---- Order ----------------------------------------------------------------------------------------------------------

/** When the run's latest session started (a resumed run moves up), else when its metrics last changed. */
export function startedAt(s: RunSummary): number {
  const t = s.start ? Date.parse(s.start.time) : NaN;
  return Number.isFinite(t) ? t : s.updated;
}

/** Newest first; ties by name, so the order never flickers while runs write. */
export function sortRuns(runs: RunSummary[]): RunSummary[] {
  return [...runs].sort(
    (a, b) => startedAt(b) - startedAt(a) || a.name.localeCompare(b.name) || a.dir.localeCompare(b.dir),
  );
}

// ---- Figures --------------------------------------------------------------------------------------------------------

/** 3 significant digits, no trailing zeros: 16, 0.5, 0.000125. */
export function fmtNumber(x: number): string {
  return Number.isFinite(x) ? String(Number(x.toPrecision(3))) : String(x);
}

/** Losses with 4 decimals, as the dashboard shows them. */
export function fmtLoss(x: number | null | undefined): string {
  return typeof x === 'number' && Number.isFinite(x) ? x.toFixed(4) : '–';
}

/** An eval's headline figure: accuracy (classification), perplexity (causal LM), else its loss. */
export function fmtEvalHeadline(e: Pick<EvalEvent, 'loss' | 'accuracy' | 'perplexity'>): string {
  if (typeof e.accuracy === 'number') return `acc ${(e.accuracy * 100).toFixed(1)}%`;
  if (typeof e.perplexity === 'number')
    return `ppl ${e.perplexity >= 1000 ? e.perplexity.toExponential(2) : e.perplexity.toFixed(1)}`;
  return `eval loss ${fmtLoss(e.loss)}`;
}

/** Every figure of an eval: "acc 58.5% · loss 0.6812". */
export function fmtEval(e: Pick<EvalEvent, 'loss' | 'accuracy' | 'perplexity'>): string {
  const head = fmtEvalHeadline(e);
  return head.startsWith('eval loss') ? head : `${head} · loss ${fmtLoss(e.loss)}`;
}

export function fmtSteps(s: RunSummary): string {
  return `step ${s.step}${s.totalSteps ? `/${s.totalSteps}` : ''}`;
}

// ---- Items ----------------------------------------------------------------------------------------------------------

const ICONS: Record<RunStatus, ItemIcon> = {
  running: { id: 'sync~spin' },
  finished: { id: 'pass', color: 'testing.iconPassed' },
  stopped: { id: 'debug-pause' },
  failed: { id: 'error', color: 'testing.iconFailed' },
  interrupted: { id: 'warning', color: 'list.warningForeground' },
};

export function statusIcon(status: RunStatus): ItemIcon {
  return ICONS[status];
}

/**
 * A run's item. Its description starts with the status word (the e2e tests and the UI contract rely on it), then
 * the figures: "finished · step 300/300 · acc 58.5% · λ16 r8". `where` names its folder when runs live in several.
 */
export function runItem(s: RunSummary, where?: string): RunItemData {
  const set = s.settings;
  const figures = [s.status, fmtSteps(s)];
  if (s.bestEval) figures.push(fmtEvalHeadline(s.bestEval));
  else if (s.lastLoss !== null) figures.push(`loss ${fmtLoss(s.lastLoss)}`);
  const hyper = [set.ratio !== null ? `λ${fmtNumber(set.ratio)}` : '', set.r !== null ? `r${set.r}` : '']
    .filter(Boolean)
    .join(' ');
  if (hyper) figures.push(hyper);
  if (where) figures.push(where);
  return {
    id: `run:${s.dir}`,
    label: s.name,
    description: figures.join(' · '),
    tooltip: runTooltip(s),
    icon: statusIcon(s.status),
    contextValue:
      s.status === 'running' ? CONTEXT.runRunning : s.status === 'finished' ? CONTEXT.runFinished : CONTEXT.runIdle,
    collapsible: s.checkpoints.length > 0 || s.finalAdapter !== null,
  };
}

export function runTooltip(s: RunSummary): string {
  const set = s.settings;
  const st = s.start;
  const lines = [`**${md(s.name)}**: ${s.status}`, ''];
  const row = (k: string, v: string | null) => v !== null && lines.push(`- ${k}: ${v}`);
  row('model', set.model !== null ? `${md(path.basename(set.model))}${st ? ` (${md(st.model_type)})` : ''}` : null);
  row('task', set.task !== null ? md(set.task) : null);
  row('backend', st ? `${md(st.backend)} on ${md(st.device)}${st.threads > 1 ? `, ${st.threads} threads` : ''}` : null);
  row(
    'steps',
    `${s.step}${s.totalSteps ? ` of ${s.totalSteps}` : ''}${s.lastLoss !== null ? `, last loss ${fmtLoss(s.lastLoss)}` : ''}`,
  );
  row('best eval', s.bestEval ? `${fmtEval(s.bestEval)} at step ${s.bestEval.step}` : null);
  row('LoRA', set.r !== null ? `r ${set.r}${set.alpha !== null ? `, α ${fmtNumber(set.alpha)}` : ''}` : null);
  row('λ (loraplus_lr_ratio)', set.ratio !== null ? fmtNumber(set.ratio) : null);
  row('lr', set.lrA !== null ? `A ${fmtNumber(set.lrA)}${set.lrB !== null ? `, B ${fmtNumber(set.lrB)}` : ''}` : null);
  row('checkpoints', s.checkpoints.length ? String(s.checkpoints.length) : null);
  if (s.error) lines.push('', `**error:** ${md(s.error)}`);
  lines.push('', `\`${s.dir.replace(/`/g, "'")}\``);
  return lines.join('\n');
}

/** A run's children: its checkpoints, oldest first, then the final adapter. */
export function childItems(s: RunSummary): ChildItemData[] {
  const best = s.bestEval?.step;
  const out: ChildItemData[] = s.checkpoints.map((c) => checkpointItem(s, c, c.eval !== null && c.step === best));
  if (s.finalAdapter) {
    const atEnd = s.lastEval && s.lastEval.step === s.step ? s.lastEval : null;
    out.push({
      kind: 'adapter',
      id: `adapter:${s.finalAdapter}`,
      dir: s.finalAdapter,
      step: s.step,
      label: 'final adapter',
      description: [`step ${s.step}`, atEnd ? fmtEval(atEnd) : ''].filter(Boolean).join(' · '),
      tooltip: `**final adapter** of ${md(s.name)} (PEFT: adapter_config.json + adapter_model.safetensors)\n\n${atEnd ? `- eval: ${fmtEval(atEnd)}\n\n` : ''}\`${s.finalAdapter}\``,
      icon: { id: 'package' },
      contextValue: CONTEXT.adapter,
    });
  }
  return out;
}

function checkpointItem(s: RunSummary, c: CheckpointSummary, best: boolean): ChildItemData {
  const evalText = c.eval ? fmtEval(c.eval) : '';
  return {
    kind: 'checkpoint',
    id: `checkpoint:${c.dir}`,
    dir: c.dir,
    step: c.step,
    label: `step ${c.step}`,
    description: [evalText, best ? 'best' : ''].filter(Boolean).join(' · '),
    tooltip: `**checkpoint at step ${c.step}** of ${md(s.name)}${best ? ' (best eval)' : ''}\n\n${c.eval ? `- eval: ${evalText}\n\n` : ''}\`${c.dir}\``,
    icon: { id: best ? 'star-full' : 'save' },
    contextValue: CONTEXT.checkpoint,
  };
}

// ---- File events ----------------------------------------------------------------------------------------------------

/** The run folder a changed file belongs to: `<run>/metrics.jsonl`, `<run>/checkpoints/…`, `<run>/final…/…`. */
export function runDirOfFile(file: string): string | null {
  if (path.basename(file) === 'metrics.jsonl') return path.dirname(file);
  for (let p = file; path.dirname(p) !== p; p = path.dirname(p)) {
    // final.tmp-<pid> / final.old-<pid>: writeDirAtomic's folders around the rename
    if (/^(checkpoints|final(\.(tmp|old)-\d+)?)$/.test(path.basename(p))) return path.dirname(p);
  }
  return null;
}

// ---- Small helpers ------------------------------------------------------------------------------------------------

/** Escapes Markdown in text from files (run names, models, error messages), all shown mid-line. */
function md(text: string): string {
  return text.replace(/[\\`*_[\]<>|~]/g, '\\$&');
}
