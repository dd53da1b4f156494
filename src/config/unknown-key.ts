// An unknown key in a config: a typo of a key here (rename it), a key that belongs elsewhere (move it), or nothing
// close (list the keys here). Aliases count as names, so `lr` finds learning_rate and `num_train_epochs` epochs.
import { norm, within } from './distance';
import { configKeys } from './keys';
import type { KeyInfo } from './keys';
import { quote, toYamlPath } from './problem';
import type { ProblemInit, Segment } from './problem';
import type { ObjectSpec } from './schema';

type Report = (p: ProblemInit) => void;

let allKeys: KeyInfo[] | undefined;

/**
 * Suggests a sibling with a close name, or the same (or close) name elsewhere in the schema: the key at the wrong
 * level.
 */
export function unknownKey(key: string, parent: Segment[], spec: ObjectSpec, report: Report): void {
  allKeys ??= configKeys();
  const here = [...parent, key];
  const where = parent.length ? `in ${toYamlPath(parent)}` : 'at the top level';
  const name = quote(key);
  const limit = key.length <= 3 ? 0 : Math.min(3, Math.max(1, Math.floor(key.length / 4)));
  let best: { info: KeyInfo; score: number; sibling: boolean } | undefined;
  for (const info of allKeys) {
    const sibling = toYamlPath(info.segments.slice(0, -1)) === toYamlPath(parent);
    const d = Math.min(...[info.key, ...(info.spec.aliases ?? [])].map((n) => within(norm(key), norm(n), limit)));
    // A close sibling beats a far-away key, an exact name elsewhere beats a typo here.
    const score = d + (sibling ? 0 : 0.5);
    if (d <= limit && (!best || score < best.score)) best = { info, score, sibling };
  }
  if (best?.sibling) {
    const fix = { kind: 'replaceKey', title: `Rename to ${best.info.key}`, with: best.info.key } as const;
    report({
      severity: 'error',
      code: 'config/unknown-key',
      message: `unknown key '${name}'; did you mean '${best.info.key}'?`,
      path: here,
      at: 'key',
      suggestions: [best.info.key],
      fix,
    });
  } else if (best) {
    const target = toYamlPath(best.info.segments.slice(0, -1)) || 'the top level';
    report({
      severity: 'error',
      code: 'config/wrong-level',
      message: `unknown key '${name}' ${where}; did you mean ${best.info.path}?`,
      path: here,
      at: 'key',
      hint: `Move it under ${target}${best.info.key === key ? '' : ` as ${best.info.key}`}.`,
      suggestions: [best.info.path],
      fix: { kind: 'moveKey', title: `Move to ${best.info.path}`, to: best.info.segments },
    });
  } else {
    report({
      severity: 'error',
      code: 'config/unknown-key',
      message: `unknown key '${name}' ${where}`,
      path: here,
      at: 'key',
      hint:
        (key === '<<' ? 'YAML merge keys (<<) are not supported here: write the keys out. ' : '') +
        `Known keys here: ${Object.keys(spec.keys).join(', ')}.`,
    });
  }
}
