// Damaged model checkpoints and adapters that do not fit the model (issue 14): each gives one clear error naming the
// weight, from building the model, from the config checks (inspect.ts) and from `loraplus info`, never numbers from a
// weight read the wrong way or an error from inside a tfjs kernel.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { loadAdapter, makeAdapterConfig, saveAdapter, type Adapter } from '../../src/adapters/peft';
import { readSafetensors, writeSafetensors, type HostTensor } from '../../src/adapters/safetensors';
import { inspectModel } from '../../src/engine/checks/inspect';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { Trainables } from '../../src/engine/train/trainables';
import type { Task } from '../../src/models/types';
import { LoraPlusError } from '../../src/protocol/errors';
import { runCli } from '../helpers/cli';
import { SHARED, STORIES, tempDir, useBackend } from '../helpers/shared';

const GPT2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
const BERT = path.join(SHARED, 'models', 'tiny-random-bert');
const skip = ![STORIES, GPT2, BERT].every((d) => fs.existsSync(d)) && 'needs ../shared';

/** A copy of model folder `src` whose weights are `edit`ed (and config.json too, when `config` is given). */
function damaged(
  src: string,
  edit: (w: Map<string, HostTensor>) => void,
  config?: (c: Record<string, unknown>) => void,
): string {
  const dir = tempDir('loraplus-damaged-model-');
  for (const f of fs.readdirSync(src)) {
    if (fs.statSync(path.join(src, f)).isFile()) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  }
  const weights = new Map(readSafetensors(path.join(src, 'model.safetensors')).tensors);
  edit(weights);
  writeSafetensors(path.join(dir, 'model.safetensors'), weights);
  if (config) {
    const c = JSON.parse(fs.readFileSync(path.join(src, 'config.json'), 'utf8'));
    config(c);
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c));
  }
  return dir;
}

function build(dir: string, task: Task = 'causal-lm', labels = 0): void {
  buildModel(openModelFolder(dir), task, labels, new Rng(0)).dispose();
}

/** One clear error: this code, a message matching `re`, the place (`file`), and a hint. */
function rejects(fn: () => unknown, code: string, re: RegExp, file?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof LoraPlusError, `expected a LoraPlusError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.match(err.info.message, re);
    if (file) assert.equal(err.info.file, file);
    assert.ok(err.info.hint, 'every error says what to do');
    return true;
  });
}

/** The model build, the config checks (unless `checks` is false: they check no shapes) and `loraplus info` all
 *  refuse `dir` with `code`. */
async function everywhere(
  dir: string,
  code: string,
  re: RegExp,
  task: Task = 'causal-lm',
  checks = true,
): Promise<void> {
  rejects(() => build(dir, task, task === 'causal-lm' ? 0 : 2), code, re, dir);
  const r = inspectModel(dir);
  if (checks) {
    assert.ok(!r.ok && r.problem.code === code, JSON.stringify(r));
    assert.match(r.problem.message, re);
  }
  const cli = await runCli(['info', dir]);
  assert.equal(cli.code, 1);
  assert.match(cli.err, re);
}

const f32 = (shape: number[], fill = 0.01): HostTensor => ({
  dtype: 'float32',
  shape,
  data: new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill),
});

describe('damaged model checkpoints', { skip }, () => {
  before(() => useBackend());

  it('a bare and a prefixed name for one weight: refused naming both (llama, gpt2, bert gamma)', async () => {
    const llama = damaged(STORIES, (w) => w.set('embed_tokens.weight', w.get('model.embed_tokens.weight')!));
    await everywhere(llama, 'model/duplicate-weight', /both 'embed_tokens\.weight' and 'model\.embed_tokens\.weight'/);
    const gpt2 = damaged(GPT2, (w) => w.set('transformer.h.0.ln_1.weight', w.get('h.0.ln_1.weight')!));
    await everywhere(gpt2, 'model/duplicate-weight', /'h\.0\.ln_1\.weight' and 'transformer\.h\.0\.ln_1\.weight'/);
    const gamma = 'bert.embeddings.LayerNorm.gamma';
    const bert = damaged(BERT, (w) => w.set(gamma, w.get('bert.embeddings.LayerNorm.weight')!));
    await everywhere(
      bert,
      'model/duplicate-weight',
      /both '.*LayerNorm\.gamma' and '.*LayerNorm\.weight', which are the same weight/,
      'sequence-classification',
    );
  });

  it('a float weight stored as integers (an embedding relabelled I32) is refused naming it and the dtype', async () => {
    const dir = damaged(STORIES, (w) => {
      const e = w.get('model.embed_tokens.weight')!;
      w.set('model.embed_tokens.weight', {
        dtype: 'int32',
        shape: e.shape,
        data: new Int32Array(e.data.buffer, e.data.byteOffset, e.data.length),
      });
    });
    await everywhere(dir, 'model/bad-dtype', /model\.embed_tokens\.weight is stored as I32, but the model uses it as/);
  });

  it('NaN/Inf in a weight is refused naming it and the count', () => {
    const key = 'model.layers.2.self_attn.q_proj.weight';
    const dir = damaged(STORIES, (w) => {
      const d = Float32Array.from(w.get(key)!.data);
      [d[0], d[100], d[4095]] = [NaN, Infinity, -Infinity];
      w.set(key, { dtype: 'float32', shape: w.get(key)!.shape, data: d });
    });
    rejects(() => build(dir), 'model/non-finite', /q_proj\.weight holds 3 NaN\/Inf values \(of 4096\)/, dir);
  });

  it('a wrong-shaped lm_head.weight is refused at load, not inside matMul', async () => {
    const llama = damaged(STORIES, (w) => w.set('lm_head.weight', f32([511, 64])));
    await everywhere(
      llama,
      'model/shape-mismatch',
      /lm_head\.weight has shape \[511,64\] but config\.json implies \[512,64\]/,
      'causal-lm',
      false,
    );
    const gpt2 = damaged(
      GPT2,
      (w) => w.set('lm_head.weight', f32([32, 32])),
      (c) => (c.tie_word_embeddings = false),
    );
    rejects(() => build(gpt2), 'model/shape-mismatch', /lm_head\.weight has shape \[32,32\]/, gpt2);
    const bias = damaged(STORIES, (w) => {
      w.set('lm_head.weight', f32([512, 64]));
      w.set('lm_head.bias', f32([64]));
    });
    rejects(
      () => build(bias),
      'model/shape-mismatch',
      /lm_head\.bias has shape \[64\] but config\.json implies \[512\]/,
    );
  });
});

describe('adapters against the model they are applied to', { skip }, () => {
  before(() => useBackend());
  const q = 'model.layers.0.self_attn.q_proj';
  const adapter = (lora: [string, number, number][], save: [string, number[]][] = []): Adapter => ({
    config: makeAdapterConfig({
      r: 4,
      lora_alpha: 8,
      target_modules: ['q_proj'],
      modules_to_save: save.length ? ['score'] : null,
    }),
    lora: new Map(lora.map(([m, out, inp]) => [m, { A: f32([4, inp]), B: f32([out, 4]) }])),
    modulesToSave: new Map(save.map(([k, shape]) => [k, f32(shape)])),
  });
  const saved = (a: Adapter): string => {
    const dir = tempDir('loraplus-damaged-adapter-');
    saveAdapter(dir, a);
    return dir;
  };

  it('lora_A [r, in] and lora_B [out, r] must fit the Linear; modules_to_save tensors the module', () => {
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'sequence-classification', 2, new Rng(0));
    const before = tf.memory().numTensors;
    try {
      const wide = saved(adapter([[q, 64, 65]]));
      rejects(
        () => Trainables.fromAdapter(model, folder.family, loadAdapter(wide)),
        'adapter/shape-mismatch',
        /module 'model\.layers\.0\.self_attn\.q_proj': lora_A is \[4,65\] .* maps 64 → 64 features/,
        path.join(wide, 'adapter_model.safetensors'),
      );
      const head = saved(adapter([[q, 64, 64]], [['score.weight', [3, 64]]]));
      rejects(
        () => Trainables.fromAdapter(model, folder.family, loadAdapter(head)),
        'adapter/shape-mismatch',
        /modules_to_save tensor 'score\.weight' is \[3,64\], but the model's score needs \[2,64\]/,
      );
      // The same checks for lora.init_adapter, before any variable exists.
      const settings = { ...loadAdapter(wide).config, target_modules: null, modules_to_save: null };
      rejects(
        () => new Trainables(model, settings, folder.family, Math.random, loadAdapter(wide)),
        'adapter/shape-mismatch',
        /lora_A is \[4,65\]/,
      );
      assert.equal(tf.memory().numTensors, before, 'a refused adapter leaves no tensors behind');
    } finally {
      model.dispose();
    }
  });

  it('resuming from a checkpoint of another shape is refused naming the tensor', () => {
    const folder = openModelFolder(STORIES);
    const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
    const weights = Trainables.fromAdapter(model, folder.family, loadAdapter(saved(adapter([[q, 64, 64]]))));
    try {
      const other = adapter([[q, 64, 64]]);
      other.lora.set(q, { A: f32([8, 64]), B: f32([64, 8]) });
      rejects(() => weights.assign(other), 'adapter/shape-mismatch', /q_proj\.lora_A\.weight is \[8,64\] but this run/);
      rejects(() => weights.assign(adapter([])), 'adapter/incomplete', /lacks model\.layers\.0\.self_attn\.q_proj/);
    } finally {
      weights.dispose();
      model.dispose();
    }
  });
});
