// What we write, read by the real Python libraries: PEFT's PeftModel.from_pretrained loads an adapter that
// `loraplus train` wrote and gives our logits; transformers loads a folder that `loraplus merge` wrote and gives the
// logits of base + adapter. Runs when a Python with torch, transformers and peft is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadAdapter } from '../../src/adapters/peft';
import { configFromObject } from '../../src/config/load';
import { Rng } from '../../src/engine/data/rng';
import { mergeAdapters } from '../../src/engine/merge/merge';
import { probeBatch, probeLogits, type Probe } from '../../src/engine/merge/check';
import { buildModel, openModelFolder, padId } from '../../src/engine/train/inputs';
import { train } from '../../src/engine/train/train';
import { Trainables } from '../../src/engine/train/trainables';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { SHARED, SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const MODULES = ['torch', 'transformers', 'peft'];
const python = pythonWith(MODULES);

// Logits of `model_dir` (+ `adapter_dir`, unless "-") on the probe; prints the max |Δ| against ours and PEFT's
// warnings, as JSON.
const LOGITS = `
import json, sys, warnings, torch, transformers
from peft import PeftModel
model_dir, adapter_dir, probe_file, ours_file, task, pad = sys.argv[1:7]
probe = json.load(open(probe_file))
cls = transformers.AutoModelForSequenceClassification if task == "sequence-classification" else transformers.AutoModelForCausalLM
model = cls.from_pretrained(model_dir, torch_dtype=torch.float32)
if model.config.pad_token_id is None:
    model.config.pad_token_id = int(pad)  # as our engine pads (the tokenizer's pad, else eos)
caught = []
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    if adapter_dir != "-":
        model = PeftModel.from_pretrained(model, adapter_dir)
    caught = [str(x.message) for x in w]
model.eval()
ids = torch.tensor(probe["inputIds"]).reshape(probe["batch"], probe["seq"])
mask = torch.tensor(probe["attentionMask"]).reshape(probe["batch"], probe["seq"])
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits.float().flatten()
ours = torch.tensor(json.load(open(ours_file)))
print(json.dumps({"max_abs_diff": (logits - ours).abs().max().item(), "n": logits.numel(), "warnings": caught}))
`;

interface PyResult {
  max_abs_diff: number;
  n: number;
  warnings: string[];
}

function compareInPython(modelDir: string, adapterDir: string | null, probe: Probe, ours: Float32Array, task: string) {
  const pad = String(padId(openModelFolder(modelDir)));
  const dir = tempDir();
  const probeFile = path.join(dir, 'probe.json');
  const oursFile = path.join(dir, 'ours.json');
  const plain = { ...probe, inputIds: [...probe.inputIds], attentionMask: [...probe.attentionMask] };
  fs.writeFileSync(probeFile, JSON.stringify(plain));
  fs.writeFileSync(oursFile, JSON.stringify([...ours]));
  const out = runPython(python!, LOGITS, [modelDir, adapterDir ?? '-', probeFile, oursFile, task, pad]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as PyResult;
}

async function trained(model: string, task: string, targets: string[], optimizer = 'adamw'): Promise<string> {
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
      training: { optimizer, learning_rate: 1e-2, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 4 },
    },
    dir,
  );
  const r = await train(config, () => {});
  return r.finalAdapter!;
}

async function ourLogits(modelDir: string, task: 'causal-lm' | 'sequence-classification', adapter: string) {
  const folder = openModelFolder(modelDir);
  const a = loadAdapter(adapter);
  const numLabels = task === 'causal-lm' ? 0 : 2;
  const model = buildModel(folder, task, numLabels, new Rng(0));
  const weights = Trainables.fromAdapter(model, folder.family, a);
  const probe = probeBatch(folder, task, model.vocabSize);
  const logits = await probeLogits(model, probe, weights);
  weights.dispose();
  model.dispose();
  return { probe, logits };
}

describe('the real Python libraries read what we write', { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  it('PEFT loads a trained stories260k adapter and gives our logits (≤ 1e-4)', async () => {
    const adapter = await trained(STORIES, 'causal-lm', ['q_proj', 'v_proj', 'down_proj']);
    const { probe, logits } = await ourLogits(STORIES, 'causal-lm', adapter);
    const py = compareInPython(STORIES, adapter, probe, logits, 'causal-lm');
    assert.equal(py.n, logits.length);
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('PEFT loads a GPT-2 classifier adapter (fan_in_fan_out, a trained score head) and gives our logits', async () => {
    const gpt2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
    const adapter = await trained(gpt2, 'sequence-classification', ['c_attn']);
    const { probe, logits } = await ourLogits(gpt2, 'sequence-classification', adapter);
    const py = compareInPython(gpt2, adapter, probe, logits, 'sequence-classification');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('PEFT loads GPT-2 classifier adapters trained by lorafa (frozen lora_A) and riemannian, with our logits', async () => {
    const gpt2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
    for (const optimizer of ['lorafa', 'riemannian']) {
      const adapter = await trained(gpt2, 'sequence-classification', ['c_attn'], optimizer);
      const { probe, logits } = await ourLogits(gpt2, 'sequence-classification', adapter);
      const py = compareInPython(gpt2, adapter, probe, logits, 'sequence-classification');
      assert.ok(py.max_abs_diff <= 1e-4, `${optimizer}: max |Δlogits| ${py.max_abs_diff}`);
    }
  });

  it('transformers loads a merged model folder and gives the logits of base + adapter', async () => {
    const adapter = await trained(STORIES, 'causal-lm', ['q_proj', 'v_proj']);
    const out = path.join(tempDir(), 'merged');
    await mergeAdapters({ adapters: [adapter], out, device: 'wasm' });
    const { probe, logits } = await ourLogits(STORIES, 'causal-lm', adapter);
    const py = compareInPython(out, null, probe, logits, 'causal-lm');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });
});
