// Renders engine events for a terminal: a live progress line on a TTY (loss, steps/s, ETA), plain lines otherwise
// (CI logs, pipes). The engine itself never prints; this is the CLI's half.
import { backendSummary } from '../../protocol/backend';
import { formatError } from '../../protocol/errors';
import type { EngineEvent, RunStartEvent, SamplesEvent } from '../../protocol/events';
import { formatDuration, RunTiming } from '../../protocol/progress';

export interface Renderer {
  (e: EngineEvent): void;
}

export function createRenderer(out: NodeJS.WriteStream = process.stderr, opts: { quiet?: boolean } = {}): Renderer {
  const tty = Boolean(out.isTTY);
  let total = 0;
  let startStep = 0;
  let started = Date.now();
  let lastPlain = 0;
  let timing = new RunTiming();
  let liveLine = false;
  const line = (s: string) => {
    if (liveLine) out.write('\r\x1b[2K');
    liveLine = false;
    out.write(`${s}\n`);
  };
  return (e) => {
    if (e.type === 'run_start') timing = new RunTiming();
    timing.fold(e);
    switch (e.type) {
      case 'run_start': {
        total = e.total_steps;
        startStep = e.start_step;
        started = Date.now();
        line(`run ${e.run_name} → ${e.run_dir}`);
        line(`backend: ${backendLine(e)}`);
        line(
          `model ${e.model_type} ${e.model} · task ${e.task} · ${fmtInt(e.params.total)} params, ${fmtInt(e.params.trainable)} trainable (${pct(e.params.trainable, e.params.total)})`,
        );
        line(
          `LoRA r=${e.lora.r} α=${e.lora.lora_alpha} on ${e.lora.target_modules.length} modules · ${optimizerText(e)}: ${e.groups.map((g) => `${g.name} lr ${g.lr.toExponential(2)} (${g.params.length})`).join(', ')}`,
        );
        line(
          `${e.train_examples} train / ${e.eval_examples} eval examples · ${total} steps${startStep ? `, resuming at step ${startStep}` : ''}`,
        );
        break;
      }
      case 'step': {
        if (opts.quiet) break;
        const done = e.step - startStep;
        const rate = done / Math.max(1e-3, (Date.now() - started) / 1000);
        const eta = timing.eta() ?? (total - e.step) / Math.max(1e-9, rate); // evals to come included
        const text = `step ${e.step}/${total} loss ${e.loss.toFixed(4)} · ${rate.toFixed(2)} steps/s · ${Math.round(e.tokens_per_s)} tok/s · ETA ${fmtTime(eta)}`;
        if (tty) {
          const width = 24;
          const filled = Math.round((e.step / total) * width);
          out.write(`\r\x1b[2K[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}`);
          liveLine = true;
        } else if (Date.now() - lastPlain > 2000 || e.step === total || e.step === startStep + 1) {
          lastPlain = Date.now();
          line(text);
        }
        break;
      }
      case 'eval_progress': {
        if (opts.quiet) break;
        const text = `evaluating at step ${e.step}: ${e.done}/${e.total} examples`;
        if (tty) {
          out.write(`\r\x1b[2K${text}`);
          liveLine = true;
        } else if (e.done === 0) line(`${text}…`); // once per eval: the eval line follows
        break;
      }
      case 'eval': {
        const share = (x: number) => `${(100 * x).toFixed(1)}%`;
        const figures = [
          `loss ${e.loss.toFixed(4)}`,
          e.perplexity !== undefined && `perplexity ${e.perplexity.toFixed(2)}`,
          e.accuracy !== undefined && `accuracy ${share(e.accuracy)}`,
          e.token_accuracy !== undefined && `token accuracy ${share(e.token_accuracy)}`,
          e.exact_match !== undefined && `exact match ${share(e.exact_match)}`,
        ];
        line(`eval @ step ${e.step}: ${figures.filter(Boolean).join(' · ')} (${e.examples} examples)`);
        break;
      }
      case 'samples':
        line(samplesLine(e));
        break;
      case 'checkpoint':
        line(`${e.kind === 'final' ? 'final adapter' : 'checkpoint'} @ step ${e.step}: ${e.path}`);
        break;
      case 'log':
        line(`${e.level === 'warning' ? 'warning: ' : ''}${e.message}`);
        break;
      case 'error':
        line(`error: ${formatError(e.error)}`);
        break;
      case 'end':
        line(
          `${e.status} at step ${e.step} after ${fmtTime(e.elapsed_s)}${e.final_adapter ? ` · adapter: ${e.final_adapter}` : e.last_checkpoint ? ` · resume from: ${e.last_checkpoint}` : ''}`,
        );
        break;
    }
  };
}

/** "samples @ step 40: exact match 80%, e.g. 'positive' → 'positive'": one line, whatever the answers hold. */
export function samplesLine(e: SamplesEvent): string {
  const quote = (s: string) => {
    const flat = s.replace(/\s+/g, ' ').trim();
    return `'${flat.length > 40 ? `${flat.slice(0, 39)}…` : flat}'`;
  };
  const n = e.samples.length;
  const score =
    e.exact_match !== undefined
      ? `exact match ${Math.round(100 * e.exact_match)}%`
      : `${n} answer${n === 1 ? '' : 's'}`;
  const first = e.samples[0];
  return `samples @ step ${e.step}: ${score}${first ? `, e.g. ${quote(first.reference)} → ${quote(first.output)}` : ''}`;
}

/** `LoRA+ λ=16`, or PEFT's optimizer that trained instead: `riemannian (reg 0.01)`, `lorafa (lora_A frozen)`. */
export function optimizerText(e: Pick<RunStartEvent, 'optimizer' | 'optimizer_args' | 'loraplus_lr_ratio'>): string {
  const name = e.optimizer ?? 'adamw';
  if (name === 'adamw') return `LoRA+ λ=${e.loraplus_lr_ratio}`;
  const args = Object.entries(e.optimizer_args ?? {}).map(([k, v]) => `${k} ${v}`);
  if (name === 'lorafa') args.push('lora_A frozen');
  return `${name}${args.length ? ` (${args.join(', ')})` : ''}`;
}

/** The one duration format (src/protocol/progress.ts): "12.3s", "3m 05s", "1h 02m"; "?" when unknown. */
export function fmtTime(s: number): string {
  return formatDuration(Number.isFinite(s) ? s : NaN);
}

/** "CPU · WebAssembly SIMD, 2 threads — no GPU found (CUDA: … · WebGPU: …)": information, not an error. */
export function backendLine(e: RunStartEvent): string {
  const b = backendSummary(e);
  return `${b.text}${b.details.length ? ` (${b.details.join(' · ')})` : ''}`;
}

function fmtInt(n: number): string {
  return n.toLocaleString('en-US');
}

function pct(a: number, b: number): string {
  return `${((100 * a) / Math.max(1, b)).toFixed(2)}%`;
}
