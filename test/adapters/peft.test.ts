import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import {
  type Adapter,
  type AdapterConfig,
  adapterWeightsFromSafetensors,
  loadAdapter,
  loraScaling,
  makeAdapterConfig,
  moduleLoraParams,
  saveAdapter,
} from '../../src/adapters/peft';
import { type HostTensor, readSafetensors, writeSafetensors } from '../../src/adapters/safetensors';
import { LoraPlusError } from '../../src/protocol/errors';

const REF = join(import.meta.dirname, '../../../shared/reference');
const tmp = mkdtempSync(join(tmpdir(), 'loraplus-peft-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
let dirCount = 0;
const freshDir = (): string => join(tmp, `adapter-${dirCount++}`);

/** Deterministic float data, distinct per tensor so swapped A/B would be caught. */
function tensor(shape: number[], seed: number): HostTensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return {
    dtype: 'float32',
    shape,
    data: Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(seed * 97 + i))),
  };
}

function sampleAdapter(): Adapter {
  return {
    config: makeAdapterConfig({
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
      modules_to_save: ['score'],
      task_type: 'SEQ_CLS',
      base_model_name_or_path: 'stories260k',
    }),
    loraplus: { loraplus_lr_ratio: 16, learning_rate: 5e-4, optimizer: 'adamw', optimizer_args: {} },
    lora: new Map([
      ['model.layers.0.self_attn.q_proj', { A: tensor([4, 64], 1), B: tensor([64, 4], 2) }],
      ['model.layers.0.self_attn.v_proj', { A: tensor([4, 64], 3), B: tensor([32, 4], 4) }],
    ]),
    modulesToSave: new Map([['score.weight', tensor([2, 64], 5)]]),
  };
}

function expectError(fn: () => unknown, code: string, re: RegExp): LoraPlusError {
  let caught: unknown;
  assert.throws(fn, (err: unknown) => {
    caught = err;
    return true;
  });
  assert.ok(caught instanceof LoraPlusError, `expected LoraPlusError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, re);
  assert.ok(caught.info.hint, 'every error says what to do');
  return caught;
}

/** Writes an adapter folder by hand: a config object and raw PEFT-keyed tensors. */
function writeRaw(config: Record<string, unknown>, tensors: Record<string, HostTensor>): string {
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  return dir;
}
const BASE_CFG = { peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] };
const Q = 'base_model.model.model.layers.0.self_attn.q_proj';

describe('saveAdapter', () => {
  test('writes PEFT key names and shapes exactly', () => {
    const dir = freshDir();
    saveAdapter(dir, sampleAdapter());
    const { tensors, metadata } = readSafetensors(join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(metadata, { format: 'pt' });
    assert.deepEqual(
      [...tensors.keys()],
      [
        'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight',
        'base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight',
        'base_model.model.model.layers.0.self_attn.v_proj.lora_A.weight',
        'base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight',
        'base_model.model.score.weight',
      ],
    );
    assert.deepEqual(tensors.get('base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight')?.shape, [32, 4]);
  });

  test('writes every LoraConfig field, sorted, as PEFT does (inference_mode true)', () => {
    const dir = freshDir();
    saveAdapter(dir, sampleAdapter());
    const text = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
    const cfg = JSON.parse(text) as Record<string, unknown>;
    assert.deepEqual(Object.keys(cfg), Object.keys(cfg).sort());
    assert.ok(text.endsWith('}\n') && text.includes('\n  "r": 4,'));
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.inference_mode, true);
    assert.deepEqual(cfg.target_modules, ['q_proj', 'v_proj']);
    assert.deepEqual(cfg.modules_to_save, ['score']);
    assert.ok(!('loraplus_lr_ratio' in cfg), "adapter_config.json keeps to PEFT's keys");
    for (const [k, v] of Object.entries({
      bias: 'none',
      use_rslora: false,
      use_dora: false,
      lora_bias: false,
      fan_in_fan_out: false,
      init_lora_weights: true,
      rank_pattern: {},
      alpha_pattern: {},
      layers_to_transform: null,
      layers_pattern: null,
      megatron_config: null,
      megatron_core: 'megatron.core',
      exclude_modules: null,
      revision: null,
      lora_dropout: 0,
    }))
      assert.deepEqual(cfg[k], v, k);
  });

  test('rejects weights that disagree with the config before writing', () => {
    const a = sampleAdapter();
    a.config.r = 8;
    expectError(() => saveAdapter(freshDir(), a), 'adapter/shape-mismatch', /q_proj.*r is 8/);
    const b = sampleAdapter();
    b.config.modules_to_save = null;
    b.config.task_type = 'CAUSAL_LM';
    expectError(() => saveAdapter(freshDir(), b), 'adapter/unknown-key', /'score.weight' is neither/);
  });
});

describe('loraplus.json: our settings beside adapter_config.json', () => {
  test('written beside it and read back; adapter_config.json holds none of them', () => {
    const dir = freshDir();
    saveAdapter(dir, sampleAdapter());
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'loraplus.json'), 'utf8')), sampleAdapter().loraplus);
    const back = loadAdapter(dir);
    assert.deepEqual(back.loraplus, sampleAdapter().loraplus);
    assert.ok(!('loraplus_lr_ratio' in back.config));
  });

  test('an older adapter with loraplus_lr_ratio inside adapter_config.json still reads; saving moves it out', () => {
    const old = writeRaw(
      { ...BASE_CFG, loraplus_lr_ratio: 4 },
      { [`${Q}.lora_A.weight`]: tensor([4, 64], 1), [`${Q}.lora_B.weight`]: tensor([64, 4], 2) },
    );
    const a = loadAdapter(old);
    assert.deepEqual(a.loraplus, { loraplus_lr_ratio: 4 });
    assert.ok(!('loraplus_lr_ratio' in a.config));
    const again = freshDir();
    saveAdapter(again, a);
    const cfg = JSON.parse(readFileSync(join(again, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
    assert.ok(!('loraplus_lr_ratio' in cfg));
    assert.deepEqual(loadAdapter(again).loraplus, { loraplus_lr_ratio: 4 });
    // Even one who sets it on the config by hand (a key PEFT does not know) does not get it written there.
    const hand = sampleAdapter();
    (hand.config as Record<string, unknown>).loraplus_lr_ratio = 2;
    const dir = freshDir();
    saveAdapter(dir, hand);
    assert.ok(!readFileSync(join(dir, 'adapter_config.json'), 'utf8').includes('loraplus'));
  });

  test('a PEFT adapter trained elsewhere has none; a damaged loraplus.json is one clear error', () => {
    const peft = writeRaw(BASE_CFG, {
      [`${Q}.lora_A.weight`]: tensor([4, 64], 1),
      [`${Q}.lora_B.weight`]: tensor([64, 4], 2),
    });
    assert.equal(loadAdapter(peft).loraplus, null);
    writeFileSync(join(peft, 'loraplus.json'), '{"loraplus_lr_ratio": "sixteen"}');
    expectError(() => loadAdapter(peft), 'adapter/bad-config', /loraplus_lr_ratio must be a number/);
    writeFileSync(join(peft, 'loraplus.json'), '{');
    expectError(() => loadAdapter(peft), 'adapter/bad-config', /not valid JSON/);
  });
});

describe('loadAdapter', () => {
  test('round trip: load(save(x)) equals x', () => {
    const dir = freshDir();
    const a = sampleAdapter();
    saveAdapter(dir, a);
    const back = loadAdapter(dir);
    assert.deepEqual(back.lora, a.lora);
    assert.deepEqual(back.modulesToSave, a.modulesToSave);
    assert.deepEqual({ ...back.config, inference_mode: false }, a.config);
  });

  test('accepts the `.default` adapter name and modules_to_save.default keys', () => {
    const A = tensor([4, 64], 1);
    const B = tensor([64, 4], 2);
    const head = tensor([2, 64], 3);
    const dir = writeRaw(
      { ...BASE_CFG, modules_to_save: ['score'] },
      {
        [`${Q}.lora_A.default.weight`]: A,
        [`${Q}.lora_B.default.weight`]: B,
        'base_model.model.score.modules_to_save.default.weight': head,
      },
    );
    const got = loadAdapter(dir);
    assert.deepEqual([...got.lora.keys()], ['model.layers.0.self_attn.q_proj']);
    assert.deepEqual(got.lora.get('model.layers.0.self_attn.q_proj'), { A, B });
    assert.deepEqual([...got.modulesToSave], [['score.weight', head]]);
  });

  test('SEQ_CLS adapters may save classifier/score without listing them', () => {
    const dir = writeRaw(
      { ...BASE_CFG, task_type: 'SEQ_CLS' },
      {
        [`${Q}.lora_A.weight`]: tensor([4, 64], 1),
        [`${Q}.lora_B.weight`]: tensor([64, 4], 2),
        'base_model.model.classifier.dense.weight': tensor([64, 64], 3),
      },
    );
    assert.deepEqual([...loadAdapter(dir).modulesToSave.keys()], ['classifier.dense.weight']);
  });

  test("falls back to the weights' module names when target_modules is missing", () => {
    const dir = writeRaw(
      { peft_type: 'LORA', r: 4, lora_alpha: 8 },
      {
        [`${Q}.lora_A.weight`]: tensor([4, 64], 1),
        [`${Q}.lora_B.weight`]: tensor([64, 4], 2),
      },
    );
    assert.deepEqual(loadAdapter(dir).config.target_modules, ['q_proj']);
  });

  test('rank_pattern overrides r per module', () => {
    const dir = writeRaw(
      { ...BASE_CFG, rank_pattern: { 'layers\\.0\\.self_attn\\.q_proj': 2 } },
      {
        [`${Q}.lora_A.weight`]: tensor([2, 64], 1),
        [`${Q}.lora_B.weight`]: tensor([64, 2], 2),
      },
    );
    const got = loadAdapter(dir);
    assert.equal(moduleLoraParams(got.config, 'model.layers.0.self_attn.q_proj').r, 2);
    assert.equal(moduleLoraParams(got.config, 'model.layers.1.self_attn.q_proj').r, 4);
  });

  test('errors: missing folder, missing files, .bin only', () => {
    const missing = join(tmp, 'no-such-adapter');
    const err = expectError(() => loadAdapter(missing), 'adapter/not-found', /adapter folder not found/);
    assert.equal(err.info.file, missing);
    const empty = freshDir();
    mkdirSync(empty);
    expectError(() => loadAdapter(empty), 'adapter/not-found', /no adapter_config\.json/);
    writeFileSync(join(empty, 'adapter_config.json'), JSON.stringify(BASE_CFG));
    writeFileSync(join(empty, 'adapter_model.bin'), 'PK');
    const bin = expectError(() => loadAdapter(empty), 'adapter/pytorch-format', /adapter_model\.bin/);
    assert.match(bin.info.hint!, /safe_serialization=True/);
  });

  test('errors: bad config', () => {
    const ok = { [`${Q}.lora_A.weight`]: tensor([4, 64], 1), [`${Q}.lora_B.weight`]: tensor([64, 4], 2) };
    expectError(
      () => loadAdapter(writeRaw({ ...BASE_CFG, peft_type: 'IA3' }, ok)),
      'adapter/unsupported',
      /peft_type is "IA3"/,
    );
    expectError(
      () => loadAdapter(writeRaw({ ...BASE_CFG, r: 0 }, ok)),
      'adapter/bad-config',
      /r must be a positive integer/,
    );
    expectError(() => loadAdapter(writeRaw({ ...BASE_CFG, use_dora: true }, ok)), 'adapter/unsupported', /DoRA/);
    const dir = writeRaw(BASE_CFG, ok);
    writeFileSync(join(dir, 'adapter_config.json'), '{"r": ');
    const err = expectError(() => loadAdapter(dir), 'adapter/bad-config', /not valid JSON/);
    assert.equal(err.info.file, join(dir, 'adapter_config.json'));
  });

  test('errors: unpaired module, wrong rank, unknown and unsupported keys', () => {
    const A = tensor([4, 64], 1);
    const B = tensor([64, 4], 2);
    expectError(
      () => loadAdapter(writeRaw(BASE_CFG, { [`${Q}.lora_A.weight`]: A })),
      'adapter/incomplete',
      /has lora_A but no base_model\.model\.model\.layers\.0\.self_attn\.q_proj\.lora_B\.weight/,
    );
    const pair = { [`${Q}.lora_A.weight`]: A, [`${Q}.lora_B.weight`]: B };
    expectError(
      () => loadAdapter(writeRaw({ ...BASE_CFG, r: 8 }, pair)),
      'adapter/shape-mismatch',
      /lora_A is \[4,64\] and lora_B is \[64,4\], but r is 8/,
    );
    expectError(
      () => loadAdapter(writeRaw(BASE_CFG, { ...pair, [`${Q}.lora_B.weight`]: tensor([64, 2], 2) })),
      'adapter/shape-mismatch',
      /same r/,
    );
    expectError(
      () =>
        loadAdapter(
          writeRaw(BASE_CFG, {
            [`${Q}.lora_A.weight`]: A,
            [`${Q}.lora_B.weight`]: B,
            'base_model.model.model.norm.weight': tensor([64], 3),
          }),
        ),
      'adapter/unknown-key',
      /'model\.norm\.weight' is neither a LoRA weight nor part of modules_to_save/,
    );
    expectError(
      () =>
        loadAdapter(
          writeRaw(BASE_CFG, {
            [`${Q}.lora_A.weight`]: A,
            [`${Q}.lora_B.weight`]: B,
            [`${Q}.lora_magnitude_vector`]: tensor([64], 3),
          }),
        ),
      'adapter/unsupported',
      /lora_magnitude_vector/,
    );
    expectError(
      () =>
        loadAdapter(
          writeRaw(BASE_CFG, {
            [`${Q}.lora_A.weight`]: A,
            [`${Q}.lora_A.default.weight`]: A,
            [`${Q}.lora_B.weight`]: B,
          }),
        ),
      'adapter/unknown-key',
      /are the same weight/,
    );
  });
});

describe('shared reference adapters', () => {
  const setup = JSON.parse(readFileSync(join(REF, 'loraplus_llama.json'), 'utf8')) as { target_modules: string[] };

  test('llama init adapter: 10 modules, 20 tensors, PEFT shapes, B starts at zero', () => {
    const file = join(REF, 'loraplus_llama.init_adapter.safetensors');
    const { tensors } = readSafetensors(file);
    assert.equal(tensors.size, 20);
    const { lora, modulesToSave } = adapterWeightsFromSafetensors(tensors, file);
    assert.equal(modulesToSave.size, 0);
    assert.deepEqual([...lora.keys()], setup.target_modules);
    for (const [module, { A, B }] of lora) {
      assert.deepEqual(A.shape, [4, 64], module);
      assert.deepEqual(B.shape, module.endsWith('v_proj') ? [32, 4] : [64, 4], module);
      assert.ok(
        B.data.every((x) => x === 0),
        `${module} lora_B is zero at init`,
      );
      assert.ok(A.data.some((x) => x !== 0));
    }
  });

  test('llama final adapter saved as a folder loads back identically', () => {
    const file = join(REF, 'loraplus_llama.final_adapter.safetensors');
    const weights = adapterWeightsFromSafetensors(readSafetensors(file).tensors, file);
    const config: AdapterConfig = makeAdapterConfig({
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj', 'v_proj'],
      task_type: 'CAUSAL_LM',
    });
    const dir = freshDir();
    saveAdapter(dir, { config, ...weights });
    assert.ok(
      readFileSync(join(dir, 'adapter_model.safetensors')).equals(readFileSync(file)),
      "byte-identical to PEFT's file",
    );
    assert.deepEqual(loadAdapter(dir).lora, weights.lora);
  });

  test('bert: adapter with 4 modules, head file without prefix → modules_to_save', () => {
    const file = join(REF, 'loraplus_bert_cls.init_adapter.safetensors');
    assert.equal(adapterWeightsFromSafetensors(readSafetensors(file).tensors, file).lora.size, 4);
    const headFile = join(REF, 'loraplus_bert_cls.final_head.safetensors');
    const head = adapterWeightsFromSafetensors(readSafetensors(headFile).tensors, headFile);
    assert.equal(head.lora.size, 0);
    assert.deepEqual([...head.modulesToSave.keys()].sort(), ['classifier.bias', 'classifier.weight']);
    assert.deepEqual(head.modulesToSave.get('classifier.weight')?.shape, [2, 32]);
  });
});

test('loraScaling: alpha/r, or alpha/sqrt(r) with rsLoRA', () => {
  assert.equal(loraScaling({ r: 4, lora_alpha: 8, use_rslora: false }), 2);
  assert.equal(loraScaling({ r: 4, lora_alpha: 8, use_rslora: true }), 4);
  assert.equal(loraScaling({ r: 16, lora_alpha: 16, use_rslora: false }), 1);
});
