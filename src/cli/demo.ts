// `npm run demo`: two real LoRA+ runs on the pretrained stories260k Llama (TinyStories), headless, with progress.
//   1. causal LM on SST-2 movie-review sentences: dev perplexity and a greedy sample, before and after
//      (and the same run with λ = 1, plain LoRA, for comparison unless --quick);
//   2. SST-2 sentiment classification with a fresh `score` head, lr_A 5e-4, λ 16: dev accuracy before and after;
//      with --tune, lr_A and λ are found first by the tuner (successive halving over 4 × 5 settings on the same
//      budget). Not the default: on this tiny model the tuner's classification picks are not reliable yet (bench/README,
//      "Finding λ"), and the tune takes several times the run.
// Options: --shared DIR (default ../shared beside the project), --model DIR, --data DIR (with train.tsv, dev.tsv),
//          --steps N (part 1), --cls-steps N (part 2), --tune (part 2), --quick, --device D, --out DIR.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadAdapter } from '../adapters/peft';
import { requireResolved } from '../config/auto';
import { tunableConfigFromObject } from '../config/load';
import type { TrainConfig, TunableConfig } from '../config/schema';
import { formatError, toErrorInfo } from '../protocol/errors';
import { selectBackend } from '../engine/backend/select';
import { generate } from '../engine/train/generate';
import { createRenderer, fmtTime } from '../engine/runs/render';
import { Rng } from '../engine/data/rng';
import { buildModel, openModelFolder } from '../engine/train/inputs';
import { train, type TrainResult } from '../engine/train/train';
import { Trainables } from '../engine/train/trainables';
import type { Device } from '../protocol/merge';
import { isRunDir } from '../engine/runs/summary';
import { isTuneDir } from '../engine/runs/tune-folder';
import { tune } from '../engine/tune/tune';
import type { EvalEvent } from '../protocol/events';
import { fmtSetting } from '../protocol/tune';
import { tuneProgress } from './tune';

const { values: opt } = parseArgs({
  options: {
    shared: { type: 'string' },
    model: { type: 'string' },
    data: { type: 'string' },
    out: { type: 'string', default: 'runs/demo' },
    steps: { type: 'string', default: '300' },
    'cls-steps': { type: 'string', default: '200' },
    quick: { type: 'boolean' },
    tune: { type: 'boolean' },
    device: { type: 'string', default: 'auto' },
  },
});

const shared = path.resolve(opt.shared ?? path.join(__dirname, '..', '..', 'shared'));
const modelDir = path.resolve(opt.model ?? path.join(shared, 'models', 'stories260k'));
const dataDir = path.resolve(opt.data ?? path.join(shared, 'data', 'glue-sst2'));
const outDir = path.resolve(opt.out!);
const say = (s = '') => process.stdout.write(`${s}\n`);

function base(task: TrainConfig['task'], extra: { lora: object; training: object; data?: object }): TrainConfig {
  return requireResolved(tunable(task, extra));
}

function tunable(task: TrainConfig['task'], extra: { lora: object; training: object; data?: object }): TunableConfig {
  return tunableConfigFromObject(
    {
      model: modelDir,
      task,
      device: opt.device,
      output_dir: outDir,
      data: {
        train: path.join(dataDir, 'train.tsv'),
        eval: path.join(dataDir, 'dev.tsv'),
        text_field: 'sentence',
        label_field: 'label',
        ...extra.data,
      },
      lora: extra.lora,
      training: { batch_size: 32, lr_scheduler: 'linear', seed: 42, log_every: 1, ...extra.training },
    },
    process.cwd(),
  );
}

async function sample(adapterDir: string | null, prompt: string): Promise<string> {
  const folder = openModelFolder(modelDir);
  const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
  const weights = adapterDir ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapterDir)) : null;
  const ids = await generate(model, folder.tokenizer.encode(prompt).ids, {
    maxNewTokens: 40,
    eosId: folder.tokenizer.eosId,
    adapters: weights ?? undefined,
  });
  weights?.dispose();
  model.dispose();
  return folder.tokenizer.decode(ids, { skipSpecialTokens: true }).replace(/\s+/g, ' ').trim();
}

async function run(label: string, config: TrainConfig): Promise<TrainResult> {
  say(`\n── ${label}`);
  const t0 = Date.now();
  const slug = label
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();
  const runDir = path.join(outDir, slug);
  // The demo starts over: its own earlier run of this part goes (a run folder of the demo's, nothing else).
  if (isRunDir(runDir)) fs.rmSync(runDir, { recursive: true, force: true });
  const r = await train(config, createRenderer(process.stdout), undefined, { runDir });
  say(`   done in ${fmtTime((Date.now() - t0) / 1000)}`);
  return r;
}

const metric = (r: TrainResult, key: 'perplexity' | 'accuracy', at: 'first' | 'last') => {
  const e = at === 'first' ? r.evals[0] : r.evals.at(-1);
  return e?.result[key] ?? NaN;
};

async function main(): Promise<void> {
  if (!fs.existsSync(path.join(modelDir, 'config.json')) || !fs.existsSync(path.join(dataDir, 'train.tsv'))) {
    say(
      `The demo uses the pretrained stories260k checkpoint and the GLUE SST-2 data from the project's shared folder,`,
    );
    say(`expected at ${shared} (model ${modelDir}, data ${dataDir}), which is not there.`);
    say(`Point it at any Hugging Face model folder and a folder with train.tsv/dev.tsv (columns sentence, label):`);
    say(`  npm run demo -- --model /path/to/model --data /path/to/sst2`);
    say(`or train from a config of your own: npx loraplus train my.lora.yaml (see README.md).`);
    process.exitCode = 1;
    return;
  }
  const steps = opt.quick ? 60 : Number(opt.steps);
  const clsSteps = opt.quick ? 60 : Number(opt['cls-steps']);
  say('LoRA+ Studio demo: LoRA+ fine-tuning of a real pretrained checkpoint, on this machine');
  say(`model ${modelDir}\ndata  ${dataDir}\nruns  ${outDir}`);

  // Part 1: causal LM on movie-review sentences (packed into blocks of 32 tokens). LoRA r=8 on q_proj/v_proj, α=16,
  // batch 32, lr_A 5e-4: the setup of the reference measurement, at a block length that keeps the demo short.
  const lm = (ratio: number) =>
    base('causal-lm', {
      data: { max_length: 32, max_train_samples: 20000 },
      lora: { r: 8, lora_alpha: 16, target_modules: ['q_proj', 'v_proj'] },
      training: {
        learning_rate: 5e-4,
        loraplus_lr_ratio: ratio,
        max_steps: steps,
        warmup_steps: Math.round(steps / 15),
        eval_every: Math.max(1, Math.round(steps / 3)),
      },
    });
  await selectBackend(opt.device as Device); // before the first tensor: the samples run on the run's backend
  const prompt = 'the movie is';
  const before = await sample(null, prompt);
  const plus = await run(`1a causal LM, LoRA+ (λ = 16)`, lm(16));
  const plain = opt.quick ? null : await run(`1b causal LM, plain LoRA (λ = 1)`, lm(1));
  const after = await sample(plus.finalAdapter, prompt);

  // Part 2: SST-2 classification with a fresh score head (trained in full as modules_to_save), LoRA on all linear
  // layers. LoRA+ needs lr_A lowered as λ rises: at lr_A 1e-3, λ = 16 collapses to the majority class; 5e-4 learns.
  // --tune lets the tuner find both on this budget first.
  const cls = await classification(clsSteps, Boolean(opt.tune));

  say('\n══ Results (SST-2 dev set)');
  const curve = (r: TrainResult) => r.evals.map((e) => `${e.step}: ${e.result.perplexity?.toFixed(2)}`).join(' · ');
  const perplexity = (r: TrainResult, at: 'first' | 'last') => metric(r, 'perplexity', at).toFixed(2);
  const perplexities = (r: TrainResult) =>
    `${perplexity(r, 'first')} → ${perplexity(r, 'last')}   (by step ${curve(r)})`;
  say(`causal LM perplexity, LoRA+ λ=16   ${perplexities(plus)}`);
  if (plain) say(`causal LM perplexity, LoRA  λ=1    ${perplexities(plain)}`);
  say(`greedy sample before: "${before}"`);
  say(`greedy sample after:  "${after}"`);
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  say(`sentiment accuracy, LoRA+ ${cls.setting}     ${pct(cls.before)} (fresh head) → ${pct(cls.after)}`);
  say(`adapters: ${plus.finalAdapter}, ${cls.finalAdapter}`);
  const runs = path.dirname(plus.runDir);
  const rel = (p: string) => path.relative(process.cwd(), p);
  say(
    `next: loraplus compare ${rel(runs)}/* · ` +
      `loraplus merge --adapter ${rel(plus.runDir)} --out ${rel(runs)}/merged · ` +
      'or open this folder in VS Code with LoRA+ Studio: ' +
      'the runs, their dashboards and the A/B view are in the LoRA+ sidebar',
  );
}

const CLS = {
  data: { max_length: 40, max_train_samples: 10000 },
  lora: { r: 8, lora_alpha: 16, target_modules: 'all-linear' },
};

interface ClsResult {
  setting: string; // "(tuned: lr_A 5e-4, λ 4)"
  before: number; // dev accuracy with the fresh head
  after: number;
  finalAdapter: string | null;
}

/** Part 2: the fixed setting, or tuned (loraplus tune on the same budget, the winner trained to the end). */
async function classification(steps: number, tuneFirst: boolean): Promise<ClsResult> {
  const training = (lr: number | 'auto', ratio: number | 'auto') => ({
    learning_rate: lr,
    loraplus_lr_ratio: ratio,
    max_steps: steps,
    warmup_steps: Math.round(steps / 15),
    eval_every: Math.max(1, Math.round(steps / 3)),
  });
  if (!tuneFirst) {
    const r = await run(
      `2 SST-2 classification, LoRA+ (λ = 16)`,
      base('sequence-classification', { ...CLS, training: training(5e-4, 16) }),
    );
    return {
      setting: 'λ=16',
      before: metric(r, 'accuracy', 'first'),
      after: metric(r, 'accuracy', 'last'),
      finalAdapter: r.finalAdapter,
    };
  }
  say(`\n── 2 SST-2 classification: first the tuner finds lr_A and λ (loraplus tune), then the winner trains on`);
  const t0 = Date.now();
  const dir = path.join(outDir, '2-sst-2-classification-tune');
  if (isTuneDir(dir)) fs.rmSync(dir, { recursive: true, force: true }); // the demo's own earlier tune
  const progress = tuneProgress(process.stdout);
  const firstEval = new Map<string, EvalEvent>(); // each trial's eval before training: the fresh head
  const r = await tune(
    tunable('sequence-classification', { ...CLS, training: training('auto', 'auto') }),
    progress.tune,
    undefined,
    {
      budget: { steps },
      tuneDir: dir,
      onTrialEvent: (trial, e) => {
        if (e.type === 'eval' && !firstEval.has(trial)) firstEval.set(trial, e);
        progress.trial(e);
      },
    },
  );
  progress.done();
  if (r.status !== 'finished' || !r.eval || !r.trial) throw new Error(`the tune ended ${r.status} without a winner`);
  const chose = `lr_A ${fmtSetting(r.learning_rate!)}, λ ${fmtSetting(r.loraplus_lr_ratio!)}`;
  const cost = `${r.spent_steps} steps, ${(r.spent_steps / steps).toFixed(1)}× one run, ${Math.round((100 * r.spent_steps) / r.full_grid_steps)}% of the full grid`;
  say(`   chose ${chose} (${cost}); done in ${fmtTime((Date.now() - t0) / 1000)}`);
  return {
    setting: `(tuned: ${chose})`,
    before: firstEval.get(r.trial)?.accuracy ?? NaN,
    after: r.eval.accuracy ?? NaN,
    finalAdapter: r.final_adapter,
  };
}

main().catch((err) => {
  console.error(`error: ${formatError(toErrorInfo(err))}`);
  process.exitCode = 1;
});
