// What a merge is asked to do and what it reports: plain data shared by the engine (src/engine/merge), the CLI and
// the extension host, which asks the engine process for a merge and shows its summary.

/** How several adapters of one base combine, as PEFT's add_weighted_adapter. */
export type Combination = 'linear' | 'cat' | 'svd';
export const COMBINATIONS: readonly Combination[] = ['linear', 'cat', 'svd'];

/** auto: each tensor in the checkpoint's dtype; float32: every float tensor in float32. */
export type OutDtype = 'auto' | 'float32';

/** The backends a run, a merge's check or an evaluation can use (`device:` in a config). */
export type Device = 'auto' | 'cuda' | 'webgpu' | 'wasm' | 'cpu';

export interface MergeRequest {
  adapters: string[]; // adapter folders, checkpoint folders or run folders (final/, else the newest checkpoint)
  weights?: number[]; // one per adapter (default 1 each)
  base?: string | null; // default: the adapters' base_model_name_or_path, else their run's model
  out: string;
  combination?: Combination; // several adapters (default linear, as the CLI); one adapter is always linear
  svdRank?: number | null;
  svdClamp?: number | null;
  as?: 'model' | 'adapter';
  maxShardSize?: string | number; // default "5GB", as transformers
  tolerance?: number; // max |Δlogits| allowed (default 1e-4)
  force?: boolean; // write even when the check fails, marked MERGE_CHECK_FAILED
  device?: Device; // backend for the check (default wasm: full float32 on the CPU)
  dtype?: OutDtype;
}

/** The check's outcome, as printed, written to merge_info.json and returned as JSON. */
export interface MergeCheck {
  passed: boolean;
  tolerance: number;
  max_abs_diff: number | null; // null for --as adapter (no merged model)
  max_rel_diff: number | null;
  logits: number;
  probe: string; // e.g. "3 × 16 tokens"
  backend: string;
  nonfinite_tensors: string[]; // merged tensors holding NaN/Inf
  combination_error: number | null; // ‖ΔW·x − Σ wᵢΔWᵢ·x‖∞ relative, probed; null for a single adapter
  failures: string[]; // why it failed, one sentence each
}

/** merge_info.json. */
export interface MergeInfo {
  tool: string;
  created: string;
  as: 'model' | 'adapter';
  base: string | null;
  task: string | null;
  adapters: {
    path: string;
    weight: number;
    r: number;
    lora_alpha: number;
    use_rslora: boolean;
    loraplus_lr_ratio: number | null;
  }[];
  combination: Combination | null; // null: one adapter at weight 1, merged as it is
  r: number;
  lora_alpha: number;
  dtype: string;
  files: string[];
  head: { added: string[]; replaced: string[]; labels: string[] | null } | null;
  rekeyed: boolean;
  merge_check: MergeCheck;
}

export interface MergeSummary extends MergeInfo {
  ok: boolean; // the check passed (false only with force)
  out: string;
}
