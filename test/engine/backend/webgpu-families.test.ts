// The GPU code path for the other two families: one LoRA+ training step of GPT-2 (causal LM), BERT and RoBERTa
// (sequence classification) on the WebGPU backend (Mesa lavapipe on CPU-only machines) gives the same loss and
// LoRA / head gradients as on wasm, with every kernel on the GPU: tfjs's CPU forwarding of small tensors is off, a
// missing WebGPU kernel throws, and a kernel that reads GPU data back synchronously (slow, and impossible in Node:
// the backend's readSync needs OffscreenCanvas) is counted and fails the test. Kept tiny (batch 2, 8 tokens):
// lavapipe does about 3 GFLOP/s.
// Skipped when no WebGPU adapter exists, unless LORAPLUS_REQUIRE_WEBGPU=1 (CI), where it must run.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { selectBackend } from '../../../src/engine/backend/select';
import { Rng } from '../../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../../src/engine/train/inputs';
import { Trainables } from '../../../src/engine/train/trainables';
import type { Task } from '../../../src/models/types';
import { maxAbsDiff, SHARED } from '../../helpers/shared';

interface Case {
  name: string;
  task: Task;
  ids: number[][];
  mask: number[][];
  typeIds: number[][] | null; // a sentence pair's token types (BERT), exercising the token-type table
}

// Row 2 is right-padded: padded keys are masked, and RoBERTa's position ids skip pad_token_id (0 in its config).
const MASK = [
  [1, 1, 1, 1, 1, 1, 1, 1],
  [1, 1, 1, 1, 1, 0, 0, 0],
];
const CASES: Case[] = [
  {
    name: 'tiny-random-gpt2',
    task: 'causal-lm',
    ids: [
      [1, 403, 407, 261, 378, 432, 383, 286],
      [1, 312, 410, 439, 77, 0, 0, 0],
    ],
    mask: MASK,
    typeIds: null,
  },
  {
    name: 'tiny-random-bert',
    task: 'sequence-classification',
    ids: [
      [101, 7, 33, 250, 102, 81, 9, 102],
      [101, 40, 500, 66, 102, 0, 0, 0],
    ],
    mask: MASK,
    typeIds: [
      [0, 0, 0, 0, 0, 1, 1, 1],
      [0, 0, 0, 0, 0, 0, 0, 0],
    ],
  },
  {
    name: 'tiny-random-roberta',
    task: 'sequence-classification',
    ids: [
      [2, 403, 407, 261, 378, 432, 383, 3],
      [2, 312, 410, 439, 3, 0, 0, 0],
    ],
    mask: MASK,
    typeIds: null,
  },
];

interface Step {
  loss: number;
  grads: Map<string, number[]>; // by parameter name (lora_A / lora_B of each module, the head's weight and bias)
}

async function oneStep(c: Case): Promise<Step> {
  const folder = openModelFolder(path.join(SHARED, 'models', c.name));
  const rng = new Rng(5);
  const model = buildModel(folder, c.task, c.task === 'causal-lm' ? 0 : 2, rng);
  // all-linear: every projection of each block runs through LoRA (the head, when there is one, is trained in full).
  const weights = new Trainables(
    model,
    { r: 2, lora_alpha: 4, lora_dropout: 0, use_rslora: false, target_modules: 'all-linear', modules_to_save: null },
    folder.family,
    () => rng.next(),
    null,
  );
  for (const l of weights.lora.values()) l.B.assign(tf.fill(l.B.shape, 0.01)); // non-zero B so ∇A is not zero
  const batch = {
    inputIds: tf.tensor2d(c.ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(c.mask, undefined, 'int32'),
    typeIds: c.typeIds ? tf.tensor2d(c.typeIds, undefined, 'int32') : null,
    labels: c.task === 'causal-lm' ? null : tf.tensor1d([1, 0], 'int32'),
  };
  const params = weights.params();
  const { value, grads } = tf.variableGrads(
    () => model.loss(batch, weights),
    params.map((p) => p.variable),
  );
  const out: Step = { loss: (await value.data())[0], grads: new Map() };
  for (const p of params) out.grads.set(p.name, Array.from(await grads[p.variable.name].data()));
  tf.dispose([
    batch.inputIds,
    batch.attentionMask,
    ...(batch.typeIds ? [batch.typeIds] : []),
    ...(batch.labels ? [batch.labels] : []),
    value,
    ...Object.values(grads),
  ]);
  weights.dispose();
  model.dispose();
  return out;
}

// The backend's private bookkeeping, reached into only to count synchronous reads of data that lives on the GPU (a
// readSync of data still on the CPU, as tfjs's small-tensor CPU forwarding does, is free and not counted).
interface WebGpuInternals {
  readSync(dataId: object): unknown;
  tensorMap: { get(dataId: object): { values?: unknown; resource?: unknown } | undefined };
}

/** Runs f, counting readSync calls on GPU-resident data meanwhile. */
async function countGpuReads<T>(f: () => Promise<T>): Promise<{ result: T; reads: number }> {
  const b = tf.backend() as unknown as WebGpuInternals;
  const original = b.readSync;
  let reads = 0;
  b.readSync = function (this: WebGpuInternals, dataId: object) {
    const d = this.tensorMap.get(dataId);
    if (d && d.values == null && d.resource != null) reads++;
    return original.call(this, dataId);
  };
  try {
    return { result: await f(), reads };
  } finally {
    b.readSync = original;
  }
}

describe('webgpu backend, every model family', () => {
  const ref = new Map<string, Step>();
  let skip: string | null = null;

  before(async () => {
    await selectBackend('wasm');
    for (const c of CASES) ref.set(c.name, await oneStep(c));
    try {
      await selectBackend('webgpu');
      // Every kernel on the GPU: without this, tfjs runs some kernels on the CPU when all their inputs are small and
      // still on the CPU, so at this test's size a kernel could pass here that real sizes run on the GPU.
      tf.env().set('WEBGPU_CPU_FORWARD', false);
    } catch (err) {
      if (process.env.LORAPLUS_REQUIRE_WEBGPU === '1') throw err;
      skip = `no WebGPU adapter here: ${(err as Error).message}`;
    }
  });

  for (const c of CASES) {
    it(`${c.name}: one training step (${c.task}, all-linear LoRA) matches wasm to 1e-4, no synchronous GPU reads`, async (t) => {
      if (skip !== null) {
        t.skip(skip);
        return;
      }
      const want = ref.get(c.name)!;
      const { result: got, reads } = await countGpuReads(() => oneStep(c));
      assert.equal(reads, 0, 'no kernel may read GPU data back synchronously');
      assert.ok(Math.abs(got.loss - want.loss) < 1e-4, `loss ${got.loss} vs ${want.loss}`);
      assert.deepEqual([...got.grads.keys()], [...want.grads.keys()]);
      let worst = 0;
      for (const [name, g] of got.grads) {
        const d = maxAbsDiff(g, want.grads.get(name)!);
        assert.ok(d < 1e-4, `∇${name}: ${d}`);
        worst = Math.max(worst, d);
      }
      t.diagnostic(
        `|Δloss| ${Math.abs(got.loss - want.loss).toExponential(1)}, max |Δgrad| ${worst.toExponential(1)} over ${got.grads.size} tensors`,
      );
      assert.ok(
        [...want.grads.values()].some((g) => g.some((v) => Math.abs(v) > 1e-6)),
        'gradients are not all zero',
      );
    });
  }
});
