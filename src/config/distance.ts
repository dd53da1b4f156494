// Edit distance for "did you mean": a mistyped key, enum value, module or column name against the known ones.
// Names compared are short; a long input (a pasted paragraph, a fuzzed 10 MB string) is cut off by the length check
// before the quadratic table is built.

/** The option nearest to `word` within a third of its length (typos, not different words), if any. */
export function closest(word: string, options: readonly string[]): string | undefined {
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: { o: string; d: number } | undefined;
  for (const o of options) {
    const d = within(norm(word), norm(o), limit);
    if (d <= limit && (!best || d < best.d)) best = { o, d };
  }
  return best?.o;
}

/** The distance when it can be at most `limit`, else Infinity (without building the table). */
export function within(a: string, b: string, limit: number): number {
  return Math.abs(a.length - b.length) > limit ? Infinity : distance(a, b);
}

export const norm = (s: string): string => s.toLowerCase().replace(/-/g, '_');

/** Damerau-Levenshtein distance (optimal string alignment: a swap of two neighbours costs 1). */
export function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
