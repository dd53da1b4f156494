// The headless CLI on the same engine the extension uses:
//   loraplus train CONFIG [--run-dir DIR] [--resume]
//   loraplus validate CONFIG
//   loraplus eval CONFIG [--adapter DIR] [--json]
//   loraplus generate MODEL [--adapter DIR] --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--seed S]
//   loraplus info MODEL [--json]
//   loraplus merge --adapter DIR [--adapter DIR --weight W ...] --out DIR   (merge-cli.ts)
//   loraplus compare A B [...] [--json]                                      (compare-cli.ts)
//   loraplus download ORG/NAME [--revision R] [--json]                       (download.ts)
//   loraplus chat MODEL [--adapter DIR] [--compare] ...                      (chat.ts)
//   loraplus tune CONFIG [--grid ...] [--budget N] [--json]                   (tune.ts)
//   loraplus export CONFIG --to accelerate --out DIR [--run-dir RUN]          (export.ts)
import * as path from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadAdapter } from '../adapters/peft';
import { formatProblem } from '../config/load';
import type { HFConfig } from '../models/types';
import { formatError, LoraPlusError, toErrorInfo } from '../protocol/errors';
import { ourDevice, selectBackend } from '../engine/backend/select';
import { checkConfigFile, requireCheckedTunable } from '../engine/checks/config';
import { autoKeys, requireResolved, resumeAutoError, withAutoDefaults } from '../config/auto';
import { CHAT_USAGE, cmdChat } from './chat';
import { cmdCompare, COMPARE_USAGE } from './compare';
import { evaluate } from '../engine/train/evaluate';
import { generate } from '../engine/train/generate';
import { cmdDownload, DOWNLOAD_USAGE } from './download';
import { cmdExport, EXPORT_USAGE } from './export';
import { cmdMerge, MERGE_USAGE } from './merge';
import { cmdTune, runTune, TUNE_USAGE } from './tune';
import { createRenderer } from '../engine/runs/render';
import { Rng } from '../engine/data/rng';
import { buildModel, loadEvalData, openModelFolder, padId } from '../engine/train/inputs';
import { train } from '../engine/train/train';
import { Trainables } from '../engine/train/trainables';
import type { Device } from '../protocol/merge';
import type { EngineEvent } from '../protocol/events';
import { resolveModel } from '../engine/hub/cache';
import { modelTask } from '../models/types';

const USAGE = `loraplus: LoRA+ fine-tuning of Hugging Face checkpoints on TensorFlow.js

  loraplus train CONFIG [--run-dir DIR] [--resume] [--engine torch|tfjs]
                                                       train (Ctrl-C saves a checkpoint, then stops); a config with
                                                       learning_rate or loraplus_lr_ratio: auto tunes first (tune);
                                                       --engine torch (or device: torch): on PyTorch + PEFT
  loraplus validate CONFIG                             check a config: file:line:col: severity: message
  loraplus eval CONFIG [--adapter DIR] [--json]        loss and accuracy/perplexity on data.eval
  loraplus generate MODEL --prompt TEXT [--adapter DIR] [--max-new-tokens N] [--temperature T] [--top-k K] [--seed S]
  loraplus info MODEL [--json]                         architecture, parameters, LoRA target candidates
${MERGE_USAGE}
${COMPARE_USAGE}
${DOWNLOAD_USAGE}
${CHAT_USAGE}
${TUNE_USAGE}
${EXPORT_USAGE}

Options: --device auto|cuda|webgpu|wasm|cpu (eval, generate, info, chat; train reads it from the config)`;

const COMMANDS: Record<string, (args: string[]) => Promise<number>> = {
  train: cmdTrain,
  validate: cmdValidate,
  eval: cmdEval,
  generate: cmdGenerate,
  info: cmdInfo,
  merge: cmdMerge,
  compare: cmdCompare,
  download: cmdDownload,
  chat: (args) => cmdChat(args),
  tune: cmdTune,
  export: cmdExport,
};

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd ? 0 : 2;
  }
  const run = COMMANDS[cmd];
  if (!run) {
    console.error(`loraplus: unknown command '${cmd}'\n\n${USAGE}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    console.error(`error: ${formatError(toErrorInfo(err))}`);
    if (!(err instanceof LoraPlusError) && process.env.LORAPLUS_DEBUG) console.error(err);
    return 1;
  }
}

function args(argv: string[], options: NonNullable<ParseArgsConfig['options']>, positionals: number) {
  const parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  if (parsed.positionals.length !== positionals) {
    throw new LoraPlusError({
      code: 'cli/usage',
      message: `expected ${positionals} argument(s), got ${parsed.positionals.length}`,
      hint: `Run 'loraplus --help'.`,
    });
  }
  return parsed;
}

async function cmdTrain(argv: string[]): Promise<number> {
  const options = { 'run-dir': { type: 'string' }, resume: { type: 'boolean' }, engine: { type: 'string' } } as const;
  const { values, positionals } = args(argv, options, 1);
  if (values.engine !== undefined && values.engine !== 'torch' && values.engine !== 'tfjs') {
    throw new LoraPlusError({ code: 'cli/usage', message: `--engine ${values.engine}: use tfjs (ours) or torch` });
  }
  const file = path.resolve(positionals[0]);
  const tunable = requireCheckedTunable(file);
  const auto = autoKeys(tunable);
  if (auto.length) {
    // `auto`: the tune is the training; its last step trains the winner to the full length, in the winner's folder.
    if (values.resume) throw resumeAutoError(tunable, file);
    const tuneDir = values['run-dir'] ? path.resolve(String(values['run-dir'])) : undefined;
    return runTune(tunable, { configFile: file, tuneDir }, false);
  }
  const resolved = requireResolved(tunable, file); // nothing is auto here
  const engine = values.engine ?? (resolved.device === 'torch' ? 'torch' : 'tfjs');
  // --engine tfjs on a device: torch config trains on our engine's best backend.
  const config = { ...resolved, device: engine === 'torch' ? 'torch' : ourDevice(resolved.device) } as typeof resolved;
  const controller = new AbortController();
  let stops = 0;
  const onSignal = () => {
    if (++stops > 1) process.exit(130); // a second Ctrl-C does not wait for the checkpoint
    console.error('\nstopping: saving a checkpoint first (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  // A failed run prints its error as an event; main() prints only errors from before the run began.
  const render = createRenderer();
  let printed = false;
  const onEvent = (e: EngineEvent) => {
    printed ||= e.type === 'error';
    render(e);
  };
  try {
    const runDir = values['run-dir'] ? path.resolve(String(values['run-dir'])) : undefined;
    const r = await train(config, onEvent, controller.signal, {
      runDir,
      resume: Boolean(values.resume),
      configFile: file,
    });
    return r.status === 'finished' ? 0 : 130;
  } catch (err) {
    if (printed) return 1;
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

/** Schema, rules and the checks against the model folder and data files; exits 1 only when there are errors. */
async function cmdValidate(argv: string[]): Promise<number> {
  const { positionals } = args(argv, {}, 1);
  const file = path.resolve(positionals[0]);
  const { problems } = checkConfigFile(file);
  for (const p of problems) console.log(formatProblem(file, p));
  const count = (severity: string) => problems.filter((p) => p.severity === severity).length;
  const errors = count('error');
  const notes = [
    ['error', errors],
    ['warning', count('warning')],
    ['note', count('info') + count('hint')],
  ]
    .flatMap(([word, n]) => (n ? [`${n} ${word}${n === 1 ? '' : 's'}`] : []))
    .join(', ');
  console.log(errors ? notes : `${file}: ok${notes ? ` (${notes})` : ''}`);
  return errors ? 1 : 0;
}

async function cmdEval(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { adapter: { type: 'string' }, json: { type: 'boolean' }, device: { type: 'string' } },
    1,
  );
  // An evaluation reads no learning rate: a config that says `auto` evaluates as well.
  const config = withAutoDefaults(requireCheckedTunable(path.resolve(positionals[0])));
  const backend = await selectBackend((values.device as Device) ?? config.device);
  const folder = openModelFolder(config.model);
  const data = loadEvalData(config, folder.tokenizer);
  const rng = new Rng(config.training.seed);
  const model = buildModel(folder, modelTask(config.task), data.labels.length, rng);
  const adapterDir = values.adapter ? path.resolve(String(values.adapter)) : null;
  // The adapter with its own r, lora_alpha and saved heads (adapter_config.json), not the config's lora section.
  const weights = adapterDir ? Trainables.fromAdapter(model, folder.family, loadAdapter(adapterDir)) : null;
  try {
    const r = await evaluate(model, data.eval, padId(folder), config.training.batch_size, weights ?? undefined);
    if (values.json)
      console.log(
        JSON.stringify({
          ...r,
          adapter: adapterDir,
          data: config.data.eval ?? config.data.train,
          backend: backend.backend,
        }),
      );
    else {
      const perplexity = r.perplexity !== undefined ? ` · perplexity ${r.perplexity.toFixed(3)}` : '';
      const accuracy = r.accuracy !== undefined ? ` · accuracy ${(100 * r.accuracy).toFixed(2)}%` : '';
      const tokens =
        r.token_accuracy !== undefined ? ` · answer token accuracy ${(100 * r.token_accuracy).toFixed(2)}%` : '';
      console.log(
        `${adapterDir ?? 'base model'} on ${r.examples} examples: loss ${r.loss.toFixed(4)}${perplexity}${accuracy}${tokens}`,
      );
    }
    return 0;
  } finally {
    weights?.dispose();
    model.dispose();
  }
}

async function cmdGenerate(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    {
      adapter: { type: 'string' },
      prompt: { type: 'string', default: '' },
      'max-new-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string', default: '0' },
      'top-k': { type: 'string', default: '0' },
      seed: { type: 'string', default: '0' },
      device: { type: 'string', default: 'auto' },
    },
    1,
  );
  await selectBackend(values.device as Device);
  const folder = openModelFolder(resolveModel(positionals[0]));
  if (!folder.family.tasks.includes('causal-lm')) {
    throw new LoraPlusError({
      code: 'cli/not-a-decoder',
      message: `${folder.config.model_type} is an encoder with no language-model head: it cannot generate text`,
      file: folder.dir,
      hint: 'Use a causal LM (e.g. a llama or gpt2 folder) with generate; use eval for classifiers.',
    });
  }
  const model = buildModel(folder, 'causal-lm', 0, new Rng(0));
  const adapter = values.adapter ? loadAdapter(path.resolve(String(values.adapter))) : null;
  const weights = adapter ? Trainables.fromAdapter(model, folder.family, adapter) : null;
  try {
    const prompt = folder.tokenizer.encode(String(values.prompt)).ids;
    const ids = await generate(model, prompt, {
      maxNewTokens: Number(values['max-new-tokens']),
      temperature: Number(values.temperature),
      topK: Number(values['top-k']),
      seed: Number(values.seed),
      eosId: folder.tokenizer.eosId,
      adapters: weights ?? undefined,
    });
    console.log(folder.tokenizer.decode(ids, { skipSpecialTokens: true }));
    return 0;
  } finally {
    weights?.dispose();
    model.dispose();
  }
}

async function cmdInfo(argv: string[]): Promise<number> {
  const { values, positionals } = args(
    argv,
    { json: { type: 'boolean' }, device: { type: 'string', default: 'cpu' } },
    1,
  );
  await selectBackend(values.device as Device);
  const folder = openModelFolder(resolveModel(positionals[0]));
  // Built with the family's first task: an encoder has only a classification head, with the checkpoint's labels.
  const task = folder.family.tasks[0];
  const model = buildModel(folder, task, task === 'causal-lm' ? 0 : checkpointLabels(folder.config), new Rng(0));
  try {
    const linears = [...model.linears].map(([name, l]) => ({
      name,
      in: l.inFeatures,
      out: l.outFeatures,
      bias: Boolean(l.bias),
    }));
    const suffixes = [...new Set(linears.map((l) => l.name.split('.').pop()!))];
    const info = {
      model: folder.dir,
      model_type: model.modelType,
      family: model.family,
      task,
      parameters: model.paramCount,
      vocab_size: model.vocabSize,
      max_positions: model.maxPositions,
      default_target_modules: folder.family.defaultTargets,
      chat_template: folder.chatTemplate !== null, // tokenizer_config.json or chat_template.jinja
      target_module_names: suffixes,
      linears,
    };
    if (values.json) {
      console.log(JSON.stringify(info, null, 2));
      return 0;
    }
    console.log(
      `${info.model}\n  ${info.model_type} (family ${info.family}, built as ${task}) · ` +
        `${info.parameters.toLocaleString('en-US')} parameters · ` +
        `vocab ${info.vocab_size} · ${info.max_positions} positions`,
    );
    console.log(`  chat template: ${info.chat_template ? 'yes' : 'none'}`);
    console.log(
      `  default LoRA targets: ${info.default_target_modules.join(', ')}\n` +
        `  LoRA can target (target_modules): ${suffixes.join(', ')}, or all-linear`,
    );
    for (const l of linears) console.log(`    ${l.name}  [${l.out} × ${l.in}]${l.bias ? ' + bias' : ''}`);
    return 0;
  } finally {
    model.dispose();
  }
}

/** The label count a checkpoint's head was saved with (id2label, else num_labels), else transformers' default 2. */
function checkpointLabels(config: HFConfig): number {
  const id2label = config.id2label;
  if (id2label && typeof id2label === 'object') return Object.keys(id2label).length;
  return typeof config.num_labels === 'number' ? config.num_labels : 2;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
