// `loraplus compare` and the compare webview's data: runs, checkpoints and PEFT adapter folders side by side.
//   compare(paths, opts) → CompareReport   configs (with the keys that differ), metrics, curves, per-module spectra
//                                          of ΔW, and the subspace similarity of every pair (Hu et al. 2021, §7)
//   evaluateItems(report, …)               each item's adapter on one eval set (the engine's evaluate())
// The report is plain JSON (src/protocol/compare.ts); nothing here touches tensors except the evaluation.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadAdapter } from '../../adapters/peft';
import type { CompareReport, EvalOutcome, ItemEval } from '../../protocol/compare';
import { LoraPlusError, toErrorInfo } from '../../protocol/errors';
import { ourDevice, selectBackend } from '../backend/select';
import { requireCheckedConfig } from '../checks/config';
import { diffConfigs } from '../../config/flatten';
import { describeItem, locateItem, uniqueLabels } from './items';
import { captionItems } from './captions';
import { pairSimilarity, spectraOf } from './pairs';
import { NUMERICAL_RANK_TOL } from './stats';
import { evaluate } from '../train/evaluate';
import { CONFIG_FILE } from '../runs/writer';
import { Rng } from '../data/rng';
import { buildModel, loadEvalData, openModelFolder, padId } from '../train/inputs';
import { Trainables } from '../train/trainables';
import type { Device } from '../../protocol/merge';
import { modelTask } from '../../models/types';

export interface CompareOptions {
  pairs?: 'all' | 'first'; // every pair of items (default), or each item against the first
  grid?: boolean; // include the full φ(i, j) grid of every module (r1·r2 numbers each)
  evalConfig?: string; // the config whose data.eval evaluations use (default: the first run's config.yaml)
}

export const DEFINITIONS: Record<string, string> = {
  delta_w:
    'ΔW = scaling · lora_B · lora_A [out, in], scaling = lora_alpha / r ' +
    '(lora_alpha / √r with use_rslora), per module after rank_pattern/alpha_pattern',
  sigma:
    'singular values of ΔW, descending, computed from the factors ' +
    '(QR of B and Aᵀ, then the SVD of the r×r core) in float64',
  norm: '‖ΔW‖_F = √(Σ σ²)',
  effective_rank: 'exp(H(p)), H the Shannon entropy of p = σ / Σσ (Roy & Vetterli 2007); between 1 and r, 0 for ΔW = 0',
  numerical_rank: `number of σ above ${NUMERICAL_RANK_TOL} · σ_max`,
  energy_rank_90: 'least k whose top-k σ² hold 90% of ‖ΔW‖_F²',
  phi:
    'input side: subspace similarity of Hu et al. 2021 (LoRA, §7), φ(i, j) = ‖U_iᵀ V_j‖_F² / min(i, j) ∈ [0, 1], ' +
    "U_i and V_j the top-i and top-j right-singular vectors of the two adapters (delta: of ΔW, spanning A's row " +
    'space; A: of lora_A, the same span at full rank); phi is φ(r1, r2); 1 for identical subspaces, about ' +
    'max(i, j)/in for unrelated random ones; null when a ΔW is zero. Two runs that share their initial lora_A ' +
    '(shared_init) start at φ = 1 here, and a small lr_A keeps them there whatever they learn',
  phi_out:
    "output side (out): the same φ on the left-singular vectors of ΔW, which span lora_B's columns: where the " +
    'two updates move the outputs; about max(i, j)/out for unrelated ones',
  cosine:
    'cos(ΔW₁, ΔW₂) = ⟨ΔW₁, ΔW₂⟩_F / (‖ΔW₁‖_F ‖ΔW₂‖_F) ∈ [-1, 1], from r×r Gram products: ' +
    's₁s₂·tr((B₁ᵀB₂)(A₂A₁ᵀ)); 1 for the same update up to scale, about 0 for unrelated ones',
  a_cosine: 'entrywise cosine of the two lora_A (same r): near 1 when both stayed near one initialisation',
  shared_init:
    'whether two runs started from the same lora_A: the same ' +
    'training.seed, model, task, lora.r, lora.target_modules and lora.init_adapter',
  metrics:
    "as of the item's step: the last training loss and eval at or before it, and the best (lowest-loss) eval up to it",
};

export function compare(paths: string[], opts: CompareOptions = {}): CompareReport {
  if (!paths.length)
    throw new LoraPlusError({
      code: 'compare/usage',
      message: 'nothing to compare',
      hint: 'Pass two or more run, checkpoint or adapter folders.',
    });
  const locations = paths.map(locateItem);
  const adapters = locations.map((l) => loadAdapter(l.adapterDir));
  const described = locations.map((l, i) => describeItem(l, adapters[i]));
  const items = described.map((d) => d.item);
  uniqueLabels(items);
  const { keys, differs } = diffConfigs(items.map((it) => it.config));
  captionItems(items, differs);

  const spectra = adapters.map(spectraOf);
  const modules = spectra.map((m) => [...m.values()].map((s) => s.stat));
  const pairs: [number, number][] = [];
  for (let a = 0; a < items.length; a++) {
    for (let b = a + 1; b < items.length; b++) if (opts.pairs !== 'first' || a === 0) pairs.push([a, b]);
  }
  return {
    version: 1,
    created: new Date().toISOString(),
    items,
    config_keys: keys,
    differs,
    curves: described.map((d) => d.curves),
    modules,
    similarity: pairs.map(([a, b]) =>
      pairSimilarity([items[a], items[b], a, b], spectra[a], spectra[b], Boolean(opts.grid)),
    ),
    eval_config: evalConfigOf(
      items.map((it) => it.run_dir),
      opts.evalConfig,
    ),
    definitions: DEFINITIONS,
  };
}

function evalConfigOf(runDirs: (string | null)[], override?: string): string | null {
  if (override) return path.resolve(override);
  const dir = runDirs.find((d) => d && fs.existsSync(path.join(d, CONFIG_FILE)));
  return dir ? path.join(dir, CONFIG_FILE) : null;
}

// ---- evaluation ---------------------------------------------------------------------------------------------------

/**
 * Evaluates each item's adapter (or those listed in `only`) on the eval set of `report.eval_config` (or
 * `opts.evalConfig`), with one base model built once. Each adapter loads with its own r, lora_alpha and
 * modules_to_save (a classification head it saved replaces the fresh one). A failing item gets its error.
 */
export async function evaluateItems(
  report: CompareReport,
  opts: { evalConfig?: string; device?: Device; only?: number[] } = {},
): Promise<ItemEval[]> {
  const configFile = opts.evalConfig ? path.resolve(opts.evalConfig) : report.eval_config;
  if (!configFile) {
    throw new LoraPlusError({
      code: 'compare/no-eval-config',
      message: 'none of the compared items is a run with a config.yaml, so there is no eval set to use',
      hint:
        'Pass --eval-config CONFIG (a training config whose data.eval ' +
        'names the eval set and whose model is the base model).',
    });
  }
  const items = opts.only ?? report.items.map((_, k) => k);
  const evals = await evaluateAdapters(
    items.map((i) => report.items[i].adapter_dir),
    configFile,
    opts.device,
  );
  return evals.map((e) => ({ ...e, item: items[e.item] }));
}

/**
 * Evaluates adapter folders on the eval set of a training config, with one base model built once; `item` in the
 * result indexes `adapterDirs`. Each adapter loads with its own r, lora_alpha and modules_to_save (a classification
 * head it saved replaces the fresh one). A failing adapter gets its error; the others still run.
 */
export async function evaluateAdapters(
  adapterDirs: string[],
  configFile: string,
  device?: Device,
): Promise<ItemEval[]> {
  const config = requireCheckedConfig(configFile);
  const backend = await selectBackend(device ?? ourDevice(config.device));
  const folder = openModelFolder(config.model);
  const data = loadEvalData(config, folder.tokenizer);
  const model = buildModel(folder, modelTask(config.task), data.labels.length, new Rng(config.training.seed));
  const out: ItemEval[] = [];
  try {
    for (const [i, dir] of adapterDirs.entries()) {
      let weights: Trainables | null = null;
      try {
        weights = Trainables.fromAdapter(model, folder.family, loadAdapter(dir));
        const r = await evaluate(model, data.eval, padId(folder), config.training.batch_size, weights);
        const outcome: EvalOutcome = { ...r, data: config.data.eval ?? config.data.train, backend: backend.backend };
        out.push({ item: i, ...outcome });
      } catch (err) {
        out.push({ item: i, error: toErrorInfo(err) });
      } finally {
        weights?.dispose();
      }
    }
  } finally {
    model.dispose();
  }
  return out;
}
