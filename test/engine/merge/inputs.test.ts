// What goes into a merge: adapters trained with Python PEFT (the shared references), several adapters combined
// (cat exact, linear and svd as PEFT), adapters with NaN (refused, or written marked with --force), bad folders.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { weightedDelta } from '../../../src/adapters/combine';
import { loadAdapter, makeAdapterConfig, saveAdapter } from '../../../src/adapters/peft';
import {
  loadModelWeights,
  readSafetensors,
  writeSafetensors,
  type HostTensor,
} from '../../../src/adapters/safetensors';
import { mergeAdapters } from '../../../src/engine/merge/merge';
import { LoraPlusError } from '../../../src/protocol/errors';
import { REFERENCE, STORIES, readJson, tempDir, useBackend } from '../../helpers/shared';
import { BERT, llamaAdapter, saved } from './fixtures';

/** A folder as Python PEFT's save_pretrained writes it, from the reference tensors and the run's settings. */
function pythonAdapter(name: 'loraplus_llama' | 'loraplus_bert_cls'): string {
  const setup = readJson<{ model: string; r: number; lora_alpha: number; target_modules: string[] }>(
    path.join(REFERENCE, `${name}.json`),
  );
  const dir = path.join(tempDir('loraplus-peft-'), name);
  const tensors = readSafetensors(path.join(REFERENCE, `${name}.final_adapter.safetensors`)).tensors;
  const cls = name === 'loraplus_bert_cls';
  if (cls)
    for (const [k, t] of readSafetensors(path.join(REFERENCE, `${name}.final_head.safetensors`)).tensors)
      tensors.set(`base_model.model.${k}`, t);
  fs.mkdirSync(dir, { recursive: true });
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors);
  fs.writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify(
      {
        alpha_pattern: {},
        auto_mapping: null,
        base_model_name_or_path: setup.model,
        bias: 'none',
        fan_in_fan_out: false,
        inference_mode: true,
        init_lora_weights: true,
        layer_replication: null,
        layers_pattern: null,
        layers_to_transform: null,
        loftq_config: {},
        lora_alpha: setup.lora_alpha,
        lora_dropout: 0.0,
        megatron_config: null,
        megatron_core: 'megatron.core',
        modules_to_save: cls ? ['classifier', 'score'] : null,
        peft_type: 'LORA',
        r: setup.r,
        rank_pattern: {},
        revision: null,
        target_modules: [...new Set(setup.target_modules.map((m) => m.split('.').pop()))],
        task_type: cls ? 'SEQ_CLS' : 'CAUSAL_LM',
        use_dora: false,
        use_rslora: false,
      },
      null,
      2,
    ),
  );
  return dir;
}

function rejects(code: string, pattern: RegExp) {
  return (err: unknown) => err instanceof LoraPlusError && err.code === code && pattern.test(err.message);
}

describe('merge inputs', () => {
  before(() => useBackend());

  it('Python PEFT adapters (llama; BERT with its trained classifier) merge; a base named by Hub id needs --base', async () => {
    const llama = pythonAdapter('loraplus_llama');
    await assert.rejects(
      mergeAdapters({ adapters: [llama], out: path.join(tempDir(), 'm') }),
      rejects('merge/base-not-found', /names the base model 'stories260k'.*--base MODEL_DIR/s),
    );
    const s = await mergeAdapters({ adapters: [llama], base: STORIES, out: path.join(tempDir(), 'llama') });
    assert.ok(s.ok && s.merge_check.max_abs_diff! <= 1e-4);
    assert.equal(s.adapters[0].r, 4);

    const bert = pythonAdapter('loraplus_bert_cls');
    const b = await mergeAdapters({ adapters: [bert], base: BERT, out: path.join(tempDir(), 'bert') });
    assert.ok(b.ok && b.merge_check.max_abs_diff! <= 1e-4);
    const head = readSafetensors(path.join(REFERENCE, 'loraplus_bert_cls.final_head.safetensors')).tensors;
    assert.deepEqual(loadModelWeights(b.out).get('classifier.weight')!.data, head.get('classifier.weight')!.data);
  });

  it('cat of two adapters is exact: merged W equals W + Σ wᵢ·ΔWᵢ formed directly', async () => {
    const [a, b] = [llamaAdapter(STORIES, 11, 4), llamaAdapter(STORIES, 12, 2)];
    const weights = [0.5, -1.5];
    const s = await mergeAdapters({
      adapters: [saved(a), saved(b)],
      weights,
      combination: 'cat',
      out: path.join(tempDir(), 'cat'),
    });
    assert.ok(s.ok && s.merge_check.combination_error! < 1e-6);
    assert.equal(s.r, 6);
    const m = 'model.layers.1.self_attn.v_proj';
    const w = loadModelWeights(STORIES).get(`${m}.weight`)!.data;
    const want = weightedDelta([a, b], weights, m).map((d, i) => w[i] + d);
    const got = loadModelWeights(s.out).get(`${m}.weight`)!.data;
    let diff = 0;
    for (let i = 0; i < got.length; i++) diff = Math.max(diff, Math.abs(got[i] - want[i]));
    assert.ok(diff < 1e-6, `${diff}`);
  });

  it("linear merges PEFT's combination (checked against base + that adapter); svd writes a new PEFT adapter", async () => {
    const dirs = [saved(llamaAdapter(STORIES, 13)), saved(llamaAdapter(STORIES, 14))];
    const lin = await mergeAdapters({
      adapters: dirs,
      weights: [0.3, 0.7],
      combination: 'linear',
      out: path.join(tempDir(), 'linear'),
    });
    assert.ok(lin.ok && lin.merge_check.max_abs_diff! <= 1e-4);
    assert.ok(
      lin.merge_check.combination_error! > 1e-3,
      'linear is not the weighted sum of ΔW, and the report says how far',
    );
    assert.match(fs.readFileSync(path.join(lin.out, 'README.md'), 'utf8'), /not the weighted sum/);

    const out = path.join(tempDir(), 'svd-adapter');
    const svd = await mergeAdapters({
      adapters: dirs,
      weights: [1, 1],
      combination: 'svd',
      svdRank: 6,
      as: 'adapter',
      out,
    });
    assert.ok(svd.ok);
    const back = loadAdapter(out);
    assert.equal(back.config.r, 6);
    assert.equal(back.config.lora_alpha, 6);
    assert.equal(back.lora.size, 15);
    assert.ok(fs.existsSync(path.join(out, 'README.md')) && fs.existsSync(path.join(out, 'merge_info.json')));
    assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /PeftModel\.from_pretrained\(base, /);
    // And the new adapter merges like any other.
    const merged = await mergeAdapters({ adapters: [out], out: path.join(tempDir(), 'svd-model') });
    assert.ok(merged.ok && merged.merge_check.max_abs_diff! <= 1e-4);
  });

  it('NaN in an adapter: refused with nothing written; --force writes it marked MERGE_CHECK_FAILED', async () => {
    const bad = llamaAdapter(STORIES, 15);
    (bad.lora.get('model.layers.3.mlp.down_proj')!.B.data as Float32Array)[7] = NaN;
    const dir = saved(bad);
    const out = path.join(tempDir(), 'nan');
    await assert.rejects(
      mergeAdapters({ adapters: [dir], out }),
      rejects('merge/check-failed', /NaN\/Inf in model\.layers\.3\.mlp\.down_proj.*nothing was written/s),
    );
    assert.ok(!fs.existsSync(out));
    assert.deepEqual(fs.readdirSync(path.dirname(out)), [], 'no temporary folder left behind');

    const s = await mergeAdapters({ adapters: [dir], out, force: true });
    assert.equal(s.ok, false);
    assert.match(fs.readFileSync(path.join(out, 'README.md'), 'utf8'), /MERGE_CHECK_FAILED/);
    const info = readJson<{ merge_check: { passed: boolean; nonfinite_tensors: string[] } }>(
      path.join(out, 'merge_info.json'),
    );
    assert.equal(info.merge_check.passed, false);
    assert.ok(info.merge_check.nonfinite_tensors.includes('model.layers.3.mlp.down_proj.weight'));
  });

  it('refuses an output folder that would replace the base model or an unrelated folder, and a too-small tolerance', async () => {
    const dir = saved(llamaAdapter(STORIES, 16));
    await assert.rejects(
      mergeAdapters({ adapters: [dir], out: STORIES }),
      rejects('merge/bad-out', /replace the base model/),
    );
    await assert.rejects(mergeAdapters({ adapters: [dir], out: dir }), rejects('merge/bad-out', /input adapter/));
    const busy = tempDir();
    fs.writeFileSync(path.join(busy, 'notes.txt'), 'mine');
    await assert.rejects(
      mergeAdapters({ adapters: [dir], out: busy }),
      rejects('merge/out-exists', /not the output of an earlier merge/),
    );
    await assert.rejects(
      mergeAdapters({ adapters: [dir], out: path.join(tempDir(), 'x'), tolerance: 0 }),
      rejects('merge/check-failed', /tolerance 0/),
    );
    // An earlier merge's folder is replaced.
    const out = path.join(tempDir(), 'again');
    await mergeAdapters({ adapters: [dir], out });
    assert.ok((await mergeAdapters({ adapters: [dir], out })).ok);
  });

  it('combining adapters of different base models is refused', async () => {
    const a = saved(llamaAdapter(STORIES, 17));
    const other: HostTensor = { dtype: 'float32', shape: [4, 32], data: new Float32Array(128).fill(0.1) };
    const b = path.join(tempDir(), 'bert-adapter');
    saveAdapter(b, {
      config: makeAdapterConfig({ r: 4, lora_alpha: 8, target_modules: ['query'], base_model_name_or_path: BERT }),
      lora: new Map([
        [
          'bert.encoder.layer.0.attention.self.query',
          { A: other, B: { dtype: 'float32', shape: [32, 4], data: new Float32Array(128).fill(0.1) } },
        ],
      ]),
      modulesToSave: new Map(),
    });
    await assert.rejects(
      mergeAdapters({ adapters: [a, b], combination: 'cat', out: path.join(tempDir(), 'x') }),
      rejects('merge/base-mismatch', /different base models/),
    );
  });
});
