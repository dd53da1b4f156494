// "LoRA+: Chat with Model": from the run explorer, a chat with a run's adapter (its final/ adapter, else its newest
// checkpoint), a checkpoint or a final adapter on its base model, or with a merged model; from the palette, any model
// folder or cached Hub model, then optionally an adapter. The chat itself is a panel with its own engine process
// (panels/chat.ts). Chatting runs the model, so it is refused in an untrusted workspace.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { ADAPTER_CONFIG_FILE } from '../adapters/peft';
import { locateBase, resolveAdapterDir } from '../engine/runs/adapter-dirs';
import { cachedModelChoices, describeModel, findModelsAndData, modelDescription } from './editor/new-config-plan';
import type { Studio } from './studio';
import { requireTrust } from './trust';

const TITLE = 'LoRA+: Chat with Model';
const BROWSE = '$(folder-opened) Browse…';

interface Pick extends vscode.QuickPickItem {
  dir?: string;
  browse?: boolean;
  none?: boolean;
}

/** `target`: an explorer node's folder (run, checkpoint or final adapter); none: ask for a model and an adapter. */
export async function chatWithModel(s: Studio, target?: string): Promise<void> {
  if (!(await requireTrust('chatting with a model', 'chat'))) return;
  s.chats.log = (line) => s.output.appendLine(line);
  // A merged model is a whole model: no adapter to add.
  if (target && isModelFolder(target)) return void s.chats.open({ model: target, adapter: null, template: null });
  if (target) {
    const adapter = resolveAdapterDir(target);
    if (!fs.existsSync(path.join(adapter, ADAPTER_CONFIG_FILE))) {
      void vscode.window.showErrorMessage(
        `LoRA+: ${target} holds no adapter (adapter_config.json), neither in final/ nor in a checkpoint.`,
      );
      return;
    }
    const model = (await baseOf(adapter))?.trim();
    if (model) s.chats.open({ model, adapter, template: null });
    return;
  }
  const model = await pickModel();
  if (!model) return;
  const adapter = await pickAdapter(s, model);
  if (adapter === undefined) return;
  s.chats.open({ model, adapter, template: null });
}

/** A full model folder (a merged model): config.json and no adapter. */
function isModelFolder(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'config.json')) && !fs.existsSync(path.join(dir, ADAPTER_CONFIG_FILE));
}

/** The adapter's base model folder: the one it names, else the user says where it is. */
async function baseOf(adapter: string): Promise<string | undefined> {
  const base = locateBase(adapter);
  if (base.dir) return base.dir;
  const picked = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Use as Base Model',
    title: base.named
      ? `${TITLE}: '${base.named}' is not a folder here. Where is this base model?`
      : `${TITLE}: the adapter does not name its base model. Which model folder?`,
  });
  return picked?.[0]?.fsPath;
}

/** Causal LMs in and beside the workspace (../shared/models/*) and in the Hugging Face cache, or any folder. */
async function pickModel(): Promise<string | undefined> {
  const dirs = (vscode.workspace.workspaceFolders ?? [])
    .filter((f) => f.uri.scheme === 'file')
    .map((f) => f.uri.fsPath);
  const roots = [
    ...dirs.map((dir) => ({ dir, depth: 4 })),
    ...dirs.map((dir) => ({ dir: path.dirname(dir), depth: 3 })),
  ];
  const items = (async (): Promise<Pick[]> => {
    const found = await findModelsAndData(roots);
    const local = found.models.flatMap((dir): Pick[] => {
      const m = describeModel(dir);
      return m.ok && m.value.summary.family.tasks.includes('causal-lm')
        ? [{ label: m.value.name, description: modelDescription(m.value), detail: dir, dir }]
        : [];
    });
    const cached = cachedModelChoices()
      .filter((m) => m.summary.family.tasks.includes('causal-lm'))
      .map((m): Pick => ({
        label: m.name,
        description: `Hugging Face cache · ${m.modelType}`,
        detail: m.dir,
        dir: m.dir,
      }));
    return [
      ...local,
      ...cached,
      { label: BROWSE, description: 'any model folder (config.json, weights)', browse: true },
    ];
  })();
  const pick = await vscode.window.showQuickPick(items, { title: `${TITLE}: which model?`, matchOnDetail: true });
  if (!pick?.browse) return pick?.dir;
  const folder = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Chat with This Model',
  });
  return folder?.[0]?.fsPath;
}

/** An adapter of `model` (the runs' final adapters and checkpoints trained on it, or any folder); null: none. */
async function pickAdapter(s: Studio, model: string): Promise<string | null | undefined> {
  const same = (dir: string) => {
    const base = locateBase(dir).dir;
    return base !== null && path.resolve(base) === path.resolve(model);
  };
  const items: Pick[] = [{ label: '$(circle-slash) No adapter', description: 'the base model alone', none: true }];
  for (const run of s.tree.allRuns()) {
    if (run.finalAdapter && same(run.finalAdapter))
      items.push({ label: run.name, description: 'final adapter', detail: run.finalAdapter, dir: run.finalAdapter });
    for (const c of [...run.checkpoints].reverse()) {
      if (!same(c.dir)) continue;
      const ev = c.eval ? ` · eval loss ${c.eval.loss.toFixed(4)}` : '';
      items.push({ label: `${run.name} · step ${c.step}`, description: `checkpoint${ev}`, detail: c.dir, dir: c.dir });
    }
  }
  items.push({ label: BROWSE, description: 'any PEFT adapter folder of this model', browse: true });
  const pick = await vscode.window.showQuickPick(items, {
    title: `${TITLE}: with which adapter? (${path.basename(model)})`,
    matchOnDetail: true,
  });
  if (!pick) return undefined;
  if (pick.none) return null;
  if (!pick.browse) return pick.dir;
  const folder = await vscode.window.showOpenDialog({
    canSelectFolders: true,
    canSelectFiles: false,
    canSelectMany: false,
    openLabel: 'Chat with This Adapter',
  });
  return folder?.[0] ? resolveAdapterDir(folder[0].fsPath) : undefined;
}
