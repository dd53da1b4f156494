// Phi-3 read by the real Python libraries: PEFT loads an adapter we trained on the fused qkv_proj (our
// adapter_config.json and keys) and gives our logits, also for a classifier; transformers loads a folder we merged
// (LoRA on qkv_proj and gate_up_proj) and gives base + adapter's logits; partial rotary dims, a sliding window and
// grouped-query heads give transformers' logits. Runs when a Python with torch, transformers and peft is here (CI
// installs them); skips otherwise.
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
import { FAMILIES } from '../../src/models/registry';
import type { Task } from '../../src/models/types';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { SHARED, SST2, tempDir, useBackend } from '../helpers/shared';

const MODULES = ['torch', 'transformers', 'peft'];
const python = pythonWith(MODULES);
const PHI3 = path.join(SHARED, 'models', 'tiny-random-phi3');

// Logits of `model_dir` (+ `adapter_dir`, unless "-") on the probe, against ours where the mask is 1 (a causal LM's
// padded positions mean nothing); prints the max |Δ|, PEFT's warnings and PEFT's default targets for phi3, as JSON.
const LOGITS = `
import json, sys, warnings, torch, transformers
from peft import PeftModel
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as TARGETS
model_dir, adapter_dir, probe_file, ours_file, task, pad = sys.argv[1:7]
probe = json.load(open(probe_file))
auto = transformers.AutoModelForSequenceClassification, transformers.AutoModelForCausalLM
cls = auto[0] if task == "sequence-classification" else auto[1]
model = cls.from_pretrained(model_dir, torch_dtype=torch.float32)
model.config.pad_token_id = int(pad)  # as our engine pads
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    if adapter_dir != "-":
        model = PeftModel.from_pretrained(model, adapter_dir)
    caught = [str(x.message) for x in w]
model.eval()
ids = torch.tensor(probe["inputIds"]).reshape(probe["batch"], probe["seq"])
mask = torch.tensor(probe["attentionMask"]).reshape(probe["batch"], probe["seq"])
with torch.no_grad():
    logits = model(input_ids=ids, attention_mask=mask).logits.float()
ours = torch.tensor(json.load(open(ours_file))).reshape(logits.shape)
diff = (logits - ours).abs()
if task != "sequence-classification":
    diff = diff[mask.bool()]
print(json.dumps({"max_abs_diff": diff.max().item(), "n": logits.numel(), "warnings": caught,
                  "default_targets": TARGETS.get("phi3")}))
`;

interface PyResult {
  max_abs_diff: number;
  n: number;
  warnings: string[];
  default_targets: string[] | null; // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING['phi3']
}

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
  return JSON.parse(out.trim().split('\n').at(-1)!) as PyResult;
}

async function trained(task: Task, targets: string[] | null): Promise<string> {
  const dir = tempDir();
  const config = configFromObject(
    {
      model: PHI3,
      task,
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: 'py',
      data: {
        train: path.join(SST2, 'dev.tsv'),
        text_field: 'sentence',
        ...(task === 'sequence-classification' ? { label_field: 'label' } : {}),
        max_length: 16,
        max_train_samples: 32,
      },
      lora: { r: 4, lora_alpha: 8, target_modules: targets },
      training: { learning_rate: 1e-2, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 4 },
    },
    dir,
  );
  return (await train(config, () => {})).finalAdapter!;
}

async function ourLogits(dir: string, task: Task, adapter: string | null, probe?: Probe) {
  const folder = openModelFolder(dir);
  const model = buildModel(folder, task, task === 'causal-lm' ? 0 : 2, new Rng(0));
  const weights = adapter ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapter)) : undefined;
  const p = probe ?? probeBatch(folder, task, model.vocabSize);
  const logits = await probeLogits(model, p, weights);
  weights?.dispose();
  model.dispose();
  return { probe: p, logits };
}

describe('the real Python libraries read our Phi-3 work', { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  it('PEFT loads an adapter trained on the fused qkv_proj (the phi3 default) and gives our logits', async () => {
    const adapter = await trained('causal-lm', null); // the family default
    assert.deepEqual(loadAdapter(adapter).config.target_modules, ['qkv_proj']);
    const { probe, logits } = await ourLogits(PHI3, 'causal-lm', adapter);
    const py = inPython(PHI3, adapter, probe, logits, 'causal-lm');
    // PEFT 0.21 has no phi3 default (get_peft_model asks for target_modules); should it gain one, it must be ours.
    if (py.default_targets !== null) assert.deepEqual(py.default_targets, FAMILIES.phi3.defaultTargets);
    assert.deepEqual(
      py.warnings.filter((w) => /missing adapter keys|size mismatch/i.test(w)), // every key found, every shape right
      [],
    );
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('PEFT loads a Phi-3 classifier adapter (qkv_proj + a trained score head) and gives our logits', async () => {
    const adapter = await trained('sequence-classification', ['qkv_proj']);
    const { probe, logits } = await ourLogits(PHI3, 'sequence-classification', adapter);
    const py = inPython(PHI3, adapter, probe, logits, 'sequence-classification');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('transformers loads our merged folder (LoRA on qkv_proj and gate_up_proj): base + adapter logits', async () => {
    const adapter = await trained('causal-lm', ['qkv_proj', 'gate_up_proj']);
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapter], out, device: 'wasm' });
    assert.ok(s.ok);
    const { probe, logits } = await ourLogits(PHI3, 'causal-lm', adapter);
    const py = inPython(out, null, probe, logits, 'causal-lm');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });

  it('partial_rotary_factor 0.5 and sliding_window 5 give transformers logits, right padding included', async () => {
    const dir = path.join(tempDir(), 'phi3-partial');
    fs.cpSync(PHI3, dir, { recursive: true });
    // ../shared is read-only, and so is the copy
    for (const f of ['.', 'config.json', 'model.safetensors']) fs.chmodSync(path.join(dir, f), 0o755);
    const configFile = path.join(dir, 'config.json');
    const config = JSON.parse(fs.readFileSync(configFile, 'utf8'));
    config.rope_parameters = { rope_type: 'default', rope_theta: 500, partial_rotary_factor: 0.5 };
    config.sliding_window = 5;
    config.num_key_value_heads = 2; // grouped-query attention: qkv_proj shrinks to [64, 32]
    fs.writeFileSync(configFile, JSON.stringify(config));
    shrinkKv(dir);
    const rng = new Rng(7);
    const seq = 14;
    const inputIds = Int32Array.from({ length: 2 * seq }, () => 1 + Math.floor(rng.next() * 1000));
    const attentionMask = Int32Array.from({ length: 2 * seq }, (_, i) => (i >= seq && i % seq >= seq - 4 ? 0 : 1));
    const probe: Probe = { batch: 2, seq, inputIds, attentionMask };
    const { logits } = await ourLogits(dir, 'causal-lm', null, probe);
    const py = inPython(dir, null, probe, logits, 'causal-lm');
    assert.ok(py.max_abs_diff <= 1e-4, `max |Δlogits| ${py.max_abs_diff}`);
  });
});

/** Rewrites `dir`'s model.safetensors with qkv_proj cut to 4 query + 2 key + 2 value heads of 8 (rows). */
function shrinkKv(dir: string): void {
  const file = path.join(dir, 'model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const data = buf.subarray(8 + n);
  const parts: Buffer[] = [];
  const out: Record<string, unknown> = {};
  let offset = 0;
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    let bytes = data.subarray(v.data_offsets[0], v.data_offsets[1]);
    let shape = v.shape;
    if (k.endsWith('qkv_proj.weight')) {
      const row = 32 * 4; // 32 float32 inputs per output row
      bytes = Buffer.concat([bytes.subarray(0, 48 * row), bytes.subarray(64 * row, 80 * row)]); // q, k[:16], v[:16]
      shape = [64, 32];
    }
    out[k] = { dtype: v.dtype, shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(out));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  fs.writeFileSync(file, Buffer.concat([len, json, ...parts]));
}
