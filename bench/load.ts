// `npm run bench:load` (or `npm run bench -- --load-1b`): how much memory loading a 1B-class checkpoint takes. It
// writes a Llama-3.2-1B-shaped model with random weights to a temp folder, as bf16 safetensors shards with a
// model.safetensors.index.json (as the Hub ships large models), then loads it through the engine's own path
// (openModelFolder + buildModel) in a fresh child process (load-worker.ts) that records its peak RSS and the peak of
// host-side weight copies, and removes the folder. With --baseline it also loads it the way buildModel did before it
// released host copies (createModel over the whole loadModelWeights map), for comparison.
//
// Backend: tfjs's cpu backend, because the weights cannot fit wasm: 1.24 B float32 values are 4.6 GiB, and wasm32's
// heap stops at 4 GiB. (The engine keeps every weight in float32.)
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseLlamaConfig } from '../src/models/llama/config';
import { requiredLlamaWeights } from '../src/models/llama/weights';
import type { HFConfig } from '../src/models/types';
import type { LoadPath, LoadResult } from './load-worker';
import { round1, runTagged } from './rows';

/** meta-llama/Llama-3.2-1B's config.json (16 layers, hidden 2048, 32 heads / 8 KV heads, MLP 8192, vocab 128256,
 *  tied); the special ids are those of the tokenizer copied beside it (tiny-random-llama3's). */
export const LLAMA_1B_CONFIG: HFConfig = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_size: 2048,
  intermediate_size: 8192,
  num_hidden_layers: 16,
  num_attention_heads: 32,
  num_key_value_heads: 8,
  head_dim: 64,
  vocab_size: 128256,
  max_position_embeddings: 131072,
  rms_norm_eps: 1e-5,
  rope_theta: 500000,
  rope_scaling: {
    factor: 32,
    high_freq_factor: 4,
    low_freq_factor: 1,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  hidden_act: 'silu',
  tie_word_embeddings: true,
  initializer_range: 0.02,
  bos_token_id: 0,
  eos_token_id: 4,
  torch_dtype: 'bfloat16',
};

export interface LoadOptions {
  baseline: boolean; // also load it without releasing host copies (as buildModel did before)
  shardMB: number; // largest shard (save_pretrained's max_shard_size)
  keep: string | null; // write into this folder and keep it (default: a temp folder, removed after)
}

const TOKENIZER_FROM = path.resolve(__dirname, '..', '..', 'shared', 'models', 'tiny-random-llama3');
const log = (s: string) => process.stderr.write(`${s}\n`);
const GB = 1e9;

export async function loadBench(o: LoadOptions): Promise<void> {
  const shapes = requiredLlamaWeights(parseLlamaConfig(LLAMA_1B_CONFIG, '<bench>'));
  const params = [...shapes.values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  const diskBytes = params * 2;
  const root = o.keep ?? os.tmpdir();
  fs.mkdirSync(root, { recursive: true });
  const free = freeDisk(root);
  if (free !== null && free < diskBytes + 1 * GB) {
    process.stdout.write(
      `load bench skipped: ${(free / GB).toFixed(1)} GB free in ${root}, and the checkpoint needs ` +
        `${(diskBytes / GB).toFixed(2)} GB (+1 GB to spare)\n`,
    );
    return;
  }
  const avail = memAvailable();
  const dir = o.keep ?? fs.mkdtempSync(path.join(root, 'loraplus-load-1b-'));
  const cleanup = () => {
    if (!o.keep) fs.rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = () => {
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal).once('SIGTERM', onSignal);
  const results: LoadResult[] = [];
  let shards: number[] = [];
  try {
    log(`bench: writing a Llama-3.2-1B-shaped checkpoint (${(params / 1e9).toFixed(3)} B params, bf16) to ${dir} ...`);
    const w0 = performance.now();
    shards = writeCheckpoint(dir, shapes, o.shardMB * 2 ** 20);
    log(
      `bench:   ${shards.length} shards, ${(diskBytes / GB).toFixed(2)} GB in ${round1((performance.now() - w0) / 1000)} s`,
    );
    const paths: LoadPath[] = o.baseline ? ['engine', 'unreleased'] : ['engine'];
    for (const p of paths) {
      // Each load needs its float32 copy, twice that without release; refuse rather than push the machine to OOM.
      const need = params * 4 * (p === 'engine' ? 1.4 : 2.3);
      const now = memAvailable();
      if (now !== null && now < need) {
        log(
          `bench: skipping the '${p}' load: ${(now / GB).toFixed(1)} GB available, it needs ≈${(need / GB).toFixed(1)}`,
        );
        continue;
      }
      log(`bench: loading it (${p}) on the cpu backend ...`);
      // --expose-gc: the worker collects once, after measuring, to tell garbage from held copies.
      const args = [...process.execArgv, '--expose-gc', __filename, '--load-worker', dir, '--load-path', p];
      const r = await runTagged(process.execPath, args, process.env);
      if ('error' in r) log(`bench:   ${r.error}`);
      else {
        const res = r.result as LoadResult;
        results.push(res);
        log(`bench:   ${res.loadS} s, peak RSS ${res.peakRssMB} MB, peak host copies ${res.peakHostMB} MB`);
      }
    }
  } finally {
    cleanup();
    process.removeListener('SIGINT', onSignal).removeListener('SIGTERM', onSignal);
  }
  report(results, { params, diskBytes, shards, avail, dir: o.keep ? dir : null });
}

function report(
  results: LoadResult[],
  m: { params: number; diskBytes: number; shards: number[]; avail: number | null; dir: string | null },
): void {
  const out = (s: string) => process.stdout.write(s);
  const f32 = (m.params * 4) / 2 ** 20;
  out(
    `\nLlama-3.2-1B shape, random weights: ${(m.params / 1e9).toFixed(3)} B parameters; ` +
      `${m.shards.length} bf16 shards (${m.shards.map((b) => (b / 2 ** 20).toFixed(0)).join(' + ')} MB) ` +
      `+ model.safetensors.index.json; float32 in memory: ${f32.toFixed(0)} MB. ` +
      `${os.cpus().length} × ${os.cpus()[0]?.model.trim()}, Node ${process.versions.node}` +
      `${m.avail === null ? '' : `, ${(m.avail / 2 ** 30).toFixed(1)} GiB available`}. ` +
      "Backend: cpu (4.6 GiB of float32 weights cannot fit wasm32's 4 GiB heap).\n\n",
  );
  const head = [
    'load path',
    'load s',
    'peak RSS MB',
    'peak host copies MB',
    'host copies once built MB',
    'backend MB',
    'peak RSS ÷ float32 model',
  ];
  const rows = results.map((r) => [
    r.path === 'engine' ? 'openModelFolder + buildModel (engine)' : 'createModel(loadModelWeights) (unreleased)',
    r.loadS.toFixed(1),
    r.peakRssMB.toFixed(0),
    r.peakHostMB.toFixed(0),
    r.hostBuiltMB.toFixed(0),
    r.backendMB.toFixed(0),
    `${(r.peakRssMB / f32).toFixed(2)}×`,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    `| ${cells.map((c, i) => (i ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join(' | ')} |`;
  out(
    [
      fmt(head),
      `|${widths.map((w, i) => (i ? `${'-'.repeat(w + 1)}:` : '-'.repeat(w + 2))).join('|')}|`,
      ...rows.map(fmt),
    ].join('\n'),
  );
  out(
    '\n\npeak RSS: VmHWM of the loading process (Node and tfjs included, ≈50 MB). host copies: ArrayBuffers the ' +
      'backend does not hold (process.memoryUsage().arrayBuffers − tf.memory().numBytes: shard buffers, the ' +
      'float32 host tensors, and garbage not yet collected), sampled at every shard read and every tensor the ' +
      'backend makes. backend: tf.memory() once built.\n',
  );
  for (const r of results) {
    out(`\n${r.path}: ${r.trace}\n`);
  }
  if (m.dir) out(`\nThe checkpoint was kept in ${m.dir}.\n`);
}

/** Writes config.json, the tokenizer and the weights as bf16 shards of at most `maxShard` bytes with
 *  model.safetensors.index.json, in state-dict order (save_pretrained's layout). Returns each shard's size. */
function writeCheckpoint(dir: string, shapes: Map<string, number[]>, maxShard: number): number[] {
  fs.writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(LLAMA_1B_CONFIG, null, 2)}\n`);
  for (const f of ['tokenizer.json', 'tokenizer_config.json'])
    fs.copyFileSync(path.join(TOKENIZER_FROM, f), path.join(dir, f));
  const groups: [string, number[]][][] = [[]];
  let size = 0;
  for (const entry of shapes) {
    const bytes = entry[1].reduce((a, b) => a * b, 1) * 2;
    if (size + bytes > maxShard && groups[groups.length - 1].length) {
      groups.push([]);
      size = 0;
    }
    groups[groups.length - 1].push(entry);
    size += bytes;
  }
  const weightMap: Record<string, string> = {};
  const sizes: number[] = [];
  let total = 0;
  const rand = xorshift(1234);
  groups.forEach((g, i) => {
    const name = `model-${String(i + 1).padStart(5, '0')}-of-${String(groups.length).padStart(5, '0')}.safetensors`;
    sizes.push(writeShard(path.join(dir, name), g, rand));
    for (const [k, sh] of g) {
      weightMap[k] = name;
      total += sh.reduce((a, b) => a * b, 1) * 2;
    }
  });
  const index = { metadata: { total_size: total }, weight_map: weightMap };
  fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), `${JSON.stringify(index, null, 2)}\n`);
  return sizes;
}

/** One bf16 shard, written a chunk at a time (this process never holds a whole tensor): matrices uniform in
 *  ±0.0346 (std 0.02, HF's init range), norm weights 1. */
function writeShard(file: string, tensors: [string, number[]][], rand: () => number): number {
  let offset = 0;
  const parts = tensors.map(([name, shape]) => {
    const end = offset + shape.reduce((a, b) => a * b, 1) * 2;
    const part = `${JSON.stringify(name)}:${JSON.stringify({ dtype: 'BF16', shape, data_offsets: [offset, end] })}`;
    offset = end;
    return part;
  });
  let header = Buffer.from(`{${parts.join(',')},"__metadata__":{"format":"pt"}}`, 'utf8');
  header = Buffer.concat([header, Buffer.alloc((8 - (header.length % 8)) % 8, 0x20)]);
  const fd = fs.openSync(file, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(header.length));
    fs.writeSync(fd, len);
    fs.writeSync(fd, header);
    const chunk = new Uint16Array(1 << 22);
    const f = new Float32Array(1);
    const bits = new Uint32Array(f.buffer);
    for (const [, shape] of tensors) {
      let left = shape.reduce((a, b) => a * b, 1);
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        if (shape.length === 1)
          chunk.fill(0x3f80, 0, n); // 1.0
        else
          for (let i = 0; i < n; i++) {
            f[0] = (rand() - 0.5) * 0.0693;
            chunk[i] = bits[0] >>> 16;
          }
        fs.writeSync(fd, new Uint8Array(chunk.buffer, 0, n * 2));
        left -= n;
      }
    }
  } finally {
    fs.closeSync(fd);
  }
  return 8 + header.length + offset;
}

/** A fast uniform [0, 1) generator: writing 1.24 B values must not take minutes. */
function xorshift(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function freeDisk(dir: string): number | null {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return null;
  }
}

/** MemAvailable from /proc/meminfo, in bytes. */
function memAvailable(): number | null {
  try {
    const m = /MemAvailable:\s+(\d+) kB/.exec(fs.readFileSync('/proc/meminfo', 'utf8'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}
