// Python loads our adapters without a warning: adapter_config.json holds only PEFT's LoraConfig fields (LoRA+'s own
// settings are in loraplus.json beside it, which PEFT ignores), so PeftModel.from_pretrained (PEFT 0.21) has nothing
// to warn about. Warnings and log records are captured during the load; a control adapter with the old extra key
// shows the capture works. Runs when a Python with torch, transformers and peft is here (CI installs them).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { configFromObject } from '../../src/config/load';
import { train } from '../../src/engine/train/train';
import { noPython, pythonWith, runPython } from '../helpers/python';
import { SHARED, SST2, STORIES, tempDir, useBackend } from '../helpers/shared';

const MODULES = ['torch', 'transformers', 'peft'];
const python = pythonWith(MODULES);
const GPT2 = path.join(SHARED, 'models', 'tiny-random-gpt2');

// Loads base + adapter; prints the warnings and log records (WARNING and up) of the load, and the config keys that
// are no LoraConfig field, as JSON.
const LOAD = `
import dataclasses, json, logging, sys, warnings, torch, transformers
from peft import LoraConfig, PeftModel
base_dir, adapter_dir, task = sys.argv[1:4]
seq_cls = task == "sequence-classification"
cls = transformers.AutoModelForSequenceClassification if seq_cls else transformers.AutoModelForCausalLM
base = cls.from_pretrained(base_dir, dtype=torch.float32)
records = []
class Keep(logging.Handler):
    def emit(self, record):
        records.append(f"{record.name}: {record.getMessage()}")
keep = Keep(level=logging.WARNING)
loggers = [logging.getLogger(), logging.getLogger("peft"), logging.getLogger("transformers")]
for lg in loggers:
    lg.addHandler(keep)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    PeftModel.from_pretrained(base, adapter_dir)
for lg in loggers:
    lg.removeHandler(keep)
keys = set(json.load(open(f"{adapter_dir}/adapter_config.json")))
fields = {f.name for f in dataclasses.fields(LoraConfig)}
print(json.dumps({"warnings": [str(w.message) for w in caught], "logs": records, "extra": sorted(keys - fields)}))
`;

interface Loaded {
  warnings: string[];
  logs: string[];
  extra: string[];
}

function load(base: string, adapter: string, task: string): Loaded {
  return JSON.parse(runPython(python!, LOAD, [base, adapter, task]).trim().split('\n').at(-1)!) as Loaded;
}

async function trained(model: string, task: string, targets: string[], optimizer: string): Promise<string> {
  const dir = tempDir();
  const config = configFromObject(
    {
      model,
      task,
      device: 'wasm',
      output_dir: path.join(dir, 'runs'),
      run_name: 'py',
      data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 16 },
      lora: { r: 4, lora_alpha: 8, target_modules: targets },
      training: { optimizer, learning_rate: 1e-3, loraplus_lr_ratio: 16, batch_size: 8, max_steps: 2 },
    },
    dir,
  );
  return (await train(config, () => {})).finalAdapter!;
}

describe('PEFT loads our adapters without a warning', { skip: python ? false : noPython(MODULES) }, () => {
  before(() => useBackend());

  it('a LoRA+ causal LM and a riemannian GPT-2 classifier: no warning, no log, only LoraConfig keys', async () => {
    const runs: [string, string, string][] = [
      [STORIES, await trained(STORIES, 'causal-lm', ['q_proj', 'v_proj'], 'adamw'), 'causal-lm'],
      [GPT2, await trained(GPT2, 'sequence-classification', ['c_attn'], 'riemannian'), 'sequence-classification'],
    ];
    for (const [base, adapter, task] of runs) {
      const ours = JSON.parse(fs.readFileSync(path.join(adapter, 'loraplus.json'), 'utf8')) as Record<string, unknown>;
      assert.ok(typeof ours.loraplus_lr_ratio === 'number' && typeof ours.optimizer === 'string', 'loraplus.json');
      assert.deepEqual(load(base, adapter, task), { warnings: [], logs: [], extra: [] }, adapter);
    }
    // The control: the key an older version wrote into adapter_config.json is what PEFT warns about.
    const [base, adapter, task] = runs[0];
    const old = path.join(tempDir(), 'old-adapter');
    fs.cpSync(adapter, old, { recursive: true });
    const file = path.join(old, 'adapter_config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), loraplus_lr_ratio: 16 }));
    const warned = load(base, old, task);
    assert.deepEqual(warned.extra, ['loraplus_lr_ratio']);
    assert.ok(
      [...warned.warnings, ...warned.logs].some((w) => w.includes('loraplus_lr_ratio')),
      `the capture sees PEFT's warning: ${JSON.stringify(warned)}`,
    );
  });
});
