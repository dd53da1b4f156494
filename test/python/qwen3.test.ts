// Qwen3 files we write, read by the real Python libraries: PEFT loads an adapter `loraplus train` wrote on
// tiny-random-qwen3 (all-linear; and a classifier with its score head) and gives our logits; transformers loads a
// folder `loraplus merge` wrote and gives base + adapter's logits, and its tokenizer finds the same chat template.
// Runs when a Python with torch, transformers and peft is here (CI installs them).
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
const QWEN3 = path.join(SHARED, 'models', 'tiny-random-qwen3');

// Logits of `model_dir` (+ `adapter_dir`, unless "-") on the probe against ours, and the tokenizer's chat template.
const LOGITS = `
import json, sys, torch, transformers
from peft import PeftModel
model_dir, adapter_dir, probe_file, ours_file, task, pad = sys.argv[1:7]
probe = json.load(open(probe_file))
auto = "AutoModelForSequenceClassification" if task == "sequence-classification" else "AutoModelForCausalLM"
cls = getattr(transformers, auto)
model = cls.from_pretrained(model_dir, dtype=torch.float32)
if model.config.pad_token_id is None:
    model.config.pad_token_id = int(pad)
if adapter_dir != "-":
    model = PeftModel.from_pretrained(model, adapter_dir)
model.eval()
ids = torch.tensor(probe["inputIds"]).reshape(probe["batch"], probe["seq"])
mask = torch.tensor(probe["attentionMask"]).reshape(probe["batch"], probe["seq"])
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits.float().flatten()
ours = torch.tensor(json.load(open(ours_file)))
template = transformers.AutoTokenizer.from_pretrained(model_dir).chat_template
print(json.dumps({"max_abs_diff": (logits - ours).abs().max().item(), "n": logits.numel(), "template": template}))
`;

function inPython(modelDir: string, adapterDir: string | null, probe: Probe, ours: Float32Array, task: Task) {
  const dir = tempDir();
  const [probeFile, oursFile] = [path.join(dir, 'probe.json'), path.join(dir, 'ours.json')];
  fs.writeFileSync(
    probeFile,
    JSON.stringify({ ...probe, inputIds: [...probe.inputIds], attentionMask: [...probe.attentionMask] }),
  );
  fs.writeFileSync(oursFile, JSON.stringify([...ours]));
  const pad = String(padId(openModelFolder(modelDir)));
  const out = runPython(python!, LOGITS, [modelDir, adapterDir ?? '-', probeFile, oursFile, task, pad]);
  return JSON.parse(out.trim().split('\n').at(-1)!) as { max_abs_diff: number; n: number; template: string | null };
}

async function trained(task: Task): Promise<string> {
  const dir = tempDir();
  const config = configFromObject(
    {
      model: QWEN3,
      task,
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: 'py',
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 32 },
      lora: { r: 4, lora_alpha: 8, target_modules: 'all-linear' },
      training: { learning_rate: 1e-2, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 4 },
    },
    dir,
  );
  return (await train(config, () => {})).finalAdapter!;
}

async function ourLogits(modelDir: string, task: Task, adapter: string) {
  const folder = openModelFolder(modelDir);
  const model = buildModel(folder, task, task === 'causal-lm' ? 0 : 2, new Rng(0));
  const weights = Trainables.fromAdapter(model, folder.family, loadAdapter(adapter));
  const probe = probeBatch(folder, task, model.vocabSize);
  const logits = await probeLogits(model, probe, weights);
  weights.dispose();
  model.dispose();
  return { probe, logits };
}

describe('the real Python libraries read our Qwen3 files', { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  it('PEFT loads a trained all-linear qwen3 adapter and gives our logits (≤ 1e-4)', async () => {
    const adapter = await trained('causal-lm');
    const { probe, logits } = await ourLogits(QWEN3, 'causal-lm', adapter);
    const py = inPython(QWEN3, adapter, probe, logits, 'causal-lm');
    assert.equal(py.n, logits.length);
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('PEFT loads a qwen3 classifier adapter (a trained score head) and gives our logits', async () => {
    const adapter = await trained('sequence-classification');
    const { probe, logits } = await ourLogits(QWEN3, 'sequence-classification', adapter);
    const py = inPython(QWEN3, adapter, probe, logits, 'sequence-classification');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('transformers loads a merged qwen3 folder: base + adapter logits, and its chat_template.jinja', async () => {
    const adapter = await trained('causal-lm');
    // The base with its template in chat_template.jinja (as Gemma 3 ships it), which merge must carry over.
    const base = path.join(tempDir(), 'qwen3-jinja');
    fs.cpSync(QWEN3, base, { recursive: true });
    const configFile = path.join(base, 'tokenizer_config.json');
    const { chat_template: template, ...rest } = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    fs.writeFileSync(configFile, JSON.stringify(rest));
    fs.writeFileSync(path.join(base, 'chat_template.jinja'), template);
    const out = path.join(tempDir(), 'merged');
    await mergeAdapters({ adapters: [adapter], base, out, device: 'wasm' });
    const { probe, logits } = await ourLogits(QWEN3, 'causal-lm', adapter);
    const py = inPython(out, null, probe, logits, 'causal-lm');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
    assert.equal(py.template, template);
    assert.equal(openModelFolder(out).chatTemplate, template);
  });
});
