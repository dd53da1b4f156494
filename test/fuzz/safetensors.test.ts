// Damaged checkpoints and adapters through the entry points a user hits (issue 14): real files from ../shared are
// mutated (header length ±k, bytes flipped in the header and its padding, dtype relabels, shape and offset edits,
// duplicate keys, truncations, NaN/Inf, index.json edits, BOMs) and read with readSafetensors, the header-only
// reader, loadModelWeights, inspectModel (behind `loraplus validate`), the full model build and `loraplus info`,
// and loadAdapter + the adapter applied to its model. Each case must give the right result or one clean error;
// every reader must agree, and a success must equal what an independent, strict reading of the bytes gives.
//   LORAPLUS_FUZZ_N=1000 node --import tsx --test test/fuzz/safetensors.test.ts   (prints the counts)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import { adapterWeightsFromSafetensors, loadAdapter, loraScaling, moduleLoraParams } from '../../src/adapters/peft';
import {
  loadModelWeights,
  readSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type HostTensor,
} from '../../src/adapters/safetensors';
import { inspectModel } from '../../src/engine/checks/inspect';
import { Rng } from '../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../src/engine/train/inputs';
import { Trainables } from '../../src/engine/train/trainables';
import { NO_ADAPTERS, type Model } from '../../src/models/types';
import { LoraPlusError } from '../../src/protocol/errors';
import { runCli } from '../helpers/cli';
import { REFERENCE, SHARED, STORIES, useBackend } from '../helpers/shared';
import { cases, failures, fuzz, int, pick } from './harness';
import { differs, keyMutation, mutate, oracle, sameValue, unchanged, type Read } from './safetensors-files';

const GPT2 = path.join(SHARED, 'models', 'tiny-random-gpt2');
const ADAPTER = path.join(REFERENCE, 'lorafa_llama.final_adapter'); // LoRA r 4 on stories260k
const FILES = [
  path.join(STORIES, 'model.safetensors'),
  path.join(GPT2, 'model.safetensors'),
  path.join(REFERENCE, 'loraplus_bert_cls.final_head.safetensors'),
  path.join(ADAPTER, 'adapter_model.safetensors'),
  path.join(REFERENCE, 'chat_logits.safetensors'), // I64 and F32
];
const skip = !FILES.every((f) => fs.existsSync(f)) && 'needs ../shared';

let root: string;
before(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'loraplus-fuzz-st-'));
});
after(() => fs.rmSync(root, { recursive: true, force: true }));
let made = 0;
/** A fresh folder per case, removed when the case ends (so the config checks' cache never sees a stale file). */
const caseDir = (): string => fs.mkdtempSync(path.join(root, `c${made++}-`));

/** A raw error: the harness counts it as "anything else". */
function wrong(why: string): never {
  throw new Error(why);
}
/** 'ok', an error's code, or what a raw error says. */
const codeOf = (err: unknown): string =>
  err === null ? 'ok' : err instanceof LoraPlusError ? err.code : `raw ${String(err)}`;

// ---- the properties ---------------------------------------------------------------------------------------------

describe('fuzz: damaged safetensors, index and adapter files', { skip }, () => {
  before(() => useBackend());

  it('one file: readSafetensors and the header-only reader agree with a strict reading of the bytes', async () => {
    const originals = FILES.map((f) => ({ file: f, buf: fs.readFileSync(f) }));
    const report = await fuzz({
      n: cases(150),
      make: (r) => {
        const o = pick(r, originals);
        const m = mutate(r, o.buf);
        return { input: { ...m, from: o.buf }, label: `${path.basename(o.file)}: ${m.label}` };
      },
      run: (m) => {
        const dir = caseDir();
        const file = path.join(dir, 'x.safetensors');
        fs.writeFileSync(file, m.buf);
        try {
          const want = oracle(m.buf);
          let got: ReturnType<typeof readSafetensors> | null = null;
          let error: unknown = null;
          try {
            got = readSafetensors(file);
          } catch (err) {
            error = err;
          }
          let header: unknown = null;
          try {
            readSafetensorsHeader(file);
          } catch (err) {
            header = err;
          }
          // The header reader sees everything but the values: only an I64 outside int32 may pass it alone.
          if (codeOf(header) !== codeOf(error) && codeOf(error) !== 'safetensors/int-overflow')
            wrong(`header-only reader: ${codeOf(header)}, full reader: ${codeOf(error)}`);
          if (error) {
            if (typeof want !== 'string' && codeOf(error) !== 'safetensors/int-overflow')
              wrong(`refused a valid file: ${String(error)}`);
            throw error;
          }
          if (typeof want === 'string') wrong(`accepted an invalid file (${want})`);
          const orig = oracle(m.from) as Map<string, Read>;
          const why = differs(got!.tensors, want) ?? (m.data ? null : unchanged(got!.tensors, want, orig));
          if (why) wrong(why);
          return got;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
      where: (e) => /x\.safetensors$/.test(e.info.file ?? '') && Boolean(e.info.hint),
    });
    assert.equal(report.counts['anything else'], 0, failures(report));
  });

  it('a model folder: loadModelWeights, inspectModel, the model build and `loraplus info` agree', async () => {
    const folders = [STORIES, GPT2].map((dir) => {
      const model = buildModel(openModelFolder(dir), 'causal-lm', 0, new Rng(0));
      const logits = probe(model);
      model.dispose();
      return { dir, buf: fs.readFileSync(path.join(dir, 'model.safetensors')), logits };
    });
    const report = await fuzz({
      n: cases(40),
      make: (r, seed) => {
        const f = pick(r, folders);
        const m = r() < 0.25 ? keyMutation(r, f.buf) : mutate(r, f.buf);
        return { input: { ...m, f, cli: seed % 8 === 0 }, label: `${path.basename(f.dir)}: ${m.label}` };
      },
      run: async ({ buf, f, cli }) => {
        const dir = caseDir();
        for (const name of ['config.json', 'tokenizer.json'])
          fs.copyFileSync(path.join(f.dir, name), path.join(dir, name));
        fs.writeFileSync(path.join(dir, 'model.safetensors'), buf);
        const tensors = tf.memory().numTensors;
        try {
          let loadErr: unknown = null;
          try {
            loadModelWeights(dir);
          } catch (err) {
            loadErr = err;
          }
          const checks = inspectModel(dir);
          let built: Model | null = null;
          let buildErr: unknown = null;
          try {
            built = buildModel(openModelFolder(dir), 'causal-lm', 0, new Rng(0));
          } catch (err) {
            buildErr = err;
          }
          const checkCode = checks.ok ? 'ok' : checks.problem.code;
          if (loadErr && (checkCode !== codeOf(loadErr) || codeOf(buildErr) !== codeOf(loadErr)))
            wrong(`loader ${codeOf(loadErr)}, checks ${checkCode}, build ${codeOf(buildErr)}`);
          if (!checks.ok && codeOf(buildErr) !== checkCode) wrong(`checks ${checkCode}, build ${codeOf(buildErr)}`);
          if (cli) {
            const out = await runCli(['info', dir, '--device', 'wasm', '--json']);
            const expected = buildErr ? `error: ${(buildErr as Error).message}` : '';
            if (out.code !== (buildErr ? 1 : 0) || out.err !== expected) wrong(`info: ${out.code} ${out.err}`);
          }
          if (buildErr) throw buildErr;
          try {
            const want = oracle(buf);
            if (typeof want === 'string') wrong(`built a model from an invalid file (${want})`);
            const why = differs(loadModelWeights(dir), want as Map<string, Read>);
            if (why) wrong(why);
            const logits = probe(built!);
            if (!differs(loadModelWeights(dir), oracle(f.buf) as Map<string, Read>)) {
              if (!logits.every((v, i) => sameValue(v, f.logits[i]))) wrong('same weights, other logits');
            } else if (!logits.every(Number.isFinite)) wrong('NaN/Inf logits from weights that loaded');
          } finally {
            built!.dispose();
          }
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
          if (tf.memory().numTensors !== tensors) wrong(`${tf.memory().numTensors - tensors} tensors leaked`);
        }
      },
      where: (e) => (e.info.file ?? '').startsWith(root) && Boolean(e.info.hint),
      timeoutMs: 30_000,
    });
    assert.equal(report.counts['anything else'], 0, failures(report));
  });

  it('a sharded folder: model.safetensors.index.json edits get one answer from the loader and the checks', async () => {
    const tensors = [...readSafetensors(path.join(STORIES, 'model.safetensors')).tensors];
    const shards = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
    const weightMap = Object.fromEntries(tensors.map(([k], i) => [k, shards[i < 20 ? 0 : 1]]));
    const report = await fuzz({
      n: cases(60),
      make: (r) => {
        const keys = Object.keys(weightMap);
        const key = pick(r, keys);
        const value = pick(r, [
          '',
          7,
          null,
          {},
          'sub',
          '../x.safetensors',
          '/etc/passwd',
          'gone.safetensors',
          shards[0],
          shards[1],
        ]);
        const index = JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap });
        const edits: [string, () => string][] = [
          ['value', () => JSON.stringify({ weight_map: { ...weightMap, [key]: value } })],
          [
            'delete',
            () =>
              JSON.stringify({
                weight_map: Object.fromEntries(keys.filter((k) => k !== key).map((k) => [k, weightMap[k]])),
              }),
          ],
          ['add', () => JSON.stringify({ weight_map: { ...weightMap, 'extra.weight': value } })],
          ['duplicate', () => index.replace('"weight_map":{', `"weight_map":{"${key}":${JSON.stringify(value)},`)],
          ['bom', () => `\uFEFF${index}`],
          ['truncate', () => index.slice(0, int(r, 0, index.length - 1))],
          ['weight_map', () => JSON.stringify({ weight_map: pick(r, [[], null, {}, 'x', weightMap]) })],
          ['array', () => JSON.stringify([weightMap])],
          ['harmless', () => JSON.stringify({ format: 'pt', weight_map: weightMap, extra: [1] })],
        ];
        const [name, edit] = pick(r, edits);
        return { input: edit(), label: `${name} ${key} → ${JSON.stringify(value)}` };
      },
      run: (indexText) => {
        const dir = caseDir();
        try {
          fs.copyFileSync(path.join(STORIES, 'config.json'), path.join(dir, 'config.json'));
          fs.mkdirSync(path.join(dir, 'sub'));
          for (const s of shards) {
            const mine = tensors.filter(([k]) => weightMap[k] === s);
            writeSafetensors(path.join(dir, s), new Map<string, HostTensor>(mine));
          }
          fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), indexText);
          let loaded: Map<string, HostTensor> | null = null;
          let error: unknown = null;
          try {
            loaded = loadModelWeights(dir);
          } catch (err) {
            error = err;
          }
          const checks = inspectModel(dir);
          if ((checks.ok ? 'ok' : checks.problem.code) !== codeOf(error))
            wrong(`loader ${codeOf(error)}, checks ${checks.ok ? 'ok' : checks.problem.code}`);
          if (error) throw error;
          const original = new Map(tensors);
          for (const [k, t] of loaded!) {
            const o = original.get(k);
            if (!o || o.shape.join() !== t.shape.join() || !t.data.every((v, i) => sameValue(v, o.data[i])))
              wrong(`'${k}' differs from the original`);
          }
          return loaded;
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
      where: (e) => (e.info.file ?? '').startsWith(root) && Boolean(e.info.hint),
    });
    assert.equal(report.counts['anything else'], 0, failures(report));
  });

  it('an adapter: loadAdapter (and a bare init file) and the adapter applied to its model', async () => {
    const model = buildModel(openModelFolder(STORIES), 'causal-lm', 0, new Rng(0));
    const folder = openModelFolder(STORIES);
    const weightsBuf = fs.readFileSync(path.join(ADAPTER, 'adapter_model.safetensors'));
    const config = JSON.parse(fs.readFileSync(path.join(ADAPTER, 'adapter_config.json'), 'utf8'));
    const settings = { ...config, target_modules: null, modules_to_save: null }; // a bare init file: the run's lora
    try {
      const report = await fuzz({
        n: cases(60),
        make: (r, seed) => {
          if (r() < 0.3) {
            const key = pick(r, ['r', 'lora_alpha', 'rank_pattern', 'alpha_pattern', 'use_rslora', 'target_modules']);
            const value = pick(r, [0, -1, 2.5, 4, 8, '4', null, true, { q_proj: pick(r, [0, -2, 1.5, 4, 8]) }, {}]);
            return {
              input: { config: { ...config, [key]: value }, buf: weightsBuf, data: false, bare: seed % 3 === 0 },
              label: `config ${key} = ${JSON.stringify(value)}`,
            };
          }
          const m = mutate(r, weightsBuf);
          return { input: { config, buf: m.buf, data: m.data, bare: seed % 3 === 0 }, label: m.label };
        },
        run: ({ config: c, buf, bare }) => {
          const dir = caseDir();
          const file = path.join(dir, 'adapter_model.safetensors');
          const tensors = tf.memory().numTensors;
          try {
            fs.writeFileSync(path.join(dir, 'adapter_config.json'), JSON.stringify(c));
            fs.writeFileSync(file, buf);
            const adapter = bare ? null : loadAdapter(dir);
            const weights = adapter ?? adapterWeightsFromSafetensors(readSafetensors(file).tensors, file);
            const want = oracle(buf);
            if (typeof want === 'string') wrong(`accepted an invalid file (${want})`);
            for (const [module, { A, B }] of weights.lora) {
              if (adapter && !Number.isFinite(loraScaling(moduleLoraParams(adapter.config, module))))
                wrong(`${module}: scaling ${loraScaling(moduleLoraParams(adapter.config, module))}`);
              for (const [half, t] of [
                ['A', A],
                ['B', B],
              ] as const) {
                const w = want.get(`base_model.model.${module}.lora_${half}.weight`);
                if (!w || differs(new Map([['t', t]]), new Map([['t', w]]))) wrong(`${module} lora_${half} misread`);
                if (!t.data.every(Number.isFinite)) wrong(`${module} lora_${half} holds NaN/Inf`);
              }
            }
            const applied = adapter
              ? Trainables.fromAdapter(model, folder.family, adapter)
              : new Trainables(model, settings, folder.family, Math.random, weights);
            applied.dispose();
            return weights;
          } finally {
            fs.rmSync(dir, { recursive: true, force: true });
            if (tf.memory().numTensors !== tensors) wrong(`${tf.memory().numTensors - tensors} tensors leaked`);
          }
        },
        where: (e) => (e.info.file ?? '').startsWith(root) && Boolean(e.info.hint),
      });
      assert.equal(report.counts['anything else'], 0, failures(report));
    } finally {
      model.dispose();
    }
  });
});

/** The logits of a fixed 8-token batch, as numbers. */
function probe(model: Model): number[] {
  return tf.tidy(() => {
    const ids = tf.tensor2d([[1, 5, 9, 13, 17, 21, 25, 29]], undefined, 'int32');
    const batch = { inputIds: ids, attentionMask: tf.onesLike(ids), typeIds: null, labels: null };
    return Array.from(model.logits(batch, NO_ADAPTERS).dataSync());
  });
}
