// The config checks against the files a config names (check-config.ts) and what they read (inspect.ts): module
// names from safetensors headers must be the module paths of the model the engine builds, without reading weights;
// broken model folders and data files are problems at the key that names them, not exceptions.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadModelWeights, readSafetensors, writeSafetensors } from '../../../src/adapters/safetensors';
import type { LocatedProblem } from '../../../src/config/load';
import { checkConfigText, requireCheckedConfig } from '../../../src/engine/checks/config';
import { inspectData, inspectModel, type ModelSummary } from '../../../src/engine/checks/inspect';
import { checkOutputFolder, ensureDir, folderError } from '../../../src/engine/checks/paths';
import { autoBackend } from '../../../src/engine/checks/sizes';
import { Rng } from '../../../src/engine/data/rng';
import { buildModel, openModelFolder } from '../../../src/engine/train/inputs';
import { LoraPlusError } from '../../../src/protocol/errors';
import { SHARED, SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const MODELS = ['stories260k', 'tiny-random-bert', 'tiny-random-gpt2', 'tiny-random-roberta'].map((m) =>
  path.join(SHARED, 'models', m),
);
const skip = !MODELS.every((m) => fs.existsSync(m)) && 'needs ../shared (checkpoints and SST-2)';
const DEV = path.join(SST2, 'dev.tsv');

let dir: string;
before(() => {
  dir = tempDir('loraplus-check-');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

function summary(model: string): ModelSummary {
  const r = inspectModel(model);
  assert.ok(r.ok, JSON.stringify(r));
  return r.value;
}

/** Problems of a config text whose relative paths resolve against the temp folder. */
function check(text: string): LocatedProblem[] {
  return checkConfigText(text, dir).problems;
}

/** A model folder in the temp dir: stories260k's config.json plus `files` (name → content). */
function modelFolder(
  name: string,
  files: Record<string, string | Buffer>,
  config: object = JSON.parse(fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8')),
): string {
  const d = path.join(dir, name);
  fs.mkdirSync(d, { recursive: true });
  fs.writeFileSync(path.join(d, 'config.json'), JSON.stringify(config));
  for (const [f, content] of Object.entries(files)) fs.writeFileSync(path.join(d, f), content);
  return d;
}

describe('inspectModel: module names without the weights', { skip }, () => {
  before(() => useBackend());

  for (const model of MODELS) {
    it(`${path.basename(model)}: the Linear layers, sizes and positions of the model the engine builds`, () => {
      const s = summary(model);
      const folder = openModelFolder(model);
      const task = folder.family.tasks[0];
      const built = buildModel(folder, task, task === 'causal-lm' ? 0 : 2, new Rng(0));
      try {
        // The checkpoint may lack the head (tied lm_head, a fresh score): the checks add the family's heads.
        const heads = folder.family.outputHeads;
        assert.deepEqual(
          [...built.linears.keys()].filter((n) => !heads.includes(n)).sort(),
          [...s.linears.keys()].filter((n) => !heads.includes(n)).sort(),
        );
        for (const [name, l] of built.linears) {
          const dims = s.linears.get(name);
          if (dims)
            assert.deepEqual(
              [...dims].sort((a, b) => a - b),
              [l.inFeatures, l.outFeatures].sort((a, b) => a - b),
              name,
            );
        }
        assert.equal(s.positions?.max, built.maxPositions);
        assert.ok(s.embeddings.length >= 1 && s.embeddings.every((e) => !built.linears.has(e)));
      } finally {
        built.dispose();
      }
    });
  }

  it('reads only the header: NaN weights still give the names (building the model fails on them)', () => {
    const file = path.join(STORIES, 'model.safetensors');
    const whole = Buffer.from(fs.readFileSync(file));
    whole.fill(0xff, 8 + Number(whole.readBigUInt64LE(0))); // every weight a NaN
    const tokenizer = fs.readFileSync(path.join(STORIES, 'tokenizer.json'));
    const d = modelFolder('nan-weights', { 'model.safetensors': whole, 'tokenizer.json': tokenizer });
    assert.deepEqual([...summary(d).linears], [...summary(STORIES).linears]);
    assert.throws(() => buildModel(openModelFolder(d), 'causal-lm', 0, new Rng(0)), /NaN\/Inf/);
  });

  it('a file cut after its header is refused by the checks as by the loader (one header reader)', () => {
    const file = path.join(STORIES, 'model.safetensors');
    const whole = fs.readFileSync(file);
    const headerOnly = whole.subarray(0, 8 + Number(whole.readBigUInt64LE(0)));
    const d = modelFolder('header-only', { 'model.safetensors': headerOnly });
    const r = inspectModel(d);
    assert.ok(!r.ok && r.problem.code === 'safetensors/truncated', JSON.stringify(r));
    assert.match(r.problem.message, /model\.safetensors: .*run past the data section/);
    assert.throws(() => loadModelWeights(d), /run past the data section/);
  });

  it('sharded checkpoints: the names from every shard in the index', () => {
    const tensors = [...readSafetensors(path.join(STORIES, 'model.safetensors')).tensors];
    const half = Math.floor(tensors.length / 2);
    const d = modelFolder('sharded', {});
    const shards = {
      'model-00001-of-00002.safetensors': tensors.slice(0, half),
      'model-00002-of-00002.safetensors': tensors.slice(half),
    };
    const weightMap: Record<string, string> = {};
    for (const [shard, part] of Object.entries(shards)) {
      writeSafetensors(path.join(d, shard), new Map(part));
      for (const [k] of part) weightMap[k] = shard;
    }
    fs.writeFileSync(
      path.join(d, 'model.safetensors.index.json'),
      JSON.stringify({ metadata: {}, weight_map: weightMap }),
    );
    assert.deepEqual([...summary(d).linears].sort(), [...summary(STORIES).linears].sort());
  });
});

describe('model folders that cannot be trained are problems at `model`', { skip }, () => {
  const problemAtModel = (folder: string): LocatedProblem => {
    const ps = check(`model: ${folder}\ndata:\n  train: ${DEV}\n  text_field: sentence\n`).filter(
      (p) => p.yamlPath === 'model',
    );
    assert.equal(ps.length, 1, JSON.stringify(ps));
    assert.deepEqual([ps[0].severity, ps[0].line, ps[0].col], ['error', 1, 8]);
    return ps[0];
  };

  it('no weights, PyTorch weights, an adapter folder, a Git LFS pointer', () => {
    assert.equal(problemAtModel(modelFolder('empty', {})).code, 'weights/not-found');
    const torch = problemAtModel(modelFolder('torch', { 'pytorch_model.bin': '' }));
    assert.equal(torch.code, 'weights/pytorch-format');
    assert.match(torch.hint ?? '', /safe_serialization=True/);
    assert.equal(problemAtModel(modelFolder('adapter', { 'adapter_config.json': '{}' })).code, 'weights/is-adapter');
    const lfs = problemAtModel(
      modelFolder('lfs', { 'model.safetensors': 'version https://git-lfs.github.com/spec/v1\noid sha256:0\nsize 1\n' }),
    );
    assert.match(lfs.message, /Git LFS pointer/);
  });

  it('an unsupported model_type or an unsupported config names what is supported', () => {
    const p = problemAtModel(modelFolder('t5', {}, { model_type: 't5' }));
    assert.equal(p.code, 'model/unsupported');
    assert.match(p.hint ?? '', /llama.*bert.*gpt2/);
    const rope = JSON.parse(fs.readFileSync(path.join(STORIES, 'config.json'), 'utf8'));
    const q = problemAtModel(
      modelFolder(
        'rope',
        { 'model.safetensors': fs.readFileSync(path.join(STORIES, 'model.safetensors')) },
        { ...rope, rope_scaling: { rope_type: 'yarn' } },
      ),
    );
    assert.match(q.message, /rope_scaling 'yarn' is not supported/);
  });
});

describe('the model decides task, modules, rank and max_length', { skip }, () => {
  const BERT = MODELS[1];

  it('a task the model has no head for; the fix sets or adds task', () => {
    const unwritten = check(`model: ${BERT}\ndata:\n  train: ${DEV}\n  text_field: sentence\n  max_length: 64\n`);
    assert.deepEqual(
      unwritten.map((p) => [p.code, p.yamlPath, p.fix?.kind]),
      [['config/task-unsupported', 'model', 'addKey']],
    );
    const written = check(
      `model: ${BERT}\ntask: causal-lm\ndata:\n  train: ${DEV}\n  text_field: sentence\n  max_length: 64\n`,
    );
    assert.deepEqual(
      written.map((p) => [p.code, p.yamlPath, p.line, p.col, p.fix]),
      [
        [
          'config/task-unsupported',
          'task',
          2,
          7,
          { kind: 'setValue', title: 'Set task to sequence-classification', value: 'sequence-classification' },
        ],
      ],
    );
  });

  it("target_modules: did-you-mean from the model's names; the default targets need no check; all-linear none", () => {
    const base = `model: ${STORIES}\ndata:\n  train: ${DEV}\n  text_field: sentence\nlora:\n`;
    const [p] = check(`${base}  target_modules:\n    - q_proj\n    - gate_prj\n`);
    assert.deepEqual(
      [p.code, p.yamlPath, p.line, p.col, p.message],
      [
        'config/unknown-module',
        'lora.target_modules[1]',
        8,
        7,
        "no Linear layer of this llama model is named 'gate_prj'; did you mean 'gate_proj'?",
      ],
    );
    assert.match(p.hint ?? '', /down_proj, gate_proj, up_proj, k_proj, o_proj, q_proj, v_proj, lm_head/);
    assert.deepEqual(check(`${base}  target_modules: all-linear\n`), []);
    assert.deepEqual(check(`${base}  r: 8\n`), []);
    assert.deepEqual(check(`${base}  target_modules: [self_attn.q_proj, lm_head]\n`), []); // longer suffixes and the tied head
  });

  it('max_length past a learned position table is an error, past rotary positions a warning', () => {
    const text = (model: string, extra = '') =>
      `model: ${model}\ntask: sequence-classification\ndata:\n  train: ${DEV}\n  text_field: sentence\n${extra}`;
    const [bert] = check(text(BERT, '  max_length: 67\n'));
    assert.deepEqual(
      [bert.severity, bert.code, bert.line, bert.col, bert.fix],
      [
        'error',
        'config/max-length-beyond-positions',
        6,
        15,
        { kind: 'setValue', title: 'Set max_length to 66', value: 66 },
      ],
    );
    assert.deepEqual(check(text(BERT, '  max_length: 66\n')), []);
    const [llama] = check(text(STORIES, '  max_length: 513\n'));
    assert.equal(llama.severity, 'warning');
  });
});

describe('data files decide the fields and the batch', { skip }, () => {
  const cfg = (train: string, extra = '') =>
    `model: ${STORIES}\ntask: sequence-classification\ndata:\n  train: ${train}\n  text_field: sentence\n${extra}`;

  it('pre-tokenized rows need no text field; a .txt file has only `text`', () => {
    const jsonl = path.join(dir, 'ids.jsonl');
    fs.writeFileSync(jsonl, '{"input_ids": [1, 2, 3], "label": 0}\n{"input_ids": [1, 4], "label": 1}\n');
    assert.deepEqual(check(cfg(jsonl, '  max_length: 8\ntraining:\n  batch_size: 2\n')), []);
    const txt = path.join(dir, 'lines.txt');
    fs.writeFileSync(txt, 'one\ntwo\n');
    const codes = check(`model: ${STORIES}\ndata:\n  train: ${txt}\n  text_field: sentence\n`).map((p) => [
      p.code,
      p.message,
    ]);
    assert.deepEqual(codes, [
      ['config/missing-column', "the training data has no column 'sentence'; did you mean 'text'?"],
    ]);
  });

  it("an unreadable or malformed data file is a problem at its key, with the file's line", () => {
    const parquet = path.join(dir, 'train.parquet');
    fs.writeFileSync(parquet, 'PAR1');
    assert.deepEqual(
      check(cfg(parquet)).map((p) => [p.code, p.yamlPath, p.line]),
      [['data/unsupported-format', 'data.train', 4]],
    );
    const tsv = path.join(dir, 'bad.tsv');
    fs.writeFileSync(tsv, 'sentence\tlabel\ngood\t1\nbad\n');
    const [p] = check(cfg(tsv));
    assert.deepEqual([p.code, p.yamlPath], ['data/malformed', 'data.train']);
    assert.ok(p.message.startsWith(`${tsv}:3: expected 2 tab-separated columns`), p.message);
  });

  it('one optimiser step larger than the data is a warning at what sets it', () => {
    const [p] = check(cfg(DEV, 'training:\n  batch_size: 16\n  gradient_accumulation_steps: 64\n'));
    assert.deepEqual(
      [p.severity, p.code, p.yamlPath],
      ['warning', 'config/batch-larger-than-data', 'training.batch_size'],
    );
    assert.match(p.message, /16 × 64 = 1024 examples, more than the 872 training examples/);
    assert.match(
      check(cfg(DEV, '  max_train_samples: 4\n'))[0].message,
      /8 × 1 = 8 examples, more than the 4 training examples/,
    );
    assert.deepEqual(check(cfg(DEV, '  max_train_samples: 10\n')), []);
    // 872 − 436 held out (one pass of 436 examples is too large for wasm's memory: config/memory-too-large)
    const half = check(cfg(DEV, '  eval_fraction: 0.5\ntraining:\n  batch_size: 436\n'));
    assert.deepEqual(
      half.map((p) => p.code).filter((c) => c !== 'config/memory-too-large'),
      [],
    );
  });

  it('requireCheckedConfig refuses a config the files rule out, listing every error', () => {
    const file = path.join(dir, 'bert.yaml');
    fs.writeFileSync(file, `model: ${MODELS[1]}\ndata:\n  train: ${DEV}\n`);
    assert.throws(
      () => requireCheckedConfig(file),
      (err: unknown) =>
        err instanceof LoraPlusError &&
        err.code === 'config/invalid' &&
        /\(3 errors\)/.test(err.message) &&
        err.message.includes(`${file}:1:8: error: bert has no language-model head`),
    );
    const ok = path.join(dir, 'ok.yaml');
    fs.writeFileSync(ok, `model: ${STORIES}\ndata:\n  train: ${DEV}\n  text_field: sentence\n`);
    assert.equal(requireCheckedConfig(ok).data.text_field, 'sentence');
  });

  it('inspectData counts rows and reads columns (cached until the file changes)', () => {
    const r = inspectData(DEV);
    assert.ok(r.ok);
    const { columns, pretokenized, rows, chat } = r.value;
    assert.deepEqual([columns, pretokenized, rows], [['sentence', 'label'], false, 872]);
    assert.equal(chat?.format, null); // sentence/label rows are none of sft's chat formats (sft.test.ts)
    const f = path.join(dir, 'grow.jsonl');
    fs.writeFileSync(f, '{"text": "a"}\n');
    assert.equal(inspectData(f).ok && (inspectData(f) as { value: { rows: number } }).value.rows, 1);
    fs.writeFileSync(f, '{"text": "a"}\n{"text": "b", "extra": 1}\n');
    const again = inspectData(f);
    assert.ok(again.ok);
    assert.deepEqual([again.value.rows, again.value.columns], [2, ['text', 'extra']]);
  });
});

describe('the run folder: checked without creating it, created without hanging', () => {
  const cfg = (extra: string) => `model: ${STORIES}\ndata:\n  train: ${DEV}\n  text_field: sentence\n${extra}`;

  it('output_dir that is a file, inside a file, under /proc or /sys: one problem at output_dir', { skip }, () => {
    const file = path.join(dir, 'a-file');
    fs.writeFileSync(file, 'x');
    for (const [out, message] of [
      [file, `cannot create ${file}: a file has that name`],
      [path.join(file, 'runs'), `cannot create ${path.join(file, 'runs')}: ${file} is a file`],
      ['/proc/no-such', 'cannot create /proc/no-such: /proc is on proc, a kernel pseudo file system'],
      ['/sys/x/y', 'cannot create /sys/x/y: /sys is on sysfs, a kernel pseudo file system'],
    ]) {
      if (out.startsWith('/proc') && process.platform !== 'linux') continue;
      const t0 = Date.now();
      const ps = check(cfg(`output_dir: ${out}\n`));
      assert.ok(Date.now() - t0 < 5000, 'no hang');
      assert.deepEqual(
        ps.map((p) => [p.severity, p.code, p.yamlPath, p.line, p.message]),
        [['error', 'config/output-dir', 'output_dir', 5, message]],
      );
      assert.ok(!fs.existsSync(path.join(file, 'runs')));
    }
    assert.deepEqual(check(cfg(`output_dir: ${path.join(dir, 'new', 'runs')}\n`)), []);
    assert.ok(!fs.existsSync(path.join(dir, 'new')), 'validate creates nothing');
    const runFile = path.join(dir, 'outs', 'taken');
    fs.mkdirSync(path.dirname(runFile));
    fs.writeFileSync(runFile, 'x');
    const [p] = check(cfg(`output_dir: ${path.dirname(runFile)}\nrun_name: taken\n`));
    assert.deepEqual(
      [p.code, p.yamlPath, p.message],
      ['config/output-dir', 'run_name', `${runFile} is a file, not a folder for the run`],
    );
  });

  it('EACCES, EROFS, ENOSPC, ENOTDIR, EEXIST: what, where and what to do', () => {
    const d = path.join(dir, 'x', 'runs');
    const err = (code: string, at = path.dirname(d)) =>
      folderError(d, Object.assign(new Error(code), { code }), 'output_dir', at);
    const eacces = err('EACCES');
    assert.match(eacces.message, /: cannot create this folder: no permission to write in .*\/x \(EACCES\)/);
    assert.deepEqual([eacces.info.file, eacces.info.yamlPath], [d, 'output_dir']);
    assert.match(eacces.info.hint ?? '', /^Set output_dir to a folder you can write to\. Or change its permissions\.$/);
    assert.match(err('EROFS').message, /\/x is on a read-only file system \(EROFS\)/);
    assert.match(err('ENOSPC').message, /the disk that holds .*\/x is full \(ENOSPC\).*Free some space/);
    const file = path.join(dir, 'in-the-way');
    fs.writeFileSync(file, 'x');
    for (const code of ['ENOTDIR', 'EEXIST'])
      assert.match(folderError(file, { code }, 'output_dir').message, /a file has that name.*move the file/);
    for (const code of ['EACCES', 'EROFS', 'ENOSPC']) assert.equal(err(code).code, 'run/folder');
    if (process.getuid?.() !== 0) {
      // Permissions do not stop root, so only a normal user sees EACCES for real.
      const locked = path.join(dir, 'locked');
      fs.mkdirSync(locked, { mode: 0o555 });
      assert.match(checkOutputFolder(path.join(locked, 'runs'))!.message, /no permission to write in .* \(EACCES\)/);
    }
  });

  it('ensureDir creates level by level, and refuses /proc at once where a recursive mkdir hangs', () => {
    const nested = path.join(dir, 'e', 'f', 'g');
    ensureDir(nested);
    ensureDir(nested); // exists: nothing to do
    assert.ok(fs.statSync(nested).isDirectory());
    const file = path.join(dir, 'e', 'file');
    fs.writeFileSync(file, 'x');
    assert.throws(
      () => ensureDir(path.join(file, 'sub'), 'output_dir'),
      (e: unknown) => e instanceof LoraPlusError && e.code === 'run/folder' && e.info.yamlPath === 'output_dir',
    );
    if (process.platform !== 'linux') return;
    // In a child with a timeout: were it to hang, the test would hang with it.
    const run = (code: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', '-e', code], {
        timeout: 10_000,
        encoding: 'utf8',
        cwd: process.cwd(),
      });
    const paths = path.resolve(__dirname, '../../../src/engine/checks/paths.ts');
    const r = run(`const { ensureDir } = require(${JSON.stringify(paths)});
      try { ensureDir('/proc/no-such/x'); } catch (e) { console.log(e.info.code + ' ' + e.message); }`);
    assert.equal(r.signal, null, 'ensureDir hung');
    assert.match(r.stdout, /^run\/folder \/proc\/no-such\/x: cannot create this folder: \/proc is on proc/);
  });
});

describe('sizes the model sets: rank and one pass', { skip }, () => {
  const base = `model: ${STORIES}\ndata:\n  train: ${DEV}\n  text_field: sentence\n`;

  it('r above both sides of a targeted layer is an error; between them a warning', () => {
    const [p] = check(`${base}lora:\n  r: 65\n  lora_alpha: 130\n  target_modules: [k_proj]\n`);
    assert.deepEqual([p.severity, p.code, p.yamlPath], ['error', 'config/rank-above-layer', 'lora.r']);
    assert.match(p.message, /lora_A and lora_B would each hold more numbers than the layer they adapt/);
    const [w] = check(`${base}lora:\n  r: 48\n  lora_alpha: 96\n  target_modules: [k_proj]\n`);
    assert.equal(w.severity, 'warning');
  });

  it('one pass whose attention scores pass what one tensor holds: an error on wasm, a warning on a GPU', () => {
    const big = `  max_length: 16384\ntraining:\n  batch_size: 8\n`; // 8 × 8 heads × 16384² = 17G numbers
    const [wasm] = check(`device: wasm\n${base}${big}`).filter((p) => p.code !== 'config/max-length-beyond-positions');
    assert.deepEqual([wasm.severity, wasm.code, wasm.yamlPath], ['error', 'config/pass-too-large', 'data.max_length']);
    assert.match(wasm.message, /batch_size × heads × max_length² = 8 × 8 × 16384²/);
    const gpu = check(`device: webgpu\n${base}${big}`).filter((p) => p.code === 'config/pass-too-large');
    assert.deepEqual(
      gpu.map((p) => p.severity),
      ['warning'],
    );
    // auto: the backend auto picks on this machine (memory.test.ts and sizes.ts), wasm where no GPU is found.
    const auto = check(`${base}${big}`).filter((p) => p.code === 'config/pass-too-large');
    assert.deepEqual(
      auto.map((p) => p.severity),
      [['wasm', 'cpu'].includes(autoBackend().backend) ? 'error' : 'warning'],
    );
    assert.deepEqual(check(`device: wasm\n${base}  max_length: 512\n`), []);
  });
});
