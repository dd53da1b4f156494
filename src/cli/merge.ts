// `loraplus merge`: adapters → a merged Hugging Face model folder (or a combined PEFT adapter), checked against
// base + adapter before it is written. Progress goes to stderr; --json prints one summary object on stdout.
import { parseArgs } from 'node:util';
import { LoraPlusError } from '../protocol/errors';
import { COMBINATIONS, type Combination, type Device } from '../protocol/merge';
import { DEFAULT_TOLERANCE } from '../engine/merge/check';
import { mergeAdapters } from '../engine/merge/merge';

// Under main's usage, each command's description starts at this column.
const COLUMN = ' '.repeat(55);
export const MERGE_USAGE = [
  '  loraplus merge --adapter DIR [--adapter DIR --weight W ...] --out DIR [--as model|adapter] ' +
    '[--combination linear|cat|svd]',
  `${COLUMN}merge adapter(s) into a model folder, checked against base + adapter`,
  `${COLUMN}(loraplus merge --help for every option)`,
].join('\n');

const MERGE_HELP = `loraplus merge --adapter DIR [--adapter DIR --weight W ...] --out DIR [options]

Merges LoRA adapter(s) into their base model and writes a complete Hugging Face model folder (config.json,
safetensors shards, tokenizer files, README.md, merge_info.json), or with --as adapter a new PEFT adapter. A probe
batch runs through base + adapter and through the merged model first; the folder is refused when their logits
differ by more than --tolerance or a merged tensor holds NaN/Inf.

      --adapter DIR         adapter, checkpoint or run folder (repeat to combine several of one base model)
      --weight W            one per --adapter (default 1)
      --base DIR            base model folder (default: base_model_name_or_path of the adapter)
      --combination C       linear (default) | cat | svd, as PEFT's add_weighted_adapter:
                              cat: exact Σ wᵢ·ΔWᵢ at rank Σ rᵢ; svd: Σ wᵢ·ΔWᵢ truncated to --svd-rank;
                              linear: PEFT's √(w·scaling)-weighted sum of lora_A and of lora_B, equal ranks,
                              which is NOT Σ wᵢ·ΔWᵢ when the adapters differ (cross terms)
      --svd-rank K          rank of an svd combination (default: the largest r)
      --svd-clamp Q         clamp svd factors to their Q quantile, as PEFT's svd_clamp
      --as model|adapter    a full model folder (default) or a new PEFT adapter folder
      --max-shard-size S    split weights into shards of at most S (default 5GB, as transformers)
      --dtype auto|float32  merged weights in the checkpoint's dtype (default) or float32
      --tolerance T         max |Δlogits| of merged vs base + adapter (default ${DEFAULT_TOLERANCE})
      --force               write even when the check fails (marked MERGE_CHECK_FAILED)
      --device D            backend for the check (default wasm)
      --json                print a JSON summary`;

export async function cmdMerge(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      adapter: { type: 'string', multiple: true },
      weight: { type: 'string', multiple: true },
      base: { type: 'string' },
      out: { type: 'string' },
      combination: { type: 'string' },
      'svd-rank': { type: 'string' },
      'svd-clamp': { type: 'string' },
      as: { type: 'string' },
      'max-shard-size': { type: 'string' },
      dtype: { type: 'string' },
      tolerance: { type: 'string' },
      force: { type: 'boolean' },
      device: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(MERGE_HELP);
    return 0;
  }
  if (positionals.length) throw usage(`unexpected argument '${positionals[0]}'`);
  if (!values.adapter?.length) throw usage('give at least one --adapter DIR');
  if (!values.out) throw usage('give the output folder with --out DIR');
  const combination = oneOf('--combination', values.combination, COMBINATIONS);
  const as = oneOf('--as', values.as, ['model', 'adapter'] as const);
  const dtype = oneOf('--dtype', values.dtype, ['auto', 'float32'] as const);
  const json = Boolean(values.json);

  const summary = await mergeAdapters({
    adapters: values.adapter,
    weights: values.weight?.map((w) => num('--weight', w)),
    base: values.base ?? null,
    out: values.out,
    combination: combination as Combination | undefined,
    svdRank: values['svd-rank'] !== undefined ? num('--svd-rank', values['svd-rank']) : null,
    svdClamp: values['svd-clamp'] !== undefined ? num('--svd-clamp', values['svd-clamp']) : null,
    as,
    maxShardSize: values['max-shard-size'],
    dtype,
    tolerance: values.tolerance !== undefined ? num('--tolerance', values.tolerance) : undefined,
    force: Boolean(values.force),
    device: values.device as Device | undefined,
    log: (line) => console.error(line),
  });
  if (json) console.log(JSON.stringify(summary));
  else {
    const c = summary.merge_check;
    const what = summary.as === 'model' ? 'merged model' : 'combined adapter';
    const diff = c.max_abs_diff !== null ? ` · max |Δlogits| ${c.max_abs_diff.toExponential(2)}` : '';
    const check = c.passed ? 'passed' : 'FAILED (written with --force)';
    console.log(`${summary.out}: ${what} (${summary.files.length} files)${diff} · check ${check}`);
  }
  return summary.ok ? 0 : 3; // 3: written with --force although the check failed
}

function oneOf<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value))
    throw usage(`${flag} must be one of ${allowed.join(', ')}, got '${value}'`);
  return value as T;
}

function num(flag: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw usage(`${flag} must be a number, got '${value}'`);
  return n;
}

function usage(message: string): LoraPlusError {
  return new LoraPlusError({ code: 'cli/usage', message, hint: "Run 'loraplus merge --help'." });
}
