// `npm run bench:tune`: does the tuner find what a full grid search finds, for a fraction of its steps? On stories260k
// with SST-2 (classification: a fresh head, LoRA r 8 on all linear layers, batch 32, 600 steps; causal-LM adaptation
// on the sentences: 300 steps), for each seed it runs the tuner and the full grid (4 learning rates × 5 ratios; the
// grid is completed from the tuner's own trial folders, bench/tune-job.ts) and reports: the grid's best final dev
// metric, the tuner's pick and its final dev metric, the fraction of the grid's steps the tuner spent, whether the
// pick is a cell the grid shows diverging or collapsed, and the riemannian optimizer at its default learning rate.
// A benchmark, not a test: it never fails on a number. Each job runs in its own process (`--jobs` at once); its
// result is kept in the work folder, so `--report` prints the table again and a cut-short bench keeps what it did.
//   npm run bench:tune -- [--tasks cls,lm] [--seeds 1,2,3] [--jobs 2] [--cls-steps 600] [--lm-steps 300]
//                         [--work DIR] [--grid-from DIR] [--report] [--json]
// --grid-from DIR: where DIR holds an earlier <task>-seed<N>.json, take its grid and riemannian figures and run only
// the tuner (after a change to the tuner: the grid's cells train the same either way).
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fmtSetting } from '../src/protocol/tune';
import { runJob, TASKS, type Cell, type JobResult, type TaskId } from './tune-job';

const { values: opt } = parseArgs({
  options: {
    tasks: { type: 'string', default: 'cls,lm' },
    seeds: { type: 'string', default: '1,2,3' },
    jobs: { type: 'string', default: '2' },
    'cls-steps': { type: 'string', default: String(TASKS.cls.steps) },
    'lm-steps': { type: 'string', default: String(TASKS.lm.steps) },
    work: { type: 'string', default: path.resolve(__dirname, '..', '.bench-work', 'tune') },
    report: { type: 'boolean', default: false },
    'grid-from': { type: 'string' },
    json: { type: 'boolean', default: false },
    worker: { type: 'string' }, // internal: "task:seed:steps"
  },
});
const work = path.resolve(opt.work!);
const resultFile = (task: TaskId, seed: number) => path.join(work, `${task}-seed${seed}.json`);
const log = (s: string) => process.stderr.write(`${s}\n`);

/** Targets (issue 17): within 1.5 accuracy points or 2% perplexity of the grid's best, on ≥ 2 of 3 seeds. */
const CLOSE = { accuracy: 0.015, perplexity: 0.02 };
const MAX_SPENT = 0.25;

async function main(): Promise<void> {
  if (opt.worker) {
    const [task, seed, steps] = opt.worker.split(':');
    const earlier = opt['grid-from'] && path.join(path.resolve(opt['grid-from']), `${task}-seed${seed}.json`);
    const gridFrom =
      earlier && fs.existsSync(earlier)
        ? { file: earlier, result: JSON.parse(fs.readFileSync(earlier, 'utf8')) as JobResult }
        : undefined;
    const dir = path.join(work, `${task}-seed${seed}`);
    const r = await runJob(task as TaskId, Number(seed), Number(steps), dir, gridFrom);
    const file = resultFile(r.task, r.seed);
    fs.writeFileSync(`${file}.tmp`, JSON.stringify(r, null, 1));
    fs.renameSync(`${file}.tmp`, file);
    return;
  }
  const tasks = opt.tasks!.split(',').map((t) => t.trim() as TaskId);
  const seeds = opt.seeds!.split(',').map(Number);
  const bad = tasks.find((t) => !(t in TASKS));
  if (bad) throw new Error(`--tasks: '${bad}' is not one of ${Object.keys(TASKS).join(', ')}`);
  if (!opt.report) await runAll(tasks, seeds);
  const results = tasks.flatMap((t) => seeds.map((s) => readResult(t, s))).filter((r): r is JobResult => !!r);
  process.stdout.write(opt.json ? `${JSON.stringify(results, null, 1)}\n` : report(tasks, results));
}

/** Every task × seed in its own process, `--jobs` at a time (each on one wasm thread). */
async function runAll(tasks: TaskId[], seeds: number[]): Promise<void> {
  fs.mkdirSync(work, { recursive: true });
  const steps = (t: TaskId) => Number(t === 'cls' ? opt['cls-steps'] : opt['lm-steps']);
  const queue = seeds.flatMap((s) => tasks.map((t) => `${t}:${s}:${steps(t)}`)); // both tasks get seeds early
  const one = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const began = Date.now();
      log(`bench:tune: ${job} started`);
      const code = await new Promise<number>((resolve) => {
        const args = ['--import', 'tsx', __filename, '--worker', job, '--work', work];
        if (opt['grid-from']) args.push('--grid-from', opt['grid-from']);
        const child = spawn(process.execPath, args, {
          stdio: ['ignore', 'inherit', 'inherit'],
          env: { ...process.env, LORAPLUS_WASM_THREADS: '1' },
        });
        child.on('exit', (c) => resolve(c ?? 1));
      });
      log(`bench:tune: ${job} ${code === 0 ? 'done' : `FAILED (exit ${code})`} in ${(Date.now() - began) / 1000}s`);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Number(opt.jobs)) }, one));
}

function readResult(task: TaskId, seed: number): JobResult | null {
  try {
    return JSON.parse(fs.readFileSync(resultFile(task, seed), 'utf8')) as JobResult;
  } catch {
    return null;
  }
}

// ---- the table ------------------------------------------------------------------------------------------------------

const value = (r: JobResult, f: Cell['final']) => (f ? (r.metric === 'accuracy' ? f.accuracy! : f.perplexity!) : NaN);
const better = (r: JobResult, a: number, b: number) => (r.metric === 'accuracy' ? a > b : a < b);
const show = (r: JobResult, v: number) =>
  !Number.isFinite(v) ? 'diverged' : r.metric === 'accuracy' ? `${(100 * v).toFixed(1)}%` : v.toFixed(2);
const cellName = (c: { learning_rate: number; loraplus_lr_ratio: number }) =>
  `lr ${fmtSetting(c.learning_rate)} λ ${fmtSetting(c.loraplus_lr_ratio)}`;

/** One decimal, without a "-0.0" for a gap that rounds to nothing. */
const fixed1 = (x: number) => (Math.abs(x) < 0.05 ? 0 : x).toFixed(1);

/** A cell an earlier result (--grid-from) has no figure for: neither failed nor a candidate for the best. */
const unknown = (c: Cell) => !c.final && !c.diverged;

/** The grid's verdict on a cell: diverged, collapsed (classification: no better than the majority class), or ok. */
function failed(r: JobResult, c: Cell, majority: number): boolean {
  if (unknown(c)) return false;
  if (c.diverged || !c.final) return true;
  return r.metric === 'accuracy' && value(r, c.final) <= majority + 0.005;
}

/** The majority class's share of the dev set: what a collapsed classifier scores. */
function majorityShare(): number {
  const dev = path.resolve(__dirname, '..', '..', 'shared', 'data', 'glue-sst2', 'dev.tsv');
  const labels = fs
    .readFileSync(dev, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.split('\t').at(-1));
  const ones = labels.filter((l) => l === '1').length;
  return Math.max(ones, labels.length - ones) / labels.length;
}

function report(tasks: TaskId[], results: JobResult[]): string {
  const majority = majorityShare();
  const out: string[] = [];
  for (const task of tasks) {
    const rs = results.filter((r) => r.task === task);
    out.push(`\n${TASKS[task].label}, ${rs[0]?.steps ?? TASKS[task].steps} steps (dev ${rs[0]?.metric ?? ''})\n`);
    if (!rs.length) {
      out.push('(no results yet)\n');
      continue;
    }
    out.push('| seed | grid best | tuner pick | tuner − best | tuner steps / grid | pick fails in grid | riemannian |');
    out.push('|---:|---|---|---:|---:|---|---|');
    let close = 0;
    const notes: string[] = [];
    for (const r of rs) {
      const ok = r.cells.filter((c) => !failed(r, c, majority) && !unknown(c));
      const best = ok.reduce<Cell | null>(
        (b, c) => (!b || better(r, value(r, c.final), value(r, b.final)) ? c : b),
        null,
      );
      const pick = r.cells.find((c) => c.trial === r.tuner.trial)!;
      const tv = value(r, r.tuner.eval);
      if (r.grid_from) {
        const same = show(r, tv) === show(r, value(r, pick.final)); // to the grid's 0.1 point
        notes.push(
          unknown(pick)
            ? `seed ${r.seed}: grid from ${r.grid_from} (an earlier run), which has no figure for the tuner's pick`
            : `seed ${r.seed}: grid from ${r.grid_from} (an earlier run); the tuner's pick scores ` +
                `${show(r, tv)} now and ${show(r, value(r, pick.final))} in that grid: ${same ? 'equal' : 'DIFFERENT'}`,
        );
      }
      const bv = best ? value(r, best.final) : NaN;
      const gap = r.metric === 'accuracy' ? tv - bv : (tv - bv) / bv;
      if (r.metric === 'accuracy' ? gap >= -CLOSE.accuracy : gap <= CLOSE.perplexity) close++;
      const spent = r.tuner.spent_steps / r.tuner.full_grid_steps;
      const rie = r.riemannian
        ? `${show(r, value(r, r.riemannian.final))} (lr ${fmtSetting(r.riemannian.learning_rate)})`
        : 'n/a';
      out.push(
        `| ${r.seed} | ${best ? `${show(r, bv)} (${cellName(best)})` : 'none'} | ${show(r, tv)} (${cellName(pick)}) | ` +
          `${fixed1(100 * gap)}${r.metric === 'accuracy' ? ' pt' : '%'} | ` +
          `${(100 * spent).toFixed(0)}% | ${failed(r, pick, majority) ? 'YES' : 'no'} | ${rie} |`,
      );
    }
    out.push('', ...notes, ...(notes.length ? [''] : []));
    out.push(gridTable(rs[0], majority));
    const spentOk = rs.every((r) => r.tuner.spent_steps / r.tuner.full_grid_steps <= MAX_SPENT);
    const neverFailed = rs.every(
      (r) =>
        !failed(
          r,
          r.cells.find((c) => c.trial === r.tuner.trial)!,
          majority,
        ),
    );
    const need = Math.min(2, rs.length);
    out.push(
      `targets: within ${task === 'cls' ? '1.5 points' : '2%'} of the grid's best on ≥ ${need} of ${rs.length} ` +
        `seed(s): ${close >= need ? 'MET' : 'MISSED'} (${close}); ≤ 25% of the grid's steps: ` +
        `${spentOk ? 'MET' : 'MISSED'}; never a failing cell: ${neverFailed ? 'MET' : 'MISSED'}\n`,
    );
  }
  out.push(`collapsed = dev accuracy ≤ the majority class's share (${(100 * majority).toFixed(1)}%) + 0.5 pt\n`);
  return `${out.join('\n')}\n`;
}

/** One seed's whole grid: final dev metric per learning rate × λ. */
function gridTable(r: JobResult, majority: number): string {
  const lrs = [...new Set(r.cells.map((c) => c.learning_rate))];
  const ratios = [...new Set(r.cells.map((c) => c.loraplus_lr_ratio))];
  const rows = [`grid, seed ${r.seed} (rows lr_A, columns λ; * the tuner's pick, ! diverged or collapsed):`, ''];
  rows.push(`| lr_A \\ λ | ${ratios.map(fmtSetting).join(' | ')} |`, `|---|${ratios.map(() => '---:').join('|')}|`);
  for (const lr of lrs) {
    const cells = ratios.map((ratio) => {
      const c = r.cells.find((x) => x.learning_rate === lr && x.loraplus_lr_ratio === ratio)!;
      const mark = (c.trial === r.tuner.trial ? '*' : '') + (failed(r, c, majority) ? '!' : '');
      return unknown(c) ? `?${mark}` : `${show(r, value(r, c.final))}${mark}`;
    });
    rows.push(`| ${fmtSetting(lr)} | ${cells.join(' | ')} |`);
  }
  return `${rows.join('\n')}\n`;
}

main().catch((err: unknown) => {
  log(`bench:tune: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
});
