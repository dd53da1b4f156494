// "LoRA+: Compare Checkpoints": picks two or more runs, checkpoints or adapter folders (the explorer's selection, or a
// quick pick of the workspace's runs) and opens a compare panel on them (panels/compare.ts, which knows nothing of
// the Studio: this file is the one that needs the explorer and the output channel).
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { RunSummary } from '../engine/runs/summary';
import { METRICS_FILE } from '../engine/runs/writer';
import { fmtNumber } from './runs/tree-model';
import type { Studio } from './studio';

/** Compares the selected explorer items; with fewer than two, asks which runs, checkpoints or adapters. */
export async function compareCheckpoints(s: Studio, paths: string[]): Promise<void> {
  s.compare.log = (line) => s.output.appendLine(line);
  const picked = paths.length >= 2 ? paths : await pick(s, paths);
  if (!picked) return;
  if (picked.length < 2) {
    void vscode.window.showInformationMessage('LoRA+: pick two or more runs, checkpoints or adapters to compare.');
    return;
  }
  s.compare.open(picked);
}

async function pick(s: Studio, preselected: string[]): Promise<string[] | undefined> {
  const runs = await workspaceRuns(s);
  if (!runs.length) {
    const uris = await vscode.window.showOpenDialog({
      canSelectFolders: true,
      canSelectFiles: false,
      canSelectMany: true,
      openLabel: 'Compare',
      title: 'LoRA+: Compare which run, checkpoint or adapter folders? (pick two or more)',
      defaultUri: vscode.workspace.workspaceFolders?.[0]?.uri,
    });
    return uris && [...preselected, ...uris.map((u) => u.fsPath)];
  }
  const chosen = new Set(preselected.map((p) => path.resolve(p)));
  type Item = vscode.QuickPickItem & { dir?: string };
  const items: Item[] = [];
  for (const r of runs) {
    const runDir = path.resolve(r.dir);
    // λ and lr_A beside the name: the settings runs of one config usually differ in.
    const { ratio, lrA } = r.settings;
    const set = [ratio !== null ? `λ ${fmtNumber(ratio)}` : '', lrA !== null ? `lr ${fmtNumber(lrA)}` : ''];
    items.push({
      label: r.name,
      description: [r.status, `step ${r.step}`, ...set.filter(Boolean), r.finalAdapter ? 'final adapter' : '']
        .filter(Boolean)
        .join(' · '),
      detail: r.dir,
      dir: r.dir,
      picked: chosen.has(runDir),
    });
    for (const c of [...r.checkpoints].reverse()) {
      const ev = c.eval ? ` · eval loss ${c.eval.loss.toFixed(4)}` : '';
      items.push({
        label: `${r.name}@step-${c.step}`,
        description: `checkpoint${ev}`,
        detail: c.dir,
        dir: c.dir,
        picked: chosen.has(path.resolve(c.dir)),
      });
    }
  }
  // What the explorer selection named but the list does not hold (an adapter folder, final/): offered first, picked.
  const listed = new Set(items.map((i) => path.resolve(i.dir!)));
  const extra = [...chosen]
    .filter((p) => !listed.has(p))
    .map((p): Item => ({
      label: path.join(path.basename(path.dirname(p)), path.basename(p)),
      description: 'selected',
      detail: p,
      dir: p,
      picked: true,
    }));
  const selection = await vscode.window.showQuickPick([...extra, ...items], {
    canPickMany: true,
    title: 'LoRA+: Compare which runs or checkpoints? (pick two or more)',
    matchOnDetail: true,
  });
  return selection?.flatMap((i) => (i.dir ? [i.dir] : []));
}

/** The explorer's runs; right after start-up (before its first scan) the workspace's metrics.jsonl files. */
async function workspaceRuns(s: Studio): Promise<RunSummary[]> {
  const known = s.tree.allRuns();
  if (known.length) return known;
  const files = await vscode.workspace.findFiles(`**/${METRICS_FILE}`, '**/node_modules/**', 500);
  return files.map((f) => s.feeds.summary(path.dirname(f.fsPath))).sort((a, b) => b.updated - a.updated);
}
