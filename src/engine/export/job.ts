// `loraplus export CONFIG --to accelerate`: a self-contained job folder that trains the same run on PyTorch +
// transformers + PEFT + accelerate (train-py.ts), with the data as our engine sees it (data.ts) and the launch files
// (files.ts). The job writes a run folder in our layout, so the explorer, dashboards, compare and merge read it.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { readSafetensorsHeader } from '../../adapters/safetensors';
import { ADAPTER_WEIGHTS_FILE, saveAdapter } from '../../adapters/peft';
import type { TrainConfig } from '../../config/schema';
import { LoraPlusError } from '../../protocol/errors';
import type { ExportSummary } from '../../protocol/host';
import { usesRatio } from '../../protocol/tune';
import { hubIdOf } from '../hub/cache';
import { runName } from '../runs/names';
import { initialAdapter } from '../train/init-adapter';
import { datasetSize, loadData, openModelFolder, padId, type ModelFolder } from '../train/inputs';
import { taskType } from '../train/trainer';
import { exportRows, microBatches, totalSteps, writeJsonl } from './data';
import { ACCELERATE_CONFIGS, jobReadme, LAUNCH_SH, REQUIREMENTS, SBATCH } from './files';
import { TRAIN_PY } from './train-py';

export interface ExportOptions {
  out: string; // the job folder: created, or an empty one
  runDir?: string; // where the job writes its run folder; default runs/<run name> inside the job folder
  configFile?: string; // names the default run folder, as `loraplus train` does
}

export type ExportResult = ExportSummary;

export async function exportJob(config: TrainConfig, o: ExportOptions): Promise<ExportResult> {
  const dir = path.resolve(o.out);
  requireEmpty(dir);
  const folder = openModelFolder(config.model);
  const data = loadData(config, folder.tokenizer);
  const pad = padId(folder);
  const n = datasetSize(data.train);
  const steps = totalSteps(config.training, n);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  writeJsonl(path.join(dir, 'data', 'train.jsonl'), exportRows(data.train, pad));
  const evalRows = data.eval ? exportRows(data.eval, pad) : [];
  if (evalRows.length) writeJsonl(path.join(dir, 'data', 'eval.jsonl'), evalRows);
  fs.writeFileSync(path.join(dir, 'data', 'order.json'), JSON.stringify(microBatches(config.training, n, steps)));
  const init = copyInitAdapter(config, dir) ?? (await writeOurInit(config, folder, data.labels.length, dir));
  const runDir = o.runDir ? path.resolve(o.runDir) : path.join('runs', runName(config, o.configFile));
  const job = {
    model: hubIdOf(config.model) ?? path.resolve(config.model),
    model_type: String(folder.config.model_type),
    task: config.task,
    labels: data.labels,
    pad_id: pad,
    run_dir: runDir,
    batches_per_epoch: Math.ceil(n / config.training.batch_size),
    lora: loraSettings(config, folder.family.defaultTargets, init),
    training: { ...config.training, reg: config.training.optimizer_args.reg, total_steps: steps },
    loraplus: loraplusJson(config),
  };
  writeFiles(dir, {
    'job.json': `${JSON.stringify(job, null, 2)}\n`,
    'config.yaml': `# The config as exported (defaults filled, paths resolved).\n${stringify(config)}`,
    'train.py': TRAIN_PY,
    'launch.sh': LAUNCH_SH,
    'job.sbatch': SBATCH,
    'requirements.txt': REQUIREMENTS,
    'README.md': jobReadme({ runDir, model: job.model, task: config.task, steps }),
    ...Object.fromEntries(Object.entries(ACCELERATE_CONFIGS).map(([k, v]) => [`accelerate/${k}`, v])),
  });
  return { dir, runDir, trainExamples: n, evalExamples: evalRows.length, steps };
}

/** PEFT's LoraConfig fields; an init adapter fixes the targets to its own modules (as our Trainables does). */
function loraSettings(config: TrainConfig, defaults: string[], init: { file: string; modules: string[] } | null) {
  const l = config.lora;
  return {
    r: l.r,
    lora_alpha: l.lora_alpha,
    lora_dropout: l.lora_dropout,
    use_rslora: l.use_rslora,
    target_modules: init ? init.modules : (l.target_modules ?? defaults),
    modules_to_save: l.modules_to_save?.length ? l.modules_to_save : null,
    init_adapter: init?.file ?? null,
    task_type: taskType(config),
  };
}

/** What our runs put in loraplus.json beside the adapter: λ as applied, lr_A, the optimizer and its arguments. */
function loraplusJson(config: TrainConfig) {
  const t = config.training;
  return {
    loraplus_lr_ratio: usesRatio(t.optimizer) ? t.loraplus_lr_ratio : 1,
    optimizer: t.optimizer,
    optimizer_args: t.optimizer === 'riemannian' ? { reg: t.optimizer_args.reg } : {},
    learning_rate: t.learning_rate,
  };
}

/** lora.init_adapter (a PEFT folder or a bare .safetensors file) copied into the job, and the modules it adapts. */
function copyInitAdapter(config: TrainConfig, dir: string): { file: string; modules: string[] } | null {
  const src = config.lora.init_adapter;
  if (!src) return null;
  const file = fs.statSync(src).isFile() ? src : path.join(src, ADAPTER_WEIGHTS_FILE);
  fs.copyFileSync(file, path.join(dir, 'init_adapter.safetensors'));
  const suffix = '.lora_A.weight';
  const modules = readSafetensorsHeader(file)
    .tensors.map((t) => t.name)
    .filter((k) => k.endsWith(suffix))
    .map((k) => k.slice(0, -suffix.length).replace(/^base_model\.model\./, ''));
  return { file: 'init_adapter.safetensors', modules };
}

/**
 * Without lora.init_adapter, the adapter our engine would start from (init_adapter/, a PEFT folder): PyTorch would
 * otherwise draw other random A (and a fresh head), and the two stacks would train different runs.
 */
async function writeOurInit(config: TrainConfig, folder: ModelFolder, labels: number, dir: string) {
  const adapter = await initialAdapter(config, folder, labels);
  saveAdapter(path.join(dir, 'init_adapter'), adapter);
  return { file: `init_adapter/${ADAPTER_WEIGHTS_FILE}`, modules: [...adapter.lora.keys()] };
}

function requireEmpty(dir: string): void {
  if (fs.existsSync(dir) && fs.readdirSync(dir).length > 0) {
    throw new LoraPlusError({
      code: 'export/not-empty',
      message: `${dir} is not empty`,
      file: dir,
      hint: 'Export into a new or empty folder (--out).',
    });
  }
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, text, { mode: name.endsWith('.sh') || name.endsWith('.sbatch') ? 0o755 : 0o644 });
  }
}
