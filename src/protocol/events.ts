// The engine's typed events: `train(config, onEvent, signal)` emits these and nothing else. The CLI prints them, the
// extension host forwards them to dashboards, and every one is also a line of the run's metrics.jsonl, so a
// dashboard can be rebuilt from the file alone.
import type { ErrorInfo } from './errors';

/** One LoRA+ optimizer group (PEFT create_loraplus_optimizer): which tensors, at which learning rate. */
export interface ParamGroupInfo {
  name: 'A' | 'B' | 'B_no_decay' | 'embedding';
  lr: number; // peak learning rate of the group
  weight_decay: number;
  params: string[]; // PEFT names, e.g. model.layers.0.self_attn.q_proj.lora_B.weight
}

/** Per LoRA module and step: the quantities LoRA+ is about (Frobenius norms). */
export interface ModuleStats {
  module: string; // e.g. model.layers.0.self_attn.q_proj
  grad_A: number; // ‖∇A‖ (after clipping, before the update)
  grad_B: number; // ‖∇B‖
  delta_A: number; // ‖ΔA‖, the update actually applied
  delta_B: number; // ‖ΔB‖
  out_A?: number; // ‖scaling·B·ΔA‖_F: the change of the module's output map due to A's update (absent in older runs)
  out_B?: number; // ‖scaling·ΔB·A‖_F: ... due to B's update; out_B/out_A is the A/B view's balance ratio
}

export interface RunStartEvent {
  type: 'run_start';
  time: string;
  run_name: string;
  run_dir: string;
  backend: string; // tfjs backend: tensorflow | webgpu | wasm | cpu
  device: string; // human-readable device name
  threads: number; // CPU threads the backend computes on (wasm: its thread count; 1 for the others)
  backend_notes: string[]; // why better backends (or more wasm threads) were not used
  model: string;
  model_type: string;
  task: string;
  total_steps: number;
  start_step: number; // > 0 when resumed
  params: { total: number; trainable: number; lora: number };
  lora: { r: number; lora_alpha: number; scaling: number; target_modules: string[]; modules_to_save: string[] };
  loraplus_lr_ratio: number; // λ as applied: 1 with riemannian and lorafa (one learning rate)
  optimizer?: string; // training.optimizer: adamw (LoRA+), riemannian, lorafa (absent in older runs: adamw)
  optimizer_args?: Record<string, number>; // the PEFT parameters it took beyond the config's, e.g. {reg: 0.01}
  groups: ParamGroupInfo[];
  train_examples: number;
  eval_examples: number;
  eval_every?: number; // training.eval_every (absent in older runs): with eval_examples, when evals come
  world_size?: number; // processes that trained: an exported job on accelerate (absent for our engine: 1)
  devices?: string[]; // each process's device there, e.g. cuda:0, cuda:1
}

export interface StepEvent {
  type: 'step';
  step: number; // optimizer steps done, 1-based after the update
  epoch: number; // fractional epoch
  loss: number; // training loss of this step (mean over its micro-batches), before the update
  lr: Record<string, number>; // current learning rate of each group, by ParamGroupInfo.name
  grad_norm: number; // global ‖∇‖ before clipping
  tokens_per_s: number;
  tokens_seen: number;
  elapsed_s: number;
  modules: ModuleStats[];
}

export interface EvalEvent {
  type: 'eval';
  step: number;
  loss: number;
  accuracy?: number; // sequence classification
  perplexity?: number; // causal LM and sft (sft: over the answer tokens)
  token_accuracy?: number; // sft: how often the most likely next token is the answer's (TRL's mean_token_accuracy)
  exact_match?: number; // sft with eval.generate and short answers: generated answers equal to the reference
  examples: number;
  elapsed_s?: number; // the run's clock when the eval (and its samples) finished (absent in older runs)
}

/**
 * An eval under way: `done` of `total` examples evaluated at `step`. One with done 0 as it starts, then at most
 * about one a second, so a long eval (the baseline before step 1 among them) never looks frozen; its `eval` event
 * follows. Views keep only the latest.
 */
export interface EvalProgressEvent {
  type: 'eval_progress';
  step: number;
  done: number;
  total: number;
  elapsed_s: number;
}

/** One eval prompt answered by the model as it is at that step (sft, eval.generate). */
export interface Sample {
  prompt: string; // as the model saw it: the chat template's rendering, generation prompt included
  reference: string; // the data's answer
  output: string; // the model's greedy answer, special tokens left out
}

/** The answers of one eval (sft with eval.generate), right after its eval event. */
export interface SamplesEvent {
  type: 'samples';
  step: number;
  samples: Sample[];
  exact_match?: number; // when every reference is a short label: the share answered exactly (trimmed, any case)
}

/** Whether an answer matches its reference for exact_match: trimmed, runs of spaces as one, in any case. */
export function sameAnswer(output: string, reference: string): boolean {
  const norm = (s: string) => s.trim().replace(/\s+/g, ' ').toLowerCase();
  return norm(output) === norm(reference);
}

export interface CheckpointEvent {
  type: 'checkpoint';
  step: number;
  path: string;
  kind: 'checkpoint' | 'final';
}

export interface LogEvent {
  type: 'log';
  level: 'info' | 'warning';
  message: string;
}

export interface EndEvent {
  type: 'end';
  status: 'finished' | 'stopped' | 'failed';
  step: number;
  elapsed_s: number;
  final_adapter: string | null;
  last_checkpoint: string | null;
}

export interface ErrorEvent {
  type: 'error';
  step: number | null;
  error: ErrorInfo;
}

/**
 * A run's status, everywhere (explorer, dashboard, status bar): what its end event says, else running while a
 * process writes it, else interrupted (killed, or the machine slept). Decided once, in src/engine/runs/summary.ts.
 */
export const RUN_STATUSES = ['running', 'finished', 'stopped', 'failed', 'interrupted'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

export type EngineEvent =
  | RunStartEvent
  | StepEvent
  | EvalProgressEvent
  | EvalEvent
  | SamplesEvent
  | CheckpointEvent
  | LogEvent
  | EndEvent
  | ErrorEvent;
export type EventSink = (event: EngineEvent) => void;
