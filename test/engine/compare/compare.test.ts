// `loraplus compare` on real runs: two short stories260k runs and a checkpoint, a Python PEFT adapter from
// ../shared/reference against one of ours, the --json report's shape, --eval, and the errors for wrong paths; and
// λ 16 vs λ 1 from one seed, where only the output side and the cosine tell the runs apart.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { adapterWeightsFromSafetensors } from '../../../src/adapters/peft';
import { readSafetensors } from '../../../src/adapters/safetensors';
import { matmul, matrix, svd } from '../../../src/adapters/svd';
import { configFromObject } from '../../../src/config/load';
import { compare } from '../../../src/engine/compare/compare';
import { sharedInit } from '../../../src/engine/compare/pairs';
import { diffConfigs, flattenConfig } from '../../../src/config/flatten';
import { train } from '../../../src/engine/train/train';
import type { CompareReport } from '../../../src/protocol/compare';
import { LoraPlusError } from '../../../src/protocol/errors';
import { REFERENCE, SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';
import { runCli } from '../../helpers/cli';

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

function throwsCode(fn: () => unknown, code: string, where: string): LoraPlusError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof LoraPlusError, String(err));
    assert.equal(err.code, code);
    assert.equal(err.info.file, where);
    assert.ok(err.info.hint, 'says what to do');
    return err;
  }
  assert.fail(`expected ${code}`);
}

const STEPS = 4;
const LAMBDA_STEPS = 40; // long enough for λ to set the two runs' B apart
let root = '';
let runA = '';
let runB = '';

/** A Python PEFT folder: the reference trajectory's final adapter (trained by PEFT on stories260k) with the
 *  adapter_config.json PEFT's save_pretrained writes for it. */
function pythonAdapter(dir: string): string {
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(
    path.join(REFERENCE, 'loraplus_llama.final_adapter.safetensors'),
    path.join(dir, 'adapter_model.safetensors'),
  );
  fs.writeFileSync(
    path.join(dir, 'adapter_config.json'),
    JSON.stringify(
      {
        alpha_pattern: {},
        auto_mapping: null,
        base_model_name_or_path: 'stories260k',
        bias: 'none',
        fan_in_fan_out: false,
        inference_mode: true,
        init_lora_weights: true,
        layers_pattern: null,
        layers_to_transform: null,
        lora_alpha: 8,
        lora_dropout: 0.0,
        modules_to_save: null,
        peft_type: 'LORA',
        r: 4,
        rank_pattern: {},
        revision: null,
        target_modules: ['v_proj', 'q_proj'],
        task_type: 'CAUSAL_LM',
        use_dora: false,
        use_rslora: false,
      },
      null,
      2,
    ),
  );
  return dir;
}

describe('loraplus compare', () => {
  before(async () => {
    await useBackend();
    root = tempDir();
    for (const [name, lr, ratio, steps] of [
      ['run-a', 2e-3, 16, STEPS],
      ['run-b', 5e-4, 16, STEPS],
      ['lambda-16', 1e-3, 16, LAMBDA_STEPS],
      ['lambda-1', 1e-3, 1, LAMBDA_STEPS],
    ] as const) {
      const config = configFromObject(
        {
          model: STORIES,
          task: 'causal-lm',
          device: 'wasm',
          output_dir: path.join(root, 'runs'),
          run_name: name,
          data: {
            train: path.join(SST2, 'dev.tsv'),
            eval: path.join(SST2, 'dev.tsv'),
            text_field: 'sentence',
            max_length: 32,
            max_train_samples: 48,
            max_eval_samples: 24,
          },
          lora: { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] },
          training: {
            learning_rate: lr,
            loraplus_lr_ratio: ratio,
            batch_size: 4,
            max_steps: steps,
            eval_every: steps === STEPS ? 2 : 0,
            save_every: steps === STEPS ? 2 : 0,
            seed: 1,
          },
        },
        root,
      );
      const r = await train(config, () => {});
      assert.equal(r.status, 'finished');
    }
    [runA, runB] = [path.join(root, 'runs', 'run-a'), path.join(root, 'runs', 'run-b')];
  });

  it('--json on two runs and a checkpoint: items, config diff, metrics, curves, modules, similarity', async () => {
    const ckpt = path.join(runA, 'checkpoints', 'step-2');
    const { code, out, err } = await runCli(['compare', runA, runB, ckpt, '--json']);
    assert.equal(code, 0, err);
    const r = JSON.parse(out) as CompareReport;
    assert.equal(r.version, 1);
    assert.deepEqual(
      r.items.map((it) => [it.label, it.kind, it.step, it.status]),
      [
        ['run-a', 'run', STEPS, 'finished'],
        ['run-b', 'run', STEPS, 'finished'],
        ['run-a@step-2', 'checkpoint', 2, 'finished'],
      ],
    );
    // Captions say what sets each item apart: the learning rate, and the step where one run's checkpoint meets it.
    assert.deepEqual(
      r.items.map((it) => it.caption),
      ['lr 2e-3 · step 4', 'lr 5e-4 · step 4', 'lr 2e-3 · step 2'],
    );
    assert.equal(r.items[0].adapter_dir, path.join(runA, 'final'));
    assert.equal(r.items[2].adapter_dir, ckpt);
    // Only what was changed between the runs differs (the checkpoint shares run-a's config).
    assert.deepEqual([...r.differs].sort(), ['run_name', 'training.learning_rate']);
    assert.equal(r.items[1].config['training.learning_rate'], 5e-4);
    assert.ok(r.config_keys.includes('lora.r') && !r.differs.includes('lora.r'));
    // Metrics and curves are as of each item's step: the checkpoint's stop at step 2.
    assert.deepEqual(r.curves[0]!.step, [1, 2, 3, 4]);
    assert.deepEqual(r.curves[2]!.step, [1, 2]);
    assert.deepEqual(
      r.curves[0]!.eval.step.filter((s) => s > 0),
      [2, 4],
    );
    assert.ok(r.curves[0]!.tokens_seen.every((t, i, a) => t > 0 && (i === 0 || t > a[i - 1])));
    assert.equal(r.items[2].metrics!.train_loss, r.curves[0]!.loss[1]);
    assert.equal(r.items[0].metrics!.eval!.step, STEPS);
    assert.ok(r.items[0].metrics!.eval!.perplexity! > 1);
    // Per module: 5 layers × (q_proj, v_proj), σ from a rank-4 ΔW.
    for (const ms of r.modules) {
      assert.equal(ms.length, 10);
      for (const m of ms) {
        assert.equal(m.sigma.length, 4);
        assert.ok(
          m.norm > 0 &&
            m.effective_rank >= 1 &&
            m.effective_rank <= 4 &&
            m.numerical_rank <= 4 &&
            m.energy_rank_90 >= 1,
        );
        assert.ok(Math.abs(m.norm - Math.hypot(...m.sigma)) < 1e-9 * m.norm);
      }
    }
    assert.deepEqual(
      r.modules[0].map((m) => m.layer),
      [0, 0, 1, 1, 2, 2, 3, 3, 4, 4],
    );
    // A higher learning rate moves the adapter further: ‖ΔW‖ of run-a (lr 2e-3) exceeds run-b's (5e-4) on every module.
    r.modules[0].forEach((m, k) => assert.ok(m.norm > r.modules[1][k].norm, m.module));
    // All three pairs, every module shared, φ in [0, 1].
    assert.deepEqual(
      r.similarity.map((p) => [p.a, p.b]),
      [
        [0, 1],
        [0, 2],
        [1, 2],
      ],
    );
    for (const p of r.similarity) {
      assert.equal(p.modules.length, 10);
      assert.deepEqual(p.skipped, []);
      assert.deepEqual(p.shared_init, { same: true, seed: 1, differs: [] }); // one seed, model, r and targets
      for (const m of p.modules) {
        for (const s of [m.delta, m.out, m.A])
          assert.ok(s.phi! >= 0 && s.phi! <= 1 && s.diag.length === 4 && s.grid === undefined);
        assert.ok(m.cosine! >= -1 && m.cosine! <= 1 && m.a_cosine! > 0.9, `${m.cosine} ${m.a_cosine}`);
      }
      assert.ok(Math.abs(p.mean.out! - avg(p.modules.map((m) => m.out.phi!))) < 1e-12);
    }
    assert.ok(r.definitions.phi_out.includes('left-singular') && r.definitions.cosine.includes('tr((B₁ᵀB₂)(A₂A₁ᵀ))'));
    assert.equal(r.eval_config, path.join(runA, 'config.yaml'));
    assert.ok(r.definitions.effective_rank.includes('Roy & Vetterli'));
  });

  it('--pairs first and --grid', async () => {
    const { code, out } = await runCli([
      'compare',
      runA,
      runB,
      path.join(runB, 'checkpoints', 'step-2'),
      '--json',
      '--pairs',
      'first',
      '--grid',
    ]);
    assert.equal(code, 0);
    const r = JSON.parse(out) as CompareReport;
    assert.deepEqual(
      r.similarity.map((p) => [p.a, p.b]),
      [
        [0, 1],
        [0, 2],
      ],
    );
    const grid = r.similarity[0].modules[0].delta.grid!;
    assert.equal(grid.length, 4);
    assert.ok(Math.abs(grid[3][3] - r.similarity[0].modules[0].delta.phi!) < 1e-6);
  });

  it("--eval evaluates each item on the first run's eval set: the same loss the run logged at that step", async () => {
    const { code, out, err } = await runCli([
      'compare',
      runA,
      path.join(runB, 'checkpoints', 'step-2'),
      '--eval',
      '--json',
    ]);
    assert.equal(code, 0, err);
    const r = JSON.parse(out) as CompareReport;
    assert.equal(r.evals!.length, 2);
    r.evals!.forEach((e, i) => {
      assert.ok(!('error' in e), JSON.stringify(e));
      if ('error' in e) return;
      const logged = r.items[i].metrics!.eval!;
      assert.equal(logged.step, r.items[i].step);
      assert.ok(
        Math.abs(e.loss - logged.loss) < 1e-4 * logged.loss,
        `${r.items[i].label}: ${e.loss} vs logged ${logged.loss}`,
      );
    });
    // One eval set for both (the first run's): the same number of examples (causal LM: packed blocks).
    const sizes = r.evals!.map((e) => ('error' in e ? 0 : e.examples));
    assert.ok(sizes[0] > 0 && sizes[0] === sizes[1]);
  });

  it('the readable form lists the differing keys, the metrics, the modules and the mean φ', async () => {
    const { code, out } = await runCli(['compare', runA, runB]);
    assert.equal(code, 0);
    assert.match(out, /training\.learning_rate\s+0\.002\s+0\.0005/);
    assert.match(out, /best eval loss/);
    assert.match(out, /model\.layers\.4\.self_attn\.v_proj/);
    assert.match(out, /run-a · lr 2e-3 +\(run, finished, step 4\)/);
    assert.match(
      out,
      /run-a vs run-b: cosine [0-9.]+ · out φ [0-9.]+ · in φ [0-9.]+ · lora_A φ [0-9.]+ over 10 modules/,
    );
    assert.match(out, /same initial lora_A \(seed 1, cos\(A₁, A₂\) [0-9.]+\)/);
    assert.match(
      out,
      /module +cosine +out φ +in φ\n.*\n +model\.layers\.0\.self_attn\.q_proj +-?[0-9.]+ +[0-9.]+ +[0-9.]+/,
    );
  });

  it('λ 16 vs λ 1 from one seed: input side ≈ 1 by construction; the output side and the cosine differ', () => {
    const r = compare([path.join(root, 'runs', 'lambda-16'), path.join(root, 'runs', 'lambda-1')]);
    assert.deepEqual(
      r.items.map((it) => it.caption),
      ['λ 16', 'λ 1'],
    );
    const p = r.similarity[0];
    assert.equal(p.shared_init?.same, true);
    const m = p.mean;
    // lora_A barely leaves its shared start (lr_A is the same), so its row space, ΔW's input side, stays shared.
    assert.ok(m.a_cosine! > 0.98 && m.delta! > 0.95, `cos(A₁, A₂) ${m.a_cosine}, input φ ${m.delta}`);
    // B (λ× faster in one run) is where they differ: clearly lower on the output side and in the cosine.
    assert.ok(m.out! < m.delta! - 0.15, `output φ ${m.out} vs input φ ${m.delta}`);
    assert.ok(m.cosine! < m.delta! - 0.08, `cosine ${m.cosine} vs input φ ${m.delta}`);
    for (const x of p.modules) assert.ok(x.out.phi! < x.delta.phi!, `${x.module}: ${x.out.phi} ≥ ${x.delta.phi}`);
  });

  it('shared_init: the same start only when seed, model, task, r, targets and init_adapter agree', () => {
    const item = (config: Record<string, unknown>, run: string | null = 'x') =>
      ({ run, config: { model: 'm', task: 'causal-lm', 'lora.r': 4, 'training.seed': 1, ...config } }) as never;
    assert.deepEqual(sharedInit(item({}), item({ 'training.learning_rate': 1 })), { same: true, seed: 1, differs: [] });
    assert.deepEqual(sharedInit(item({}), item({ 'training.seed': 2, 'lora.r': 8 })), {
      same: false,
      seed: null,
      differs: ['training.seed', 'lora.r'],
    });
    assert.equal(sharedInit(item({}), item({}, null)), null, 'a bare adapter: unknown');
  });

  it('a Python PEFT adapter against one of ours on the same base', () => {
    const py = pythonAdapter(path.join(root, 'python-peft'));
    const r = compare([py, runA]);
    assert.deepEqual(
      r.items.map((it) => [it.label, it.kind]),
      [
        ['python-peft', 'adapter'],
        ['run-a', 'run'],
      ],
    );
    assert.equal(r.curves[0], null);
    assert.equal(r.items[0].metrics, null);
    assert.equal(r.items[0].config['lora.r'], 4);
    assert.equal(r.items[0].config.task, 'causal-lm');
    assert.ok(!r.differs.includes('lora.r') && !r.differs.includes('lora.lora_alpha'));
    assert.ok(r.differs.includes('training.learning_rate')); // the run has one, the adapter folder does not say
    // Its spectrum against the SVD of the product formed from the file's tensors.
    const file = adapterWeightsFromSafetensors(readSafetensors(path.join(py, 'adapter_model.safetensors')).tensors, py);
    for (const m of r.modules[0]) {
      const { A, B } = file.lora.get(m.module)!;
      const direct = svd(matmul(matrix(B.data, B.shape[0], B.shape[1]), matrix(A.data, A.shape[0], A.shape[1]))).s;
      m.sigma.forEach((s, k) => assert.ok(Math.abs(s - 2 * direct[k]) < 1e-9 * direct[0], `${m.module} σ${k}`)); // scaling 8/4
    }
    assert.equal(r.similarity[0].modules.length, 10);
    // Against a copy of itself: identical subspaces everywhere.
    fs.cpSync(py, path.join(root, 'copy'), { recursive: true });
    const same = compare([py, path.join(root, 'copy')]);
    const m = same.similarity[0].mean;
    for (const v of [m.delta, m.out, m.A, m.cosine, m.a_cosine]) assert.ok(Math.abs(v! - 1) < 1e-9, String(v));
    assert.equal(same.similarity[0].shared_init, null, 'adapter folders without runs: unknown');
    assert.deepEqual(
      same.items.map((it) => it.caption),
      [null, null],
      'nothing differs: no captions',
    );
    assert.equal(same.items[1].label, 'copy');
  });

  it('flattens configs to dotted keys and diffs them (lists as values, a missing key differs)', () => {
    const a = flattenConfig({
      model: 'm',
      lora: { r: 8, target_modules: ['q_proj', 'v_proj'] },
      training: { seed: 1 },
    });
    assert.deepEqual(a, { model: 'm', 'lora.r': 8, 'lora.target_modules': ['q_proj', 'v_proj'], 'training.seed': 1 });
    const b = flattenConfig({
      model: 'm',
      lora: { r: 8, target_modules: ['q_proj'] },
      training: { seed: 1, warmup_steps: 0 },
    });
    assert.deepEqual(diffConfigs([a, b]), {
      keys: ['model', 'lora.r', 'lora.target_modules', 'training.seed', 'training.warmup_steps'],
      differs: ['lora.target_modules', 'training.warmup_steps'],
    });
  });

  it('errors say what, where and what to do: missing paths, folders without an adapter, files', async () => {
    const missing = path.join(root, 'nope');
    throwsCode(() => compare([runA, missing]), 'compare/not-found', missing);
    const model = throwsCode(() => compare([STORIES]), 'compare/no-adapter', STORIES);
    assert.match(model.message, /model folder/);
    const empty = path.join(root, 'empty-run');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'metrics.jsonl'), '');
    assert.match(
      throwsCode(() => compare([empty]), 'compare/no-adapter', empty).message,
      /empty-run has no adapter yet/,
    );
    const file = path.join(runA, 'final', 'adapter_model.safetensors');
    assert.match(throwsCode(() => compare([file]), 'compare/not-a-folder', file).info.hint!, /adapter_config\.json/);
    // The CLI prints it on stderr and exits 1.
    const cli = await runCli(['compare', runA, missing]);
    assert.equal(cli.code, 1);
    assert.match(cli.err, new RegExp(`${missing.replace(/[/\\]/g, '.')}: no such file or folder`));
    assert.equal((await runCli(['compare'])).code, 1);
  });
});
