// `npm run bench:memory`: the memory estimate (src/engine/checks/memory.ts) against real training runs on wasm. Each
// setting trains 2 steps with the engine's own train() in a fresh child process, which reports the wasm heap's size
// afterwards (it grows and never shrinks, so that is the run's peak) and its peak RSS; the table puts them beside the
// estimate. A benchmark, not a test: it never fails on a number.
//   node --import tsx bench/memory.ts [--quick] [--json] [--device cpu]    the runs (--quick: the first two settings
//        per model; --device cpu: on tfjs's cpu backend, against the peak RSS, since its tensors are the process's)
//   node --import tsx bench/memory.ts --count               memory.ts's PER_LAYER: live tensors at a step's peak
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { writeSafetensors, type HostTensor } from '../src/adapters/safetensors';
import { selectBackend } from '../src/engine/backend/select';
import { checkConfigFile, requireCheckedConfig } from '../src/engine/checks/config';
import { inspectModel } from '../src/engine/checks/inspect';
import { estimateMemory, formatBytes } from '../src/engine/checks/memory';
import { WASM_RUNTIME } from '../src/engine/checks/sizes';
import { Rng } from '../src/engine/data/rng';
import { AdamW, loraplusGroups } from '../src/engine/train/optimizer';
import { train } from '../src/engine/train/train';
import { Trainables } from '../src/engine/train/trainables';
import { parseBertConfig } from '../src/models/bert/config';
import { requiredBertWeights } from '../src/models/bert/weights';
import { createModel } from '../src/models/create';
import { parseGemma3Config } from '../src/models/gemma3/config';
import { requiredGemma3Weights } from '../src/models/gemma3/weights';
import { parseGpt2Config } from '../src/models/gpt2/config';
import { requiredGpt2Weights } from '../src/models/gpt2/weights';
import { parseLlamaConfig } from '../src/models/llama/config';
import { requiredLlamaWeights } from '../src/models/llama/weights';
import { parseQwen3Config } from '../src/models/qwen3/config';
import { requiredQwen3Weights } from '../src/models/qwen3/weights';
import { FAMILIES } from '../src/models/registry';
import type { HFConfig } from '../src/models/types';
import { ADAM, gaussian, LORA, LORAPLUS, modelWeights, STORIES_DIR } from './models';

const TAG = 'MEMORY_RESULT ';
const LLAMA = 'llama-768x12'; // the bench's Llama at GPT-2-small size (bench/models.ts), random weights

/** Model × batch × length; the first two of each model are the --quick ones. */
const SETTINGS: { model: string; batch: number; length: number }[] = [
  { model: 'stories260k', batch: 8, length: 64 },
  { model: 'stories260k', batch: 32, length: 128 },
  { model: 'stories260k', batch: 16, length: 512 },
  { model: 'stories260k', batch: 64, length: 256 },
  { model: LLAMA, batch: 1, length: 128 },
  { model: LLAMA, batch: 2, length: 128 },
  { model: LLAMA, batch: 2, length: 256 },
  { model: LLAMA, batch: 4, length: 128 },
];

interface Measured {
  heapBytes: number; // the wasm heap after the run: its peak
  peakRss: number; // VmHWM
  steps: number;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--child') return child(args[1]);
  if (args.includes('--count')) return count();
  const quick = args.includes('--quick');
  const device = args.includes('--device') ? (args[args.indexOf('--device') + 1] as 'wasm' | 'cpu') : 'wasm';
  const json = args.includes('--json');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loraplus-bench-memory-'));
  const rows: object[] = [];
  try {
    const folders = { stories260k: STORIES_DIR, [LLAMA]: randomLlama(dir) };
    const data = tokens(dir);
    const picked = SETTINGS.filter((s, i) => !quick || SETTINGS.findIndex((x) => x.model === s.model) >= i - 1);
    for (const s of picked) {
      const file = path.join(dir, `${s.model}-${s.batch}x${s.length}.yaml`);
      fs.writeFileSync(
        file,
        [
          `model: ${folders[s.model as keyof typeof folders]}`,
          `device: ${device}`,
          `output_dir: ${path.join(dir, 'runs')}`,
          `data:\n  train: ${data}\n  max_length: ${s.length}`,
          'lora:\n  r: 8\n  lora_alpha: 16',
          `training:\n  batch_size: ${s.batch}\n  max_steps: 2\n  warmup_steps: 0`,
          '',
        ].join('\n'),
      );
      const checked = checkConfigFile(file);
      const config = checked.config!;
      const m = inspectModel(config.model);
      const e = m.ok ? estimateMemory(config, m.value, device) : null;
      const refused = checked.problems.find((p) => p.severity === 'error');
      process.stderr.write(
        `${s.model} ${s.batch}×${s.length}: ${refused ? `refused (${refused.code})` : 'training'}\n`,
      );
      const r = refused ? null : runChild(file);
      rows.push({ ...s, estimate: e, measured: r, refused: refused?.message ?? null });
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  if (json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  else printTable(rows as Row[], device);
}

type Row = (typeof SETTINGS)[number] & {
  estimate: ReturnType<typeof estimateMemory>;
  measured: Measured | { error: string } | null;
  refused: string | null;
};

function printTable(rows: Row[], device: string): void {
  const out = [
    device === 'wasm'
      ? '| model | batch × length | estimate: total (weights / optimizer / activations / heap overhead) | ' +
        'wasm heap, measured | (estimate + 16 MiB runtime) ÷ heap | peak RSS |'
      : '| model | batch × length | estimate: total (weights / optimizer / activations / Node and checkpoint) | ' +
        'peak RSS, measured | estimate ÷ peak RSS |',
    device === 'wasm' ? '|---|---|---|---|---|---|' : '|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const e = r.estimate;
    const parts = e ? [e.weights, e.optimizer, e.activations, e.overhead || e.process].map(formatBytes) : [];
    const est = e ? `${formatBytes(e.total)} (${parts.join(' / ')})` : '?';
    const m = r.measured;
    const ok = m && !('error' in m) ? m : null;
    const failed = !m ? `refused: ${r.refused}` : 'error' in m ? `failed: ${m.error}` : '';
    if (device !== 'wasm') {
      const ratio = e && ok ? (e.total / ok.peakRss).toFixed(2) : '';
      out.push(
        `| ${r.model} | ${r.batch} × ${r.length} | ${est} | ${ok ? formatBytes(ok.peakRss) : failed} | ${ratio} |`,
      );
      continue;
    }
    // The check weighs the estimate against the heap less the runtime's 16 MiB: the same as this against the heap.
    const ratio = e && ok ? ((e.total + WASM_RUNTIME) / ok.heapBytes).toFixed(2) : '';
    const [heap, rss] = ok ? [formatBytes(ok.heapBytes), formatBytes(ok.peakRss)] : [failed, ''];
    out.push(`| ${r.model} | ${r.batch} × ${r.length} | ${est} | ${heap} | ${ratio} | ${rss} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

function runChild(config: string): Measured | { error: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', __filename, '--child', config], {
    encoding: 'utf8',
    timeout: 600_000,
    env: { ...process.env, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' },
    maxBuffer: 64 * 2 ** 20,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(TAG));
  if (line) return JSON.parse(line.slice(TAG.length)) as Measured;
  return { error: (r.stderr || r.stdout || `exit ${r.status} ${r.signal ?? ''}`).trim().split('\n').pop()! };
}

/** In the child: validate (as `train` does), train, then report the heap and the peak RSS. */
async function child(file: string): Promise<void> {
  const config = requireCheckedConfig(file);
  let steps = 0;
  await train(config, (e) => {
    if (e.type === 'step') steps = e.step;
    if (e.type === 'error') process.stderr.write(`${e.error.message}\n`);
  });
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8: Uint8Array } }).wasm?.HEAPU8.buffer.byteLength ?? 0;
  const hwm = /VmHWM:\s+(\d+)\s+kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  const peakRss = Math.max(process.memoryUsage().rss, hwm ? Number(hwm[1]) * 1024 : 0);
  process.stdout.write(`${TAG}${JSON.stringify({ heapBytes: heap, peakRss, steps } satisfies Measured)}\n`);
}

/** The bench's GPT-2-small-size Llama as a model folder: config.json, random weights, stories260k's tokenizer. */
function randomLlama(dir: string): string {
  const out = path.join(dir, LLAMA);
  fs.mkdirSync(out);
  const { config, weights } = modelWeights('gpt2-small', gaussian(new Rng(1)));
  fs.writeFileSync(path.join(out, 'config.json'), JSON.stringify(config));
  writeSafetensors(path.join(out, 'model.safetensors'), weights);
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json'])
    fs.copyFileSync(path.join(STORIES_DIR, f), path.join(out, f));
  return out;
}

/** Pre-tokenized rows (ids below stories260k's 512), enough for every setting's two steps. */
function tokens(dir: string): string {
  const rng = new Rng(2);
  const file = path.join(dir, 'train.jsonl');
  const rows = Array.from({ length: 400 }, () =>
    JSON.stringify({ input_ids: Array.from({ length: 512 }, () => 3 + Math.floor(rng.next() * 500)) }),
  );
  fs.writeFileSync(file, `${rows.join('\n')}\n`);
  return file;
}

// ---- --count: memory.ts's PER_LAYER ----

/** Each family at small, distinct dims (so a tensor's size says what it is), at L and 2L layers: the difference of
 *  the live tensors at a training step's peak, over L, is what one layer holds. */
async function count(): Promise<void> {
  await selectBackend('wasm');
  const live = track();
  for (const family of ['llama', 'qwen3', 'gemma3', 'gpt2', 'bert']) {
    // gpt2 and bert need H = heads · head_dim: their q and kv are H wide, counted in h (gpt2's fused qkv as 3 h).
    const flat = family === 'gpt2' || family === 'bert';
    const d = { h: flat ? 60 : 56, l: 3, nh: 6, nkv: flat ? 6 : 2, hd: flat ? 10 : 12, i: 136, v: 300, b: 3, t: 40 };
    const n = d.b * d.t;
    const classes: [string, number, number][] = flat // name, size, multiple of the name's width
      ? [
          ['h', n * d.h, 1],
          ['h', 3 * n * d.h, 3],
          ['i', n * d.i, 1],
          ['s', d.b * d.nh * d.t * d.t, 1],
        ]
      : [
          ['h', n * d.h, 1],
          ['i', n * d.i, 1],
          ['q', n * d.nh * d.hd, 1],
          ['kv', n * d.nkv * d.hd, 1],
        ];
    if (!flat) classes.push(['s', d.b * d.nh * d.t * d.t, 1]);
    const targets = { gpt2: ['c_attn'], bert: ['query', 'value'] }[family] ?? ['q_proj', 'v_proj'];
    const at = (layers: number) => peakSizes(family, { ...d, l: layers }, targets, live);
    const [one, two] = [at(d.l), at(2 * d.l)];
    const per: Record<string, number> = {};
    for (const [k, size, times] of classes)
      per[k] = (per[k] ?? 0) + (times * ((two.get(size) ?? 0) - (one.get(size) ?? 0))) / d.l;
    per.h -= 2 * targets.length; // each adapted Linear's saved input and its gradient: memory.ts adds them itself
    const counts = Object.entries(per).map(([k, v]) => `${k} ${v}`);
    process.stdout.write(`${family}: per layer ${counts.join(', ')}${flat ? ' (q and kv are in h)' : ''}\n`);
  }
}

/** Sizes (numbers) → how many tensors of that size are live at the peak of one training step, less before it. */
function peakSizes(
  family: string,
  d: { h: number; l: number; nh: number; nkv: number; hd: number; i: number; v: number; b: number; t: number },
  targets: string[],
  live: ReturnType<typeof track>,
): Map<number, number> {
  const rng = new Rng(1);
  const normal = gaussian(rng);
  const raw = rawConfig(family, d);
  const weights = new Map<string, HostTensor>();
  for (const [name, shape] of requiredShapes(family, raw)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let k = 0; k < data.length; k++) data[k] = shape.length === 2 ? normal() * 0.02 : 1;
    weights.set(name, { dtype: 'float32', shape, data });
  }
  const fam = FAMILIES[String(raw.model_type)];
  const task = family === 'bert' ? 'sequence-classification' : 'causal-lm';
  const model = createModel(fam, raw, weights, { task, numLabels: 2, normal, dir: family });
  const tr = new Trainables(model, { ...LORA, target_modules: targets }, fam, () => rng.next(), null);
  const params = tr.params();
  const opt = new AdamW(loraplusGroups(params, LORAPLUS), ADAM);
  const ids = Int32Array.from({ length: d.b * d.t }, () => Math.floor(rng.next() * d.v));
  const batch = {
    inputIds: tf.tensor2d(ids, [d.b, d.t], 'int32'),
    attentionMask: tf.ones([d.b, d.t], 'int32') as tf.Tensor2D,
    typeIds: null,
    labels:
      task === 'causal-lm'
        ? null
        : tf.tensor1d(
            Array.from({ length: d.b }, (_, k) => k % 2),
            'int32',
          ),
  };
  const step = () => {
    const { value, grads } = tf.variableGrads(
      () => model.loss(batch, tr),
      params.map((p) => p.variable),
    );
    const deltas = opt.step(new Map(params.map((p) => [p.name, grads[p.variable.name]])), 1);
    tf.dispose([...Object.values(grads), ...deltas.values(), value]);
  };
  step(); // the RoPE tables and masks of this length are made once
  const before = live.histogram();
  live.start();
  step();
  const atPeak = live.stop();
  tf.dispose([batch.inputIds, batch.attentionMask, ...(batch.labels ? [batch.labels] : [])]);
  opt.dispose();
  tr.dispose();
  model.dispose();
  for (const [size, k] of before) atPeak.set(size, (atPeak.get(size) ?? 0) - k);
  return atPeak;
}

/** Follows the wasm backend's allocations: which tensors (by size) are live when the most bytes are. */
function track() {
  const be = tf.backend() as unknown as {
    move: (id: object, v: unknown, shape: number[], dtype: string, rc: number) => void;
    disposeData: (id: object, force?: boolean) => boolean;
    dataIdMap: { has(id: object): boolean };
  };
  const sizes = new Map<object, number>();
  let [bytes, peak, on, snap] = [0, 0, false, new Map<number, number>()];
  const histogram = () => {
    const h = new Map<number, number>();
    for (const s of sizes.values()) h.set(s, (h.get(s) ?? 0) + 1);
    return h;
  };
  const move = be.move.bind(be);
  be.move = (id, v, shape, dtype, rc) => {
    move(id, v, shape, dtype, rc);
    const size = shape.reduce((a, b) => a * b, 1);
    sizes.set(id, size);
    bytes += 4 * size;
    if (on && bytes > peak) [peak, snap] = [bytes, histogram()];
  };
  const dispose = be.disposeData.bind(be);
  be.disposeData = (id, force) => {
    const r = dispose(id, force);
    if (sizes.has(id) && !be.dataIdMap.has(id)) {
      bytes -= 4 * sizes.get(id)!;
      sizes.delete(id);
    }
    return r;
  };
  return {
    histogram,
    start: () => ([on, peak] = [true, bytes]),
    stop: () => ((on = false), snap),
  };
}

function rawConfig(
  family: string,
  d: { h: number; l: number; nh: number; nkv: number; hd: number; i: number; v: number },
): HFConfig {
  if (family === 'gpt2')
    return {
      model_type: 'gpt2',
      n_embd: d.h,
      n_layer: d.l,
      n_head: d.nh,
      n_inner: d.i,
      vocab_size: d.v,
      n_positions: 512,
    };
  if (family === 'bert')
    return {
      model_type: 'bert',
      hidden_size: d.h,
      num_hidden_layers: d.l,
      num_attention_heads: d.nh,
      intermediate_size: d.i,
      vocab_size: d.v,
      max_position_embeddings: 512,
      type_vocab_size: 2,
    };
  const base = {
    hidden_size: d.h,
    intermediate_size: d.i,
    num_hidden_layers: d.l,
    num_attention_heads: d.nh,
    num_key_value_heads: d.nkv,
    head_dim: d.hd,
    vocab_size: d.v,
    max_position_embeddings: 512,
    tie_word_embeddings: true,
  };
  return family === 'gemma3'
    ? { ...base, model_type: 'gemma3_text', query_pre_attn_scalar: d.hd, sliding_window: 16 }
    : { ...base, model_type: family };
}

function requiredShapes(family: string, raw: HFConfig): Map<string, number[]> {
  if (family === 'gpt2') return requiredGpt2Weights(parseGpt2Config(raw, family));
  if (family === 'qwen3') return requiredQwen3Weights(parseQwen3Config(raw, family));
  if (family === 'gemma3') return requiredGemma3Weights(parseGemma3Config(raw, family));
  if (family === 'llama') return requiredLlamaWeights(parseLlamaConfig(raw, family));
  const shapes = requiredBertWeights(parseBertConfig(raw, family));
  const h = raw.hidden_size as number;
  return shapes.set('bert.pooler.dense.weight', [h, h]).set('bert.pooler.dense.bias', [h]);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
