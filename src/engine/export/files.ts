// The launch side of an exported job: accelerate configs (one GPU, multi-GPU DDP, FSDP), launch.sh, an sbatch
// script for SLURM, requirements.txt and the job's README. Plain text; job.ts writes them.

/** The versions the export was tested with (test/python/export.test.ts runs the job on them). */
export const REQUIREMENTS = `# tested with these versions (CPU, 1 and 2 processes); newer ones usually work
torch==2.13.0
transformers==5.18.0
peft==0.21.0
accelerate==1.15.0
safetensors
`;

const ACCELERATE_COMMON = `compute_environment: LOCAL_MACHINE
machine_rank: 0
main_training_function: main
mixed_precision: 'no'
num_machines: 1
rdzv_backend: static
same_network: true
use_cpu: false
`;

export const ACCELERATE_CONFIGS: Record<string, string> = {
  'single_gpu.yaml': `${ACCELERATE_COMMON}distributed_type: 'NO'\nnum_processes: 1\ngpu_ids: '0'\n`,
  'multi_gpu.yaml': `${ACCELERATE_COMMON}distributed_type: MULTI_GPU\nnum_processes: 2\ngpu_ids: all\n`,
  'fsdp.yaml': `${ACCELERATE_COMMON}distributed_type: FSDP
num_processes: 2
gpu_ids: all
fsdp_config:
  fsdp_version: 2
  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP
  fsdp_state_dict_type: SHARDED_STATE_DICT
  fsdp_cpu_ram_efficient_loading: true
  fsdp_reshard_after_forward: true
`,
};

/** Passes every argument to accelerate launch; ACCELERATE_CONFIG picks a config, JOB_ARGS go to train.py. */
export const LAUNCH_SH = `#!/usr/bin/env bash
# Runs this job: bash launch.sh [accelerate launch options], e.g.
#   bash launch.sh --config_file accelerate/multi_gpu.yaml
#   bash launch.sh --cpu --num_processes 2
#   JOB_ARGS=--resume bash launch.sh --config_file accelerate/single_gpu.yaml
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
args=("$@")
cpu=0
n=1
for ((i = 0; i < \${#args[@]}; i++)); do
  case "\${args[i]}" in
    --cpu) cpu=1 ;;
    --num_processes) n="\${args[i + 1]:-1}" ;;
    --num_processes=*) n="\${args[i]#*=}" ;;
  esac
done
# accelerate's --cpu starts one process whatever --num_processes says: several CPU processes go through its
# multi-process launcher (torchrun) with ACCELERATE_USE_CPU, which then trains on gloo.
if [[ $cpu == 1 && $n -gt 1 ]]; then
  export ACCELERATE_USE_CPU=1
  rest=()
  for a in "\${args[@]}"; do [[ $a == --cpu ]] || rest+=("$a"); done
  args=(--multi_gpu "\${rest[@]}")
fi
# shellcheck disable=SC2086 # JOB_ARGS holds several words on purpose
exec accelerate launch "\${args[@]}" "$here/train.py" \${JOB_ARGS:-}
`;

export const SBATCH = `#!/usr/bin/env bash
# SLURM: sbatch job.sbatch (one task per node; accelerate starts one process per GPU on each node).
#SBATCH --job-name=loraplus
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --cpus-per-task=16
#SBATCH --output=%x-%j.log
set -euo pipefail
head_node=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
gpus=$((SLURM_NNODES * SLURM_GPUS_ON_NODE))
srun bash -c "bash launch.sh --config_file accelerate/multi_gpu.yaml --num_machines $SLURM_NNODES \\
  --num_processes $gpus --machine_rank \\$SLURM_NODEID --main_process_ip $head_node --main_process_port 29500"
`;

export function jobReadme(o: { runDir: string; model: string; task: string; steps: number }): string {
  return `# LoRA+ Studio job

Exported by \`loraplus export\`: the same run (${o.task} on \`${o.model}\`, ${o.steps} optimizer steps) on
PyTorch + transformers + PEFT + accelerate.

- \`job.json\`: the settings; \`config.yaml\`: the LoRA+ Studio config it came from (copied into the run folder).
- \`data/\`: \`train.jsonl\` and \`eval.jsonl\` hold every example already tokenized by LoRA+ Studio (\`labels\`
  -100 where a token carries no loss), \`order.json\` the example indices of every micro-batch in training order:
  train.py neither tokenizes nor shuffles, so it trains on exactly the batches LoRA+ Studio would.
- \`train.py\`: PEFT's \`create_loraplus_optimizer\` (\`create_riemannian_optimizer\`, \`create_lorafa_optimizer\`),
  transformers' schedule, clipping, gradient accumulation, eval, checkpoints, resume.

## Run

    pip install -r requirements.txt
    bash launch.sh --config_file accelerate/single_gpu.yaml     # one GPU
    bash launch.sh --config_file accelerate/multi_gpu.yaml      # DDP on every GPU of this machine
    bash launch.sh --config_file accelerate/fsdp.yaml           # FSDP (no per-module A/B figures)
    bash launch.sh --cpu --num_processes 2                      # two CPU processes, for a check
    sbatch job.sbatch                                           # SLURM, several nodes

\`training.batch_size\` is the global micro-batch: each process takes its share, so it must divide by the number
of processes. The run folder is \`${o.runDir}\` (relative to this folder); \`JOB_ARGS="--run-dir DIR"\` puts it
elsewhere, \`JOB_ARGS=--resume\` continues it from its latest checkpoint. When the model is a local folder on
another machine, set \`model\` in \`job.json\` to its path there (or to its Hub id).

## Bring the run back

Copy the run folder into the \`output_dir\` of your LoRA+ Studio workspace: \`metrics.jsonl\` holds LoRA+ Studio's
events, \`checkpoints/step-N/\` and \`final/\` are PEFT adapters, so the explorer, the dashboard, compare and
\`loraplus merge\` read it like any other run (resuming it in LoRA+ Studio's own engine is not supported: resume it
here).
`;
}
