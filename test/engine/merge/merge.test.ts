// Merging adapters into full model folders, on each family: the merged model's logits equal base + adapter's within
// 1e-4 (and differ from the base model's, so the adapter did something), the checkpoint's key names and dtypes are
// kept, heads trained as modules_to_save are merged in under transformers' names, and shards load back.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { loadAdapter } from '../../../src/adapters/peft';
import { loadModelWeights } from '../../../src/adapters/safetensors';
import { mergeAdapters } from '../../../src/engine/merge/merge';
import type { MergeSummary } from '../../../src/protocol/merge';
import { compareLogits, probeBatch, probeLogits } from '../../../src/engine/merge/check';
import { Rng } from '../../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../../src/engine/train/inputs';
import { Trainables } from '../../../src/engine/train/trainables';
import type { Task } from '../../../src/models/types';
import { STORIES, tempDir, useBackend } from '../../helpers/shared';
import { BERT, bertAdapter, GPT2, gpt2Adapter, headerOf, llamaAdapter, saved } from './fixtures';

/** Logits of the probe batch: a model folder alone, or with an adapter. */
async function logits(dir: string, task: Task, labels: number, adapterDir?: string): Promise<Float32Array> {
  const folder = openModelFolder(dir);
  const model = buildModel(folder, task, labels, new Rng(0));
  const weights = adapterDir ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapterDir)) : undefined;
  try {
    return await probeLogits(model, probeBatch(folder, task, model.vocabSize), weights);
  } finally {
    weights?.dispose();
    model.dispose();
  }
}

/** The merge's own check, recomputed independently: merged vs base + adapter, and merged vs base. */
async function assertEquivalent(
  s: MergeSummary,
  base: string,
  adapterDir: string,
  task: Task,
  labels = 0,
): Promise<void> {
  assert.ok(s.ok && s.merge_check.passed, s.merge_check.failures.join('; '));
  assert.ok(s.merge_check.max_abs_diff! <= 1e-4, `check says ${s.merge_check.max_abs_diff}`);
  const merged = await logits(s.out, task, labels);
  const reference = await logits(base, task, labels, adapterDir);
  const vsRef = compareLogits(merged, reference);
  const vsBase = compareLogits(merged, await logits(base, task, labels));
  assert.ok(vsRef.max_abs_diff <= 1e-4, `merged vs base + adapter: ${vsRef.max_abs_diff}`);
  assert.ok(
    vsBase.max_abs_diff > 1e-2,
    `the adapter should change the logits (merged vs base: ${vsBase.max_abs_diff})`,
  );
}

describe('merge into a model folder', () => {
  before(() => useBackend());

  it('llama (stories260k): equivalent within 1e-4, same keys and dtypes, untouched tensors byte for byte', async () => {
    const adapterDir = saved(llamaAdapter(STORIES, 1));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    await assertEquivalent(s, STORIES, adapterDir, 'causal-lm');
    assert.deepEqual(headerOf(out), headerOf(STORIES));
    const [b, m] = [loadModelWeights(STORIES), loadModelWeights(out)];
    assert.deepEqual(
      m.get('model.layers.2.mlp.up_proj.weight')!.data,
      b.get('model.layers.2.mlp.up_proj.weight')!.data,
    );
    assert.notDeepEqual(
      m.get('model.layers.2.self_attn.q_proj.weight')!.data,
      b.get('model.layers.2.self_attn.q_proj.weight')!.data,
    );
    for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'generation_config.json'])
      assert.ok(fs.existsSync(path.join(out, f)), f);
    assert.deepEqual(
      JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8')),
      JSON.parse(fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8')),
    );
    const readme = fs.readFileSync(path.join(out, 'README.md'), 'utf8');
    assert.match(readme, /stories260k/);
    assert.match(readme, /lora_alpha = 8/);
    assert.match(readme, /max \|Δlogits\|/);
    // The model card loads it with the task's class, not the bare AutoModel (which drops the LM head).
    assert.match(readme, /model = AutoModelForCausalLM\.from_pretrained\("path\/to\/this\/folder"\)/);
    assert.doesNotMatch(readme, /AutoModel\.from_pretrained/);
  });

  it('gpt2 (Conv1D, fan_in_fan_out): equivalent, keys as the bare checkpoint stores them', async () => {
    const adapterDir = saved(gpt2Adapter(2));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    await assertEquivalent(s, GPT2, adapterDir, 'causal-lm');
    assert.deepEqual(headerOf(out), headerOf(GPT2)); // h.0.attn.c_attn.weight [in, out], no transformer. prefix
  });

  it('gpt2 sequence classifier: the score head is added, keys get the model prefix, config names the architecture', async () => {
    const adapterDir = saved(gpt2Adapter(3, 3));
    const out = path.join(tempDir(), 'merged');
    const s = await mergeAdapters({ adapters: [adapterDir], out });
    await assertEquivalent(s, GPT2, adapterDir, 'sequence-classification', 3);
    const keys = headerOf(out);
    assert.deepEqual(
      [...keys.keys()].sort(),
      [...[...headerOf(GPT2).keys()].map((k) => `transformer.${k}`), 'score.weight'].sort(),
    );
    assert.ok(s.rekeyed);
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['GPT2ForSequenceClassification']);
    assert.match(
      fs.readFileSync(path.join(out, 'README.md'), 'utf8'),
      /AutoModelForSequenceClassification\.from_pretrained/,
    );
    assert.deepEqual(Object.keys(config.id2label), ['0', '1', '2']);
    assert.equal(typeof config.pad_token_id, 'number');
  });

  it("bert sequence classifier: the trained classifier (modules_to_save) replaces the checkpoint's, labels from the run", async () => {
    const run = tempDir();
    const adapter = bertAdapter(4);
    const adapterDir = path.join(run, 'final');
    fs.mkdirSync(adapterDir);
    fs.cpSync(saved(adapter), adapterDir, { recursive: true });
    fs.writeFileSync(
      path.join(run, 'config.yaml'),
      `model: ${BERT}\ntask: sequence-classification\ndata:\n  train: missing.jsonl\n  labels: [neg, pos]\n`,
    );
    fs.writeFileSync(path.join(run, 'metrics.jsonl'), '');
    const out = path.join(run, 'merged');
    const s = await mergeAdapters({ adapters: [run], out }); // a run folder: its final/ adapter
    await assertEquivalent(s, BERT, adapterDir, 'sequence-classification', 2);
    assert.deepEqual(headerOf(out), headerOf(BERT));
    assert.deepEqual(
      loadModelWeights(out).get('classifier.weight')!.data,
      adapter.modulesToSave.get('classifier.weight')!.data,
    );
    const config = JSON.parse(fs.readFileSync(path.join(out, 'config.json'), 'utf8'));
    assert.deepEqual(config.architectures, ['BertForSequenceClassification']);
    assert.deepEqual(config.id2label, { 0: 'neg', 1: 'pos' });
    assert.deepEqual(config.label2id, { neg: 0, pos: 1 });
  });

  it('a small --max-shard-size writes shards and an index that load back, also as the base of another merge', async () => {
    const adapterDir = saved(llamaAdapter(STORIES, 5));
    const out = path.join(tempDir(), 'sharded');
    const s = await mergeAdapters({ adapters: [adapterDir], out, maxShardSize: '300KB' });
    assert.ok(s.ok);
    const index = JSON.parse(fs.readFileSync(path.join(out, 'model.safetensors.index.json'), 'utf8'));
    const shards = [...new Set(Object.values(index.weight_map as Record<string, string>))];
    assert.ok(shards.length >= 3, `${shards.length} shards`);
    assert.ok(
      shards.every(
        (f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f) && fs.statSync(path.join(out, f)).size <= 300_000 + 4096,
      ),
    );
    assert.equal(
      index.metadata.total_size,
      [...loadModelWeights(out).values()].reduce((n, t) => n + t.data.byteLength, 0),
    );
    assert.ok(!fs.existsSync(path.join(out, 'model.safetensors')));
    // The sharded folder is a base model like any other: merge a second adapter into it.
    const second = saved(llamaAdapter(out, 6));
    const again = await mergeAdapters({ adapters: [second], out: path.join(tempDir(), 'twice') });
    await assertEquivalent(again, out, second, 'causal-lm');
  });

  it('bfloat16 checkpoints stay bfloat16; --dtype float32 writes float32', async () => {
    const { encodeFloats, listStoredTensors, readStoredBytes, decodeFloats, writeShards } =
      await import('../../../src/engine/merge/write');
    const bf16 = path.join(tempDir(), 'stories-bf16');
    fs.mkdirSync(bf16);
    for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json'])
      fs.copyFileSync(path.join(STORIES, f), path.join(bf16, f));
    const tensors = listStoredTensors(STORIES).map((t) => ({
      key: t.key,
      dtype: 'BF16',
      shape: t.shape,
      byteLength: (t.end - t.begin) / 2,
      bytes: () => encodeFloats('BF16', decodeFloats(t.dtype, readStoredBytes(t))),
    }));
    writeShards(bf16, tensors, 1e9);
    const adapterDir = saved(llamaAdapter(bf16, 7));
    const kept = await mergeAdapters({ adapters: [adapterDir], out: path.join(tempDir(), 'bf16'), tolerance: 1 });
    assert.ok([...headerOf(kept.out).values()].every((t) => t.dtype === 'BF16'));
    const f32 = await mergeAdapters({ adapters: [adapterDir], out: path.join(tempDir(), 'f32'), dtype: 'float32' });
    assert.ok([...headerOf(f32.out).values()].every((t) => t.dtype === 'F32'));
    assert.ok(f32.merge_check.max_abs_diff! <= 1e-4);
    assert.ok(
      kept.merge_check.max_abs_diff! > f32.merge_check.max_abs_diff!,
      'rounding merged weights to bfloat16 shows in the check',
    );
  });
});
