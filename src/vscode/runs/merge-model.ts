// Merged models in the run explorer, as data (no `vscode` import; run-tree.ts makes the TreeItems): each folder a
// merge wrote (its merge_info.json) shows under the run its adapter came from (the default `<run>/merged`, or any
// folder whose merge_info names an adapter of the run), else at the top level.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { MergeInfo } from '../../protocol/merge';
import { isObject } from '../../protocol/json';
import { CONTEXT } from '../command-table';
import type { ItemData } from './tree-model';

export const MERGE_INFO_FILE = 'merge_info.json'; // as src/engine/merge/report.ts writes it

export interface MergedItemData extends ItemData {
  kind: 'merged';
  dir: string;
}

/** merge_info.json of a merge folder, or null when it is missing or not one. */
export function readMergeInfo(dir: string): MergeInfo | null {
  try {
    const info: unknown = JSON.parse(fs.readFileSync(path.join(dir, MERGE_INFO_FILE), 'utf8'));
    return isObject(info) && Array.isArray(info.adapters) && isObject(info.merge_check)
      ? (info as unknown as MergeInfo)
      : null;
  } catch {
    return null;
  }
}

/** The run (of `runs`) a merge belongs to: the one its folder is in, else the one its first adapter came from. */
export function ownerRun(mergeDir: string, info: MergeInfo | null, runs: Iterable<string>): string | null {
  const inside = (dir: string, p: string) => p === dir || p.startsWith(dir + path.sep);
  const adapter = typeof info?.adapters[0]?.path === 'string' ? path.resolve(info.adapters[0].path) : null;
  let owner: string | null = null;
  for (const run of runs) {
    if (inside(run, mergeDir)) return run;
    if (adapter && inside(run, adapter)) owner = run;
  }
  return owner;
}

/** "merged model · check passed · max |Δlogits| 2.1e-6", or the adapter a merge --as adapter wrote. */
export function mergedItem(dir: string, info: MergeInfo | null, topLevel: boolean): MergedItemData {
  const c = info?.merge_check;
  const what = info?.as === 'adapter' ? 'combined adapter' : 'merged model';
  const check = !c ? 'no merge_info.json' : c.passed ? 'check passed' : 'MERGE_CHECK_FAILED';
  const diff = c && c.max_abs_diff !== null ? `max |Δlogits| ${c.max_abs_diff.toExponential(1)}` : '';
  const from = info?.adapters.map((a) => `\`${a.path.replace(/`/g, "'")}\``).join(', ');
  return {
    kind: 'merged',
    dir,
    id: `merged:${dir}`,
    label: topLevel ? path.basename(dir) : what,
    description: [topLevel ? what : '', check, diff].filter(Boolean).join(' · '),
    tooltip:
      `**${what}** (${check})\n\n` +
      (from ? `- from: ${from}\n` : '') +
      (info?.base ? `- base: \`${info.base.replace(/`/g, "'")}\`\n` : '') +
      (info?.created ? `- written: ${info.created}\n` : '') +
      `\n\`${dir.replace(/`/g, "'")}\``,
    icon: c && !c.passed ? { id: 'warning', color: 'list.warningForeground' } : { id: 'library' },
    contextValue: CONTEXT.merged,
  };
}
