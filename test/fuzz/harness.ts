// A small property/fuzz harness: generated inputs run through the code a user would hit, and each outcome is
// classified as success, a clean error (a LoraPlusError with a code, a message and where it happened), or anything
// else (a raw exception, a wrong result the check catches, a hang past the time limit). A test asserts that
// "anything else" never happens. Seeded, so a failure names the case that reproduces it.
//   LORAPLUS_FUZZ_N=1000 node scripts/run-tests.mjs test/fuzz   (more cases per property; prints the counts)
import { LoraPlusError } from '../../src/protocol/errors';

export type Outcome = 'success' | 'clean error' | 'anything else';

export interface FuzzReport {
  counts: Record<Outcome, number>;
  failures: { seed: number; input: string; why: string }[];
}

/** The cases per property: LORAPLUS_FUZZ_N, else `n` (kept small so `npm test` stays quick). */
export function cases(n: number): number {
  const env = Number(process.env.LORAPLUS_FUZZ_N);
  return Number.isFinite(env) && env > 0 ? env : n;
}

/** Mulberry32: a tiny seeded generator, so every case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
export const int = (r: () => number, lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));

/**
 * A clean error says what (a code and a message) and where: `where` decides whether this error names its place
 * well enough (a file, a line, a YAML path), as the case requires.
 */
export function isCleanError(err: unknown, where: (e: LoraPlusError) => boolean = () => true): boolean {
  return (
    err instanceof LoraPlusError &&
    /^[a-z-]+\/[a-z0-9-]+$/.test(err.info.code) &&
    err.info.message.length > 0 &&
    !/\bat \S+:\d+:\d+\)?$/m.test(err.info.message) && // no stack frames in what the user reads
    where(err)
  );
}

/**
 * Runs `n` generated cases: `make(r, seed)` builds an input (and a label for reports), `run` does what the user
 * would do with it and returns normally on success (throwing what the code throws); `check` may reject a success
 * that gave wrong numbers, and `where` says what a clean error must name. Each case has `timeoutMs`.
 */
export async function fuzz<I>(o: {
  n: number;
  seed?: number;
  make: (r: () => number, seed: number) => { input: I; label: string };
  run: (input: I) => unknown;
  check?: (input: I, result: unknown) => string | null; // a reason to reject a success, or null
  where?: (e: LoraPlusError, input: I) => boolean;
  timeoutMs?: number;
}): Promise<FuzzReport> {
  const report: FuzzReport = { counts: { success: 0, 'clean error': 0, 'anything else': 0 }, failures: [] };
  const first = o.seed ?? 1;
  for (let seed = first; seed < first + o.n; seed++) {
    const { input, label } = o.make(rng(seed), seed);
    let outcome: Outcome;
    let why = '';
    try {
      const result = await withTimeout(
        Promise.resolve().then(() => o.run(input)),
        o.timeoutMs ?? 10_000,
      );
      const rejected = o.check?.(input, result) ?? null;
      [outcome, why] = rejected ? ['anything else', rejected] : ['success', ''];
    } catch (err) {
      const clean = isCleanError(err, (e) => o.where?.(e, input) ?? true);
      [outcome, why] = clean ? ['clean error', ''] : ['anything else', describe(err)];
    }
    report.counts[outcome]++;
    if (outcome === 'anything else') report.failures.push({ seed, input: label, why });
  }
  if (process.env.LORAPLUS_FUZZ_N) console.log(JSON.stringify(report.counts));
  return report;
}

function describe(err: unknown): string {
  if (err instanceof LoraPlusError) return `unclear LoraPlusError ${err.info.code}: ${err.message}`;
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms (a hang)`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The assertion message of a report: the first failures, replayable by seed. */
export function failures(r: FuzzReport): string {
  return r.failures
    .slice(0, 5)
    .map((f) => `seed ${f.seed}: ${f.input}: ${f.why}`)
    .join('\n');
}
