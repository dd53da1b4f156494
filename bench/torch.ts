// The PyTorch side of the bench: finds every PyTorch build on the machine (a pip wheel in a venv, Debian's
// python3-torch, ...), asks each which BLAS it uses and how fast its float32 matmul is (bench/torch_probe.py), and
// runs the same model, batch, LoRA and LoRA+ AdamW on each, at a given thread count, so that each tfjs row has a
// reference measured like with like and against the fastest build there is: bench/torch_llama_lora.py (the Llama
// rows), torch_gpt2_bert_lora.py (GPT-2, BERT), torch_hf_lora.py (Qwen3, Gemma 3: transformers' own classes with
// PEFT, so only a build with transformers and peft runs them). Threads: torch.set_num_threads(n) in the script,
// OMP/OpenBLAS/MKL threads = n here, and OMP_WAIT_POLICY=PASSIVE (without it OpenMP's spinning threads fight
// OpenBLAS's).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { benchConfig, HF_MODELS, SPECS, STORIES_DIR, WARMUP, type ModelId } from './models';
import { runChild, type Row } from './rows';

/** One PyTorch installation, as bench/torch_probe.py describes it. */
export interface TorchBuild {
  python: string;
  version: string;
  file: string; // torch/__init__.py, real path: two Pythons that share it are one build
  install: 'pip' | 'Debian';
  blas: string; // e.g. "MKL 2024.2", "OpenBLAS pthread", "reference BLAS (netlib)"
  gflops: number; // float32 1024³ matmul on one thread
  hf: string | null; // "transformers X, PEFT Y" when both import
  numpy: { blas: string; gflops: number } | null; // numpy's own BLAS in the same Python, for comparison
}

export type TorchCheck = { ok: true; builds: TorchBuild[] } | { ok: false; why: string };

// __dirname is dist/ once bundled.
const script = (name: string) => path.resolve(__dirname, '..', 'bench', name);

/** Where PyTorch may be: $PYTHON, $LORAPLUS_PYTHON (the tests' venv), python3 on PATH, Debian's own /usr/bin/python3
 *  (where python3-torch installs, which a pyenv or venv python3 on PATH does not see), and the venvs CI and local
 *  set-ups create. */
function candidates(): string[] {
  const home = os.homedir();
  return [
    process.env.PYTHON,
    process.env.LORAPLUS_PYTHON,
    'python3',
    '/usr/bin/python3',
    path.join(home, '.cache', 'loraplus-studio', 'venv', 'bin', 'python'),
    path.join(home, '.cache', 'loraplus-venv', 'bin', 'python'),
  ].filter((p): p is string => !!p && (!path.isAbsolute(p) || fs.existsSync(p)));
}

/** Every distinct PyTorch build the candidates reach, fastest matmul first. */
export function torchAvailable(): TorchCheck {
  const builds: TorchBuild[] = [];
  for (const python of new Set(candidates())) {
    const r = spawnSync(python, [script('torch_probe.py')], {
      encoding: 'utf8',
      timeout: 180_000,
      env: { ...process.env, ...threadEnv(1) },
    });
    if (r.status !== 0) continue;
    try {
      const b = JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchBuild;
      if (!builds.some((x) => x.file === b.file)) builds.push(b);
    } catch {
      // not the probe's output: a broken install, skipped like one without torch
    }
  }
  if (!builds.length)
    return {
      ok: false,
      why: 'not installed (apt-get install python3-torch libopenblas0-pthread, or pip install torch transformers peft)',
    };
  return { ok: true, builds: builds.sort((a, b) => b.gflops - a.gflops) };
}

/** "torch 2.13.0+cpu (pip), MKL 2024.2": how a build is named in rows and notes. */
export const buildName = (b: TorchBuild) => `torch ${b.version} (${b.install}), ${b.blas}`;

/** One PyTorch row: `steps` timed steps (null: as many as fit the model's time budget) on `threads` threads. */
export function runTorch(
  build: TorchBuild,
  model: ModelId,
  threads: number,
  steps: number | null,
  seqOverride: number | null,
): Promise<Row> {
  const spec = SPECS[model];
  const who = { side: 'torch' as const, model, backend: 'pytorch', threads };
  const hf = HF_MODELS.includes(model);
  if (hf && !build.hf)
    return Promise.resolve({
      ...who,
      skipped: `${buildName(build)} at ${build.python} has no transformers + peft (pip install transformers peft)`,
    });
  const name = hf ? 'torch_hf_lora.py' : model === 'gpt2' || model === 'bert-base' ? 'torch_gpt2_bert_lora.py' : null;
  const args = [
    ...[script(name ?? 'torch_llama_lora.py'), '--model', model, '--batch', String(spec.batch)],
    ...['--seq', String(seqOverride ?? spec.seq), '--threads', String(threads), '--warmup', String(WARMUP)],
    ...['--budget', String(spec.budgetS)],
  ];
  if (hf) args.push('--config', JSON.stringify(benchConfig(model)), '--targets', spec.targets.join(','));
  if (model === 'stories260k') args.push('--model-dir', STORIES_DIR);
  if (steps !== null) args.push('--steps', String(steps));
  const env = { ...process.env, ...threadEnv(threads) };
  return runChild(build.python, args, env, who);
}

function threadEnv(n: number): Record<string, string> {
  const t = String(n);
  return { OMP_WAIT_POLICY: 'PASSIVE', OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t };
}
