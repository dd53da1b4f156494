// The PyTorch side of the bench: finds a Python that can import torch, and runs bench/torch_llama_lora.py (the Llama
// rows) or bench/torch_gpt2_bert_lora.py (GPT-2, BERT): the same model, batch, LoRA and LoRA+ AdamW in plain torch, at
// a given thread count, so that each tfjs row has a reference measured like with like. Threads:
// torch.set_num_threads(n) in the script, OMP/OpenBLAS/MKL threads = n here, and OMP_WAIT_POLICY=PASSIVE (without it
// OpenMP's spinning threads fight OpenBLAS's).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { SPECS, STORIES_DIR, WARMUP, type ModelId } from './models';
import { runChild, type Row } from './rows';

export type TorchCheck = { ok: true; python: string; version: string } | { ok: false; why: string };

/** The first Python that can import torch: $PYTHON, python3 on PATH, then Debian's own /usr/bin/python3 (where
 *  python3-torch installs, and which a pyenv or venv python3 on PATH does not see). */
export function torchAvailable(): TorchCheck {
  const candidates = [...new Set([process.env.PYTHON, 'python3', '/usr/bin/python3'].filter((p): p is string => !!p))];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' });
    if (r.status === 0) return { ok: true, python, version: r.stdout.trim() };
  }
  return { ok: false, why: 'not installed (apt-get install python3-torch)' };
}

/** One PyTorch row: `steps` timed steps (null: as many as fit the model's time budget) on `threads` threads. */
export function runTorch(python: string, model: ModelId, threads: number, steps: number | null): Promise<Row> {
  const spec = SPECS[model];
  // __dirname is dist/ once bundled.
  const script = path.resolve(
    __dirname,
    '..',
    'bench',
    model === 'gpt2' || model === 'bert-base' ? 'torch_gpt2_bert_lora.py' : 'torch_llama_lora.py',
  );
  const args = [
    script,
    '--model',
    model,
    '--batch',
    String(spec.batch),
    '--seq',
    String(spec.seq),
    '--threads',
    String(threads),
    '--warmup',
    String(WARMUP),
    '--budget',
    String(spec.budgetS),
  ];
  if (model === 'stories260k') args.push('--model-dir', STORIES_DIR);
  if (steps !== null) args.push('--steps', String(steps));
  const n = String(threads);
  const env = {
    ...process.env,
    OMP_WAIT_POLICY: 'PASSIVE',
    OMP_NUM_THREADS: n,
    OPENBLAS_NUM_THREADS: n,
    MKL_NUM_THREADS: n,
  };
  return runChild(python, args, env, { side: 'torch', model, backend: 'pytorch' });
}
