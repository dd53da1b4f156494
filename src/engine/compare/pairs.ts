// How alike two compared adapters are, module by module (the report's `similarity`):
//   cosine    ⟨ΔW₁, ΔW₂⟩ / (‖ΔW₁‖‖ΔW₂‖): are the updates the same matrix, up to scale?
//   out       φ of the left-singular vectors of ΔW (B's span): do they change the outputs along the same directions?
//   delta     φ of the right-singular vectors of ΔW (A's row space), Hu et al. 2021 §7: do they read the same inputs?
//   A         φ of lora_A's rows, the paper's own choice (equal to `delta` at full rank whenever B has full rank)
// and whether the two runs started from the same lora_A, which makes the input side alike by construction.
import type { Adapter, LoraPair } from '../../adapters/peft';
import { loraScaling, moduleLoraParams } from '../../adapters/peft';
import type { SvdResult } from '../../adapters/svd';
import type { CompareItem, ModuleSimilarity, PairSimilarity, SharedInit } from '../../protocol/compare';
import { deltaCosine, deltaSvd, matrixCosine, moduleStat, subspaceSimilarity } from './stats';
import { lowRankSvd, matrix } from '../../adapters/svd';

/** One module of one adapter, with what its comparisons need (lora_A's SVD only when a pair asks). */
export interface ModuleSpectra {
  stat: ReturnType<typeof moduleStat>;
  pair: LoraPair;
  scaling: number;
  delta: SvdResult;
  A: () => SvdResult;
}

export function spectraOf(adapter: Adapter): Map<string, ModuleSpectra> {
  const out = new Map<string, ModuleSpectra>();
  for (const module of [...adapter.lora.keys()].sort(byLayerThenName)) {
    const pair = adapter.lora.get(module)!;
    const scaling = loraScaling(moduleLoraParams(adapter.config, module));
    const delta = deltaSvd(pair, scaling);
    let a: SvdResult | null = null;
    // lora_A [r, in] = I_r · A: the same QR route as ΔW, O(in·r²) rather than a Jacobi sweep over [in, r].
    const r = pair.A.shape[0];
    const identity = matrix(
      Array.from({ length: r * r }, (_, i) => (i % (r + 1) === 0 ? 1 : 0)),
      r,
      r,
    );
    out.set(module, {
      stat: moduleStat(module, pair, scaling, delta),
      pair,
      scaling,
      delta,
      A: () => (a ??= lowRankSvd(identity, matrix(pair.A.data, r, pair.A.shape[1]))),
    });
  }
  return out;
}

export function pairSimilarity(
  items: [CompareItem, CompareItem, number, number],
  sa: Map<string, ModuleSpectra>,
  sb: Map<string, ModuleSpectra>,
  grid: boolean,
): PairSimilarity {
  const [itemA, itemB, a, b] = items;
  const modules: ModuleSimilarity[] = [];
  const skipped: string[] = [];
  for (const [module, x] of sa) {
    const y = sb.get(module);
    if (!y || y.stat.shape[1] !== x.stat.shape[1]) {
      skipped.push(module);
      continue;
    }
    modules.push(moduleSimilarity(module, x, y, grid));
  }
  for (const module of sb.keys()) if (!sa.has(module)) skipped.push(module);
  const mean = (f: (m: ModuleSimilarity) => number | null) => {
    const v = modules.map(f).filter((p): p is number => p !== null);
    return v.length ? v.reduce((s, p) => s + p, 0) / v.length : null;
  };
  return {
    a,
    b,
    modules,
    skipped,
    mean: {
      delta: mean((m) => m.delta.phi),
      out: mean((m) => m.out.phi),
      A: mean((m) => m.A.phi),
      cosine: mean((m) => m.cosine),
      a_cosine: mean((m) => m.a_cosine),
    },
    shared_init: sharedInit(itemA, itemB),
  };
}

function moduleSimilarity(module: string, x: ModuleSpectra, y: ModuleSpectra, grid: boolean): ModuleSimilarity {
  return {
    module,
    layer: x.stat.layer,
    kind: x.stat.kind,
    r1: x.stat.r,
    r2: y.stat.r,
    delta: subspaceSimilarity(x.delta, y.delta, grid, 'in'),
    out: x.stat.shape[0] === y.stat.shape[0] ? subspaceSimilarity(x.delta, y.delta, grid, 'out') : NONE,
    A: subspaceSimilarity(x.A(), y.A(), grid),
    cosine: round6(deltaCosine(x.pair, x.scaling, y.pair, y.scaling)),
    a_cosine: round6(matrixCosine(x.pair.A, y.pair.A)),
  };
}

/** What draws a run's initial lora_A (src/engine/train/trainer.ts: one seeded generator, the head first). */
export const INIT_KEYS = [
  'training.seed',
  'model',
  'task',
  'lora.r',
  'lora.target_modules',
  'lora.init_adapter',
] as const;

/** Whether two runs started from the same lora_A, from their configs; null when one is a bare adapter. */
export function sharedInit(a: CompareItem, b: CompareItem): SharedInit | null {
  if (a.run === null || b.run === null) return null;
  const differs = INIT_KEYS.filter((k) => JSON.stringify(a.config[k] ?? null) !== JSON.stringify(b.config[k] ?? null));
  const seed = a.config['training.seed'];
  return { same: differs.length === 0, seed: differs.length === 0 && typeof seed === 'number' ? seed : null, differs };
}

/** model.layers.2.x before model.layers.10.x: numbers compare as numbers. */
export function byLayerThenName(x: string, y: string): number {
  return x.localeCompare(y, 'en', { numeric: true });
}

const NONE = { phi: null, diag: [] }; // another output size: nothing to compare on that side
const round6 = (x: number | null): number | null => (x === null ? null : Math.round(x * 1e6) / 1e6);
