// What a merge writes about itself: README.md (a Hugging Face model card: base model, adapters and weights, the
// combination, r, lora_alpha, loraplus_lr_ratio, the equivalence check) and merge_info.json (the same as data).
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Adapter } from '../../adapters/peft';
import type { MergeInfo } from '../../protocol/merge';

export const MERGE_INFO_FILE = 'merge_info.json';
export const CHECK_FAILED_MARK = 'MERGE_CHECK_FAILED';

export function adapterEntry(dir: string, weight: number, a: Adapter): MergeInfo['adapters'][number] {
  const c = a.config;
  return {
    path: dir,
    weight,
    r: c.r,
    lora_alpha: c.lora_alpha,
    use_rslora: c.use_rslora,
    loraplus_lr_ratio: a.loraplus?.loraplus_lr_ratio ?? null, // loraplus.json (or an older adapter_config.json)
  };
}

export function writeMergeReport(dir: string, info: MergeInfo): void {
  fs.writeFileSync(path.join(dir, MERGE_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
  fs.writeFileSync(path.join(dir, 'README.md'), readme(info));
}

function readme(i: MergeInfo): string {
  const c = i.merge_check;
  const failed = !c.passed;
  const what =
    i.as === 'model'
      ? 'a full model with the LoRA adapter merged into its weights'
      : 'a PEFT LoRA adapter combined from several';
  const lines = [
    '---',
    ...(i.base ? [`base_model: ${JSON.stringify(i.base)}`] : []),
    `library_name: ${i.as === 'model' ? 'transformers' : 'peft'}`,
    'tags:',
    '- lora',
    '- loraplus',
    `- ${i.as === 'model' ? 'merged' : 'combined-adapter'}`,
    '---',
    '',
    i.as === 'model' ? '# Merged LoRA+ model' : '# Combined LoRA+ adapter',
    '',
    ...(failed
      ? [
          `> **${CHECK_FAILED_MARK}**: ` +
            'the equivalence check failed and this folder was written only because of `--force`.',
          ...c.failures.map((f) => `> - ${f}`),
          '',
        ]
      : []),
    `This folder is ${what}, written by \`loraplus merge\` (LoRA+ Studio) on ${i.created}.`,
    '',
    `- Base model: \`${i.base ?? 'unknown'}\``,
    ...(i.task ? [`- Task: ${i.task}`] : []),
    `- Combination: ${i.combination ?? 'none (one adapter, weight 1)'}`,
    `- Result: r = ${i.r}, lora_alpha = ${i.lora_alpha}`,
    `- Weights dtype: ${i.dtype}`,
    '',
    '| adapter | weight | r | lora_alpha | use_rslora | loraplus_lr_ratio |',
    '| --- | --- | --- | --- | --- | --- |',
    ...i.adapters.map(
      (a) =>
        `| \`${a.path}\` | ${a.weight} | ${a.r} | ${a.lora_alpha} | ${a.use_rslora} | ${a.loraplus_lr_ratio ?? '-'} |`,
    ),
    '',
  ];
  if (i.head && (i.head.added.length || i.head.replaced.length)) {
    const keys = [...i.head.added, ...i.head.replaced].map((k) => `\`${k}\``).join(', ');
    const labels = i.head.labels ? `; labels: ${i.head.labels.join(', ')}` : '';
    lines.push(`Trained head (modules_to_save) merged in: ${keys}${labels}.`, '');
  }
  if (i.rekeyed)
    lines.push(
      'The base checkpoint stored the bare base model; ' +
        'its keys are written with the model prefix so that transformers loads the head.',
      '',
    );
  lines.push('## Equivalence check', '');
  if (c.max_abs_diff !== null) {
    lines.push(
      `A fixed probe batch (${c.probe}) was run through the base model ` +
        `with the adapter and through this merged model on ${c.backend}:`,
      '',
      `- max |Δlogits| = ${fmt(c.max_abs_diff)} (relative to the largest logit: ` +
        `${fmt(c.max_rel_diff ?? 0)}), tolerance ${fmt(c.tolerance)}`,
    );
  } else {
    lines.push('The written adapter was read back and compared with the combination computed in memory.');
  }
  if (c.combination_error !== null)
    lines.push(
      `- combined ΔW vs Σ wᵢ·ΔWᵢ (probed, relative): ${fmt(c.combination_error)}` +
        (i.combination === 'linear' ? " (PEFT's linear combination is not the weighted sum when adapters differ)" : ''),
    );
  lines.push(
    `- NaN/Inf in merged tensors: ${c.nonfinite_tensors.length ? c.nonfinite_tensors.join(', ') : 'none'}`,
    `- Result: ${failed ? CHECK_FAILED_MARK : 'passed'}`,
    '',
  );
  lines.push(...useSection(i));
  return lines.join('\n');
}

/** How to load the folder in Python, with the transformers class of its task (sft trains a causal LM). */
function useSection(i: MergeInfo): string[] {
  const auto = i.task === 'sequence-classification' ? 'AutoModelForSequenceClassification' : 'AutoModelForCausalLM';
  const code =
    i.as === 'model'
      ? [
          `from transformers import ${auto}, AutoTokenizer`,
          '',
          `model = ${auto}.from_pretrained("path/to/this/folder")`,
          'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")',
        ]
      : [
          'from peft import PeftModel',
          `from transformers import ${auto}`,
          '',
          `base = ${auto}.from_pretrained(${JSON.stringify(i.base ?? 'path/to/the/base/model')})`,
          'model = PeftModel.from_pretrained(base, "path/to/this/folder")',
        ];
  return ['## Use', '', '```python', ...code, '```', ''];
}

function fmt(x: number): string {
  return x === 0 ? '0' : Math.abs(x) < 1e-3 || Math.abs(x) >= 1e4 ? x.toExponential(2) : x.toPrecision(3);
}
