// `loraplus merge`: one or more adapters of one base model → a complete Hugging Face model folder (config.json,
// safetensors sharded when large, tokenizer files, README.md, merge_info.json) or a new PEFT adapter. Before
// anything is renamed into place, a probe batch runs through base + adapter and through the merged model; the
// folder is refused (or, with force, marked MERGE_CHECK_FAILED) when they differ by more than the tolerance or a
// merged tensor holds NaN/Inf. Steps: resolve inputs → combine → reference logits → write → check → rename.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { combinationError, combineAdapters } from '../../adapters/combine';
import { writeDirAtomicAsync } from '../../adapters/files';
import { ADAPTER_CONFIG_FILE, loadAdapter, loraScaling, saveAdapter, type Adapter } from '../../adapters/peft';
import type { Task } from '../../models/types';
import { LoraPlusError } from '../../protocol/errors';
import type { MergeInfo, MergeRequest, MergeSummary, OutDtype } from '../../protocol/merge';
import { selectBackend } from '../backend/select';
import { collectLabels, readRows } from '../data/datasets';
import { compareLogits, countNonFinite, DEFAULT_TOLERANCE, probeBatch, probeLogits } from './check';
import { mergedConfig, planMergedTensors } from './plan';
import { adapterEntry, CHECK_FAILED_MARK, MERGE_INFO_FILE, writeMergeReport } from './report';
import { locateBase, resolveAdapterDir, runOf, type RunConfig } from '../runs/adapter-dirs';
import { copyTokenizerFiles, listStoredTensors, parseShardSize, writeShards } from './write';
import { Rng } from '../data/rng';
import { buildModel, openModelFolder, padId, type ModelFolder } from '../train/inputs';
import { Trainables } from '../train/trainables';

export interface MergeOptions extends MergeRequest {
  log?: (line: string) => void;
}

const CAT_EXACT = 1e-5; // `cat` is exact: only float32 rounding separates it from Σ wᵢ·ΔWᵢ
/** PEFT's task_type → ours (the model card's Auto class). */
const TASK_TYPES: Record<string, string> = { CAUSAL_LM: 'causal-lm', SEQ_CLS: 'sequence-classification' };

export async function mergeAdapters(o: MergeOptions): Promise<MergeSummary> {
  const log = o.log ?? (() => undefined);
  const as = o.as ?? 'model';
  const tolerance = o.tolerance ?? DEFAULT_TOLERANCE;
  const dtype = o.dtype ?? 'auto';
  if (!o.adapters.length) throw usage('give at least one --adapter');
  const weights = o.weights?.length ? o.weights : o.adapters.map(() => 1);
  if (weights.length !== o.adapters.length)
    throw usage(`${o.adapters.length} --adapter but ${weights.length} --weight`);

  // ---- inputs --------------------------------------------------------------------------------------------------
  const dirs = o.adapters.map(resolveAdapterDir);
  // NaN/Inf adapters load: the check below names them, and --force may write them anyway.
  const adapters = dirs.map((d) => loadAdapter(d, { allowNonFinite: true }));
  const runs = dirs.map((d) => runOf(d));
  dirs.forEach((d, i) => {
    const c = adapters[i].config;
    const saved = [...adapters[i].modulesToSave.keys()];
    log(
      `adapter ${d}: ${adapters[i].lora.size} LoRA modules, r=${c.r}, lora_alpha=${c.lora_alpha}, ` +
        `scaling ${loraScaling(c).toPrecision(4)}${saved.length ? `, modules_to_save: ${saved.join(', ')}` : ''} ` +
        `· weight ${weights[i]}`,
    );
  });
  const base = resolveBase(o.base ?? null, dirs, runs, as === 'model');
  const out = path.resolve(o.out);
  guardOut(out, base, dirs);

  // ---- combine -------------------------------------------------------------------------------------------------
  const asIs = adapters.length === 1 && weights[0] === 1;
  const combination = asIs ? null : adapters.length === 1 ? 'linear' : (o.combination ?? 'linear');
  const combined = asIs
    ? adapters[0]
    : combineAdapters(adapters, { combination: combination!, weights, svdRank: o.svdRank, svdClamp: o.svdClamp });
  const combErr = adapters.length > 1 ? combinationError(combined, adapters, weights) : null;
  if (combination)
    log(
      `combined ${adapters.length} adapter(s) with ${combination}: ` +
        `r=${combined.config.r}, lora_alpha=${combined.config.lora_alpha}` +
        (combErr !== null ? `, distance from Σ wᵢ·ΔWᵢ ${combErr.toExponential(2)}` : ''),
    );
  const badModules = [...combined.lora]
    .filter(([, p]) => countNonFinite(p.A.data) + countNonFinite(p.B.data) > 0)
    .map(([m]) => m);

  const backend = await selectBackend(o.device ?? 'wasm');
  const info: MergeInfo = {
    tool: 'loraplus merge',
    created: new Date().toISOString(),
    as,
    base,
    task: TASK_TYPES[String(combined.config.task_type)] ?? null, // a model merge decides it from the base below
    adapters: dirs.map((d, i) => adapterEntry(d, weights[i], adapters[i])),
    combination,
    r: combined.config.r,
    lora_alpha: combined.config.lora_alpha,
    dtype,
    files: [],
    head: null,
    rekeyed: false,
    merge_check: {
      passed: false,
      tolerance,
      max_abs_diff: null,
      max_rel_diff: null,
      logits: 0,
      probe: '',
      backend: backend.name,
      nonfinite_tensors: [],
      combination_error: combErr,
      failures: [],
    },
  };
  const check = info.merge_check;
  // Written into <out>.tmp-<pid>, renamed to `out` only when the check passes (or with --force).
  await writeDirAtomicAsync(out, async (tmp) => {
    let lowPrecision = false; // merged weights rounded to float16/bfloat16
    if (as === 'adapter') writeAdapter(tmp, combined, info);
    else
      lowPrecision = await writeModel(tmp, base!, combined, runs, info, {
        dtype,
        maxShard: parseShardSize(o.maxShardSize ?? '5GB'),
        log,
      });
    if (combination === 'cat' && combErr !== null && combErr > CAT_EXACT)
      check.failures.push(
        'the cat combination differs from Σ wᵢ·ΔWᵢ by ' +
          `${combErr.toExponential(2)} (relative), expected ≤ ${CAT_EXACT}`,
      );
    // NaN/Inf first: it is the cause when the logits are NaN too. Named by the adapter's module, else the tensor.
    const merged = check.nonfinite_tensors.filter((k) => !badModules.some((m) => k.startsWith(`${m}.`)));
    if (badModules.length || merged.length)
      check.failures.unshift(`NaN/Inf in ${[...badModules.map((m) => `${m} (lora_A/lora_B)`), ...merged].join(', ')}`);
    if (as === 'adapter') check.nonfinite_tensors.push(...badModules.map((m) => `${m}.lora_A/lora_B`));
    check.passed = check.failures.length === 0;
    const diffs =
      check.max_abs_diff === null
        ? ''
        : `max |Δlogits| ${check.max_abs_diff.toExponential(2)} (relative ${check.max_rel_diff!.toExponential(2)}), ` +
          `tolerance ${tolerance.toExponential(0)} · `;
    log(`check: ${diffs}${check.passed ? 'passed' : `FAILED: ${check.failures.join('; ')}`}`);
    if (!check.passed && !o.force) {
      const fix =
        badModules.length || check.nonfinite_tensors.length
          ? 'The adapter holds NaN/Inf (training diverged): merge an earlier checkpoint'
          : `Raise --tolerance${lowPrecision ? ', or write float32 weights with --dtype float32' : ''}`;
      throw new LoraPlusError({
        code: 'merge/check-failed',
        message: `the merge check failed: ${check.failures.join('; ')}; nothing was written`,
        file: out,
        hint: `${fix}. --force writes the folder anyway, marked ${CHECK_FAILED_MARK}.`,
      });
    }
    writeMergeReport(tmp, info);
    info.files = [...info.files, 'README.md', MERGE_INFO_FILE];
  });
  log(`wrote ${out}${check.passed ? '' : ` (${CHECK_FAILED_MARK})`}`);
  return { ...info, ok: check.passed, out };
}

// ---- the two outputs ------------------------------------------------------------------------------------------------

function writeAdapter(dir: string, combined: Adapter, info: MergeInfo): void {
  saveAdapter(dir, combined);
  // Read back: what Python PEFT (and loadAdapter) will see must be what was combined.
  const back = loadAdapter(dir, { allowNonFinite: true });
  let diff = 0;
  for (const [m, p] of combined.lora) {
    const q = back.lora.get(m);
    if (!q) throw new Error(`internal: ${m} was not written`);
    for (const [x, y] of [
      [p.A.data, q.A.data],
      [p.B.data, q.B.data],
    ])
      for (let i = 0; i < x.length; i++) diff = Math.max(diff, Math.abs(x[i] - y[i]));
  }
  if (diff > 0) info.merge_check.failures.push(`the written adapter differs from the combination by ${diff}`);
  info.files = fs.readdirSync(dir).sort();
}

async function writeModel(
  dir: string,
  base: string,
  combined: Adapter,
  runs: (RunConfig | null)[],
  info: MergeInfo,
  o: { dtype: OutDtype; maxShard: number; log: (l: string) => void },
): Promise<boolean> {
  const check = info.merge_check;
  const folder = openModelFolder(base);
  const task = taskOf(folder, combined);
  const labels =
    runs.map((r) => (task === 'sequence-classification' && r ? runLabels(r) : null)).find((l) => l !== null) ?? null;
  const numLabels = task === 'sequence-classification' ? headLabels(combined, labels, folder) : 0;
  info.task = task;
  o.log(`base ${base}: ${folder.config.model_type} as ${task}${numLabels ? ` with ${numLabels} labels` : ''}`);

  // Reference: base + adapter, as `eval`/`generate --adapter` run it. Then the merged checkpoint is written while
  // the base model is still open (its layouts decide Conv1D transposes).
  const ref = buildModel(folder, task, numLabels, new Rng(0));
  let refLogits: Float32Array;
  let probe: ReturnType<typeof probeBatch>;
  let lowPrecision: boolean;
  try {
    if (ref.headCreated && ![...combined.modulesToSave.keys()].some((k) => k.startsWith(`${ref.head}.`))) {
      throw new LoraPlusError({
        code: 'merge/no-head',
        message:
          'the adapter is a sequence classifier, ' +
          `but neither it nor the base model holds a trained '${ref.head}' head`,
        file: base,
        hint: `Train with the head in modules_to_save (the default), or merge into a base model that has the head.`,
      });
    }
    const weights = Trainables.fromAdapter(ref, folder.family, combined);
    try {
      probe = probeBatch(folder, task, ref.vocabSize);
      refLogits = await probeLogits(ref, probe, weights);
    } finally {
      weights.dispose();
    }
    const plan = planMergedTensors(folder, listStoredTensors(base), combined, ref, o.dtype);
    const headKeys = [...plan.added, ...plan.replaced];
    const head = headKeys.length ? `, head ${headKeys.join(', ')}` : '';
    o.log(`writing ${plan.tensors.length} tensors (${plan.merged.length} merged${head})`);
    info.files = writeShards(dir, plan.tensors, o.maxShard);
    lowPrecision = plan.tensors.some((t) => plan.merged.includes(t.key) && (t.dtype === 'F16' || t.dtype === 'BF16'));
    check.nonfinite_tensors.push(...plan.nonfinite);
    info.rekeyed = plan.rekeyed;
    info.head =
      plan.added.length || plan.replaced.length ? { added: plan.added, replaced: plan.replaced, labels } : null;
  } finally {
    ref.dispose();
  }
  const config = mergedConfig(folder.config, {
    task,
    labels,
    numLabels,
    padId: padId(folder),
    decoder: folder.family.tasks.includes('causal-lm'),
    dtype: o.dtype,
  });
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
  info.files.push('config.json', ...copyTokenizerFiles(base, dir));

  // The merged folder as the engine opens it (so also the index and shards), on the same probe. Merged NaN/Inf
  // already fail the check (nonfinite_tensors), and the engine refuses to build a model on them.
  if (check.nonfinite_tensors.length) return lowPrecision;
  const merged = buildModel(openModelFolder(dir), task, numLabels, new Rng(1));
  try {
    if (merged.headCreated) check.failures.push(`the merged model has no '${merged.head}' head weights`);
    const diff = compareLogits(await probeLogits(merged, probe), refLogits);
    Object.assign(check, {
      max_abs_diff: diff.max_abs_diff,
      max_rel_diff: diff.max_rel_diff,
      logits: diff.logits,
      probe: `${probe.batch} × ${probe.seq} tokens`,
    });
    if (diff.nonfinite) check.failures.push(`${diff.nonfinite} of ${diff.logits} merged logits are NaN/Inf`);
    if (diff.max_abs_diff > check.tolerance)
      check.failures.push(
        'merged logits differ from base + adapter by up to ' +
          `${diff.max_abs_diff.toExponential(2)} > tolerance ${check.tolerance}`,
      );
  } finally {
    merged.dispose();
  }
  return lowPrecision;
}

// ---- inputs --------------------------------------------------------------------------------------------------------

// Label names in label-id order, as the run trained them (data.labels, else the training data's labels).
function runLabels(run: RunConfig): string[] | null {
  const data = run.config.data as Record<string, unknown> | undefined;
  try {
    if (Array.isArray(data?.labels) && data.labels.length) return data.labels.map(String);
    if (typeof data?.train !== 'string') return null;
    const file = path.resolve(run.dir, data.train);
    return collectLabels(readRows(file), {
      labelField: typeof data.label_field === 'string' ? data.label_field : 'label',
      file,
    });
  } catch {
    return null; // the data moved: labels fall back to the checkpoint's or LABEL_i
  }
}

function resolveBase(
  explicit: string | null,
  dirs: string[],
  runs: (RunConfig | null)[],
  required: boolean,
): string | null {
  if (explicit) {
    const d = path.resolve(explicit);
    if (!fs.existsSync(path.join(d, 'config.json')))
      throw new LoraPlusError({
        code: 'merge/base-not-found',
        message: '--base is not a model folder (no config.json)',
        file: d,
        hint:
          'Point --base at the Hugging Face folder of the base model ' +
          '(config.json, model.safetensors, tokenizer files).',
      });
    return d;
  }
  const found = dirs.map((d, i) => locateBase(d, runs[i]));
  const missing = found.findIndex((f) => !f.dir);
  if (missing >= 0) {
    if (!required) return null;
    const { named } = found[missing];
    throw new LoraPlusError({
      code: 'merge/base-not-found',
      file: dirs[missing],
      message: named
        ? `${ADAPTER_CONFIG_FILE} names the base model '${named}', which is not a model folder here ` +
          '(a Hub id, or a path on another machine)'
        : `${ADAPTER_CONFIG_FILE} does not name its base model`,
      hint:
        'Pass --base MODEL_DIR: ' +
        'the local folder of that base model (config.json, model.safetensors, tokenizer files).',
    });
  }
  const distinct = [...new Set(found.map((f) => f.dir!))];
  if (distinct.length > 1) {
    throw new LoraPlusError({
      code: 'merge/base-mismatch',
      message: `the adapters name different base models: ${distinct.join(', ')}`,
      hint:
        'Adapters can only be combined on the same base model; ' +
        'pass --base MODEL_DIR if these are copies of one model.',
    });
  }
  return distinct[0];
}

function guardOut(out: string, base: string | null, dirs: string[]): void {
  // Renaming into place replaces `out` with everything inside it: it must not hold the inputs.
  const within = (child: string, parent: string) => child === parent || child.startsWith(parent + path.sep);
  const clash = [...(base ? [base] : []), ...dirs].find((d) => within(d, out));
  if (clash) {
    throw new LoraPlusError({
      code: 'merge/bad-out',
      message: `the output folder would replace ${clash === base ? 'the base model' : 'an input adapter'} (${clash})`,
      file: out,
      hint: 'Choose a new folder for --out, e.g. <run>/merged.',
    });
  }
  if (fs.existsSync(out) && fs.readdirSync(out).length && !fs.existsSync(path.join(out, MERGE_INFO_FILE))) {
    throw new LoraPlusError({
      code: 'merge/out-exists',
      message: 'the output folder exists and is not the output of an earlier merge',
      file: out,
      hint: 'Choose a new folder for --out, or delete this one first.',
    });
  }
}

function taskOf(folder: ModelFolder, adapter: Adapter): Task {
  if (!folder.family.tasks.includes('causal-lm')) return 'sequence-classification';
  if (adapter.config.task_type === 'SEQ_CLS') return 'sequence-classification';
  if (adapter.config.task_type === 'CAUSAL_LM') return 'causal-lm';
  return [...adapter.modulesToSave.keys()].some((k) => /^(score|classifier)\./.test(k))
    ? 'sequence-classification'
    : 'causal-lm';
}

// The label count: the trained head's rows, else the run's labels, else the base checkpoint's config.
function headLabels(adapter: Adapter, labels: string[] | null, folder: ModelFolder): number {
  const head = [...adapter.modulesToSave].find(([k]) => /(^|\.)(score|classifier|out_proj)\.weight$/.test(k));
  if (head) return head[1].shape[0];
  if (labels?.length) return labels.length;
  const id2label = folder.config.id2label;
  if (id2label && typeof id2label === 'object') return Object.keys(id2label).length;
  return typeof folder.config.num_labels === 'number' ? folder.config.num_labels : 2;
}

function usage(message: string): LoraPlusError {
  return new LoraPlusError({ code: 'cli/usage', message, hint: "Run 'loraplus merge --help'." });
}
