// Gemma 3 against the real Python libraries: transformers 5 runs our variants of tiny-random-gemma3 (soft-capping,
// the classic config style) and a multimodal Gemma3ForConditionalGeneration it saved itself with our logits; PEFT
// loads the adapters we train (causal LM, classifier, the multimodal model's language model) with our logits; and
// transformers loads the folders `loraplus merge` writes with the logits of base + adapter. Everything ≤ 1e-4 at
// the positions the attention mask keeps. Runs when a Python with torch, transformers and peft is here.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadAdapter } from '../../src/adapters/peft';
import { configFromObject } from '../../src/config/load';
import { Rng } from '../../src/engine/data/rng';
import { probeBatch, probeLogits, type Probe } from '../../src/engine/merge/check';
import { mergeAdapters } from '../../src/engine/merge/merge';
import { buildModel, openModelFolder, padId } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { Trainables } from '../../src/engine/train/trainables';
import type { Task } from '../../src/models/types';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { SHARED, SST2, tempDir, useBackend } from '../helpers/shared';

const MODULES = ['torch', 'transformers', 'peft'];
const python = pythonWith(MODULES);
const GEMMA3 = path.join(SHARED, 'models', 'tiny-random-gemma3');

// Logits of `model_dir` (+ `adapter_dir`, unless "-") on the probe; prints the max |Δ| against ours where the mask
// is 1, the class transformers built, and how far the adapter moves the logits (so a match shows PEFT applied it).
const LOGITS = `
import json, sys, torch, transformers
from peft import PeftModel
model_dir, adapter_dir, probe_file, ours_file, task, pad = sys.argv[1:7]
probe = json.load(open(probe_file))
seq_cls = task == "sequence-classification"
cls = transformers.AutoModelForSequenceClassification if seq_cls else transformers.AutoModelForCausalLM
model = cls.from_pretrained(model_dir, dtype=torch.float32)
if seq_cls and getattr(model.config, "pad_token_id", None) is None:
    model.config.pad_token_id = int(pad)
name = type(model).__name__
if adapter_dir != "-":
    model = PeftModel.from_pretrained(model, adapter_dir)
model.eval()
ids = torch.tensor(probe["inputIds"]).reshape(probe["batch"], probe["seq"])
mask = torch.tensor(probe["attentionMask"]).reshape(probe["batch"], probe["seq"])
keep = torch.ones(1) if seq_cls else mask[..., None]
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
    effect = 0.0
    if adapter_dir != "-":
        with model.disable_adapter():
            base = model(input_ids=ids, attention_mask=mask).logits.float()
        effect = ((logits - base).abs() * keep).max().item()
ours = torch.tensor(json.load(open(ours_file))).reshape(logits.shape)
diff = ((logits - ours).abs() * keep).max().item()
print(json.dumps({"max_abs_diff": diff, "n": logits.numel(), "class": name, "adapter_effect": effect}))
`;

// A Gemma3ForConditionalGeneration around tiny-random-gemma3's language model (and a tiny SigLIP tower), saved by
// transformers itself into argv[1].
const MULTIMODAL = `
import sys, torch, transformers
src, out = sys.argv[1:3]
text = transformers.AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
vision = transformers.SiglipVisionConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, image_size=28, patch_size=14)
config = transformers.Gemma3Config(text_config=text.config.to_dict(), vision_config=vision.to_dict(),
                                   mm_tokens_per_image=4, image_token_index=1000, boi_token_index=998,
                                   eoi_token_index=999)
torch.manual_seed(0)
model = transformers.Gemma3ForConditionalGeneration(config)
state = {k[len("model."):]: v for k, v in text.state_dict().items() if k.startswith("model.")}
model.model.language_model.load_state_dict(state, strict=True)
model.save_pretrained(out)
`;

interface PyResult {
  max_abs_diff: number;
  n: number;
  class: string;
  adapter_effect: number; // max |Δ| the adapter makes in PEFT's logits (0 without one)
}

function compareInPython(modelDir: string, adapterDir: string | null, probe: Probe, ours: Float32Array, task: Task) {
  const dir = tempDir();
  const probeFile = path.join(dir, 'probe.json');
  const oursFile = path.join(dir, 'ours.json');
  fs.writeFileSync(
    probeFile,
    JSON.stringify({ ...probe, inputIds: [...probe.inputIds], attentionMask: [...probe.attentionMask] }),
  );
  fs.writeFileSync(oursFile, JSON.stringify([...ours]));
  const pad = String(padId(openModelFolder(modelDir)));
  const out = runPython(python!, LOGITS, [modelDir, adapterDir ?? '-', probeFile, oursFile, task, pad]);
  const r = JSON.parse(out.trim().split('\n').at(-1)!) as PyResult;
  assert.equal(r.n, ours.length);
  if (adapterDir) assert.ok(r.adapter_effect > 1e-3, `the adapter moves PEFT's logits by ${r.adapter_effect} only`);
  return r;
}

async function ourLogits(modelDir: string, task: Task, adapter?: string) {
  const folder = openModelFolder(modelDir);
  const model = buildModel(folder, task, task === 'causal-lm' ? 0 : 2, new Rng(0));
  const weights = adapter ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapter)) : undefined;
  const probe = probeBatch(folder, task, model.vocabSize);
  const logits = await probeLogits(model, probe, weights);
  weights?.dispose();
  model.dispose();
  return { probe, logits };
}

async function trained(model: string, task: Task, targets: string[] | string): Promise<string> {
  const dir = tempDir();
  const config = configFromObject(
    {
      model,
      task,
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: 'py',
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 32 },
      lora: { r: 4, lora_alpha: 8, target_modules: targets },
      training: { learning_rate: 1e-2, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 4 },
    },
    dir,
  );
  return (await train(config, () => {})).finalAdapter!;
}

/** tiny-random-gemma3 with its config.json changed by `patch` (undefined deletes a key). */
function variant(patch: Record<string, unknown>): string {
  const dir = path.join(tempDir(), 'gemma3-variant');
  fs.mkdirSync(dir);
  for (const f of fs.readdirSync(GEMMA3)) fs.copyFileSync(path.join(GEMMA3, f), path.join(dir, f));
  const config = JSON.parse(fs.readFileSync(path.join(GEMMA3, 'config.json'), 'utf8')) as Record<string, unknown>;
  for (const [k, v] of Object.entries(patch)) if (v === undefined) delete config[k];
  fs.rmSync(path.join(dir, 'config.json')); // the copy may be read-only, as ../shared is
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ ...config, ...patch }, null, 2));
  return dir;
}

const within = (r: PyResult) => assert.ok(r.max_abs_diff <= 1e-4, `max |Δlogits| ${r.max_abs_diff} (${r.class})`);

describe('gemma3 and the real Python libraries', { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  it('transformers gives our logits with soft-capping set (2.5 scores, 3.5 logits), classic config style', async () => {
    const dir = variant({
      attn_logit_softcapping: 2.5, // floats: transformers' strict config refuses an int
      final_logit_softcapping: 3.5,
      rope_parameters: undefined,
      layer_types: undefined,
      rope_theta: 1e6,
      rope_local_base_freq: 1e4,
      sliding_window_pattern: 2,
    });
    const { probe, logits } = await ourLogits(dir, 'causal-lm');
    within(compareInPython(dir, null, probe, logits, 'causal-lm'));
  });

  it('PEFT loads our all-linear adapter, and transformers our merged folder, with our logits', async () => {
    const adapter = await trained(GEMMA3, 'causal-lm', 'all-linear');
    const { probe, logits } = await ourLogits(GEMMA3, 'causal-lm', adapter);
    within(compareInPython(GEMMA3, adapter, probe, logits, 'causal-lm'));
    const out = path.join(tempDir(), 'merged');
    await mergeAdapters({ adapters: [adapter], out, device: 'wasm' });
    const merged = compareInPython(out, null, probe, logits, 'causal-lm');
    within(merged);
    assert.equal(merged.class, 'Gemma3ForCausalLM');
  });

  it('a classifier: PEFT loads adapter + score, transformers loads Gemma3TextForSequenceClassification', async () => {
    const adapter = await trained(GEMMA3, 'sequence-classification', ['q_proj', 'v_proj']);
    const { probe, logits } = await ourLogits(GEMMA3, 'sequence-classification', adapter);
    within(compareInPython(GEMMA3, adapter, probe, logits, 'sequence-classification'));
    const out = path.join(tempDir(), 'merged');
    await mergeAdapters({ adapters: [adapter], out, device: 'wasm' });
    const merged = compareInPython(out, null, probe, logits, 'sequence-classification');
    within(merged);
    assert.equal(merged.class, 'Gemma3TextForSequenceClassification');
  });

  it('multimodal gemma3 saved by transformers: our logits, PEFT loads our adapter, and our merge loads', async () => {
    const dir = path.join(tempDir(), 'gemma3-mm');
    runPython(python!, MULTIMODAL, [GEMMA3, dir]);
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'])
      fs.copyFileSync(path.join(GEMMA3, f), path.join(dir, f));
    const base = await ourLogits(dir, 'causal-lm');
    const r = compareInPython(dir, null, base.probe, base.logits, 'causal-lm');
    within(r);
    assert.equal(r.class, 'Gemma3ForConditionalGeneration');
    const adapter = await trained(dir, 'causal-lm', ['q_proj', 'v_proj', 'down_proj']);
    assert.ok(loadAdapter(adapter).lora.has('model.language_model.layers.0.self_attn.q_proj'));
    const { probe, logits } = await ourLogits(dir, 'causal-lm', adapter);
    within(compareInPython(dir, adapter, probe, logits, 'causal-lm'));
    const out = path.join(tempDir(), 'merged');
    await mergeAdapters({ adapters: [adapter], out, device: 'wasm' });
    const merged = compareInPython(out, null, probe, logits, 'causal-lm');
    within(merged);
    assert.equal(merged.class, 'Gemma3ForConditionalGeneration');
  });
});
