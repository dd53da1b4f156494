// "LoRA+: New Training Config": quick picks for the model folder, the training data, the task (sft when the data is
// chat data), the data's columns, the evaluation data and the file name, then a commented config
// (src/config/template.ts) is written and opened.
// Escape at any step returns undefined and writes nothing; a Browse… that is cancelled or picks something unusable
// goes back to its list. What is offered comes from new-config-plan.ts.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { writeFileAtomic } from '../../adapters/files';
import { configTemplate } from '../../config/template';
import type { TemplateChoices } from '../../config/template';
import { inspectData } from '../../engine/checks/inspect';
import type { DataSummary } from '../../engine/checks/inspect';
import { SUPPORTED_EXTENSIONS } from '../../engine/data/rows';
import {
  chatDataOf,
  chatTemplateChoice,
  defaultConfigName,
  cachedModelChoices,
  describeModel,
  findModelsAndData,
  guessEvalFile,
  modelDescription,
  offeredTasks,
  orderColumns,
  planConfig,
} from './new-config-plan';
import type { DataChoices, Found, ModelChoice } from './new-config-plan';

const TITLE = 'LoRA+: New Training Config';
const BROWSE = '$(folder-opened) Browse…';
type Task = TemplateChoices['task'];

/** Asks, writes the config, opens it; `folder` (the explorer's context menu) is where it goes. */
export async function newConfig(folder?: vscode.Uri): Promise<vscode.Uri | undefined> {
  const workspaceDirs = (vscode.workspace.workspaceFolders ?? [])
    .filter((f) => f.uri.scheme === 'file')
    .map((f) => f.uri.fsPath);
  const targetDir = folder?.fsPath ?? workspaceDirs[0];
  // The workspace, and its parents less deeply: models and data often sit beside the project (../shared/models/*).
  const roots = [
    ...(folder ? [{ dir: folder.fsPath, depth: 3 }] : []),
    ...workspaceDirs.map((dir) => ({ dir, depth: 4 })),
    ...workspaceDirs.map((dir) => ({ dir: path.dirname(dir), depth: 3 })),
  ];
  const found = findModelsAndData(roots);

  const model = await pickModel(found, targetDir);
  if (!model) return undefined;
  const train = await pickTrain(found, targetDir);
  if (!train) return undefined;
  const task = await pickTask(model, train.summary);
  if (!task) return undefined;
  const data = await pickData(found, task, train, targetDir);
  if (!data) return undefined;
  const file = await pickFile(targetDir, model);
  if (!file) return undefined;

  writeFileAtomic(file, configTemplate(planConfig(path.dirname(file), model, task, data)));
  const uri = vscode.Uri.file(file);
  await vscode.window.showTextDocument(uri);
  return uri;
}

// ---- Steps ----

interface Item<T> extends vscode.QuickPickItem {
  value?: T;
  browse?: boolean;
}

async function pickModel(found: Promise<Found>, near: string | undefined): Promise<ModelChoice | undefined> {
  const items = found.then(({ models }) => [
    ...models.flatMap((dir): Item<ModelChoice>[] => {
      const m = describeModel(dir);
      return m.ok
        ? [{ label: m.value.name, description: modelDescription(m.value), detail: shown(dir, near), value: m.value }]
        : [];
    }),
    ...cachedModelChoices().map((m): Item<ModelChoice> => ({
      label: m.name,
      description: modelDescription(m),
      detail: 'Hugging Face cache',
      value: m,
    })),
    { label: BROWSE, description: 'a folder with config.json and model.safetensors', browse: true },
  ]);
  for (;;) {
    const picked = await pick('model folder', 'A Hugging Face model folder (config.json + safetensors weights)', items);
    if (!picked) return undefined;
    if (!picked.browse) return picked.value;
    const dir = (
      await vscode.window.showOpenDialog({
        title: `${TITLE}: model folder`,
        canSelectFolders: true,
        canSelectFiles: false,
        openLabel: 'Use This Model',
        defaultUri: uriOf(near),
      })
    )?.[0]?.fsPath;
    if (!dir) continue;
    const m = describeModel(dir);
    if (m.ok) return m.value;
    void vscode.window.showErrorMessage(`LoRA+: ${m.problem.message}${m.problem.hint ? ` ${m.problem.hint}` : ''}`);
  }
}

const TASKS: Record<Task, string> = {
  'causal-lm': 'next-token prediction on the text (adapts the language model)',
  'sequence-classification': 'a label for each text (a classification head is trained with the adapter)',
  sft: 'instruction tuning on conversations or prompt/completion rows (loss on the answers)',
};

/** The family's tasks; for chat data and a causal LM, sft alone, with the chat template the rows will get. */
async function pickTask(model: ModelChoice, train: DataSummary): Promise<Task | undefined> {
  const tasks = offeredTasks(model, train);
  const chat = chatDataOf(train);
  if (tasks.length === 1 && tasks[0] !== 'sft') return tasks[0]; // an encoder only classifies: nothing to ask
  const items = tasks.map((t): Item<Task> => {
    if (t !== 'sft' || !chat) return { label: t, description: TASKS[t], value: t };
    const { template, why } = chatTemplateChoice(model);
    const detail = !chat.conversational
      ? 'prompt/completion strings: no chat template needed'
      : template
        ? `chat_template: ${template}, since ${why}`
        : `rendered with ${why}`;
    return { label: t, description: `${TASKS[t]}; the rows are ${chat.format}`, detail, value: t };
  });
  return (await pick('task', `What should ${model.name} learn?`, items))?.value;
}

/** The training file, read (its columns, rows and chat format); a file that cannot be read goes back to the list. */
async function pickTrain(
  found: Promise<Found>,
  near: string | undefined,
): Promise<{ file: string; summary: DataSummary } | undefined> {
  for (;;) {
    const file = await pickDataFile(
      found,
      'training data',
      'The training data: .tsv, .csv, .jsonl, .json or .txt',
      near,
    );
    if (!file) return undefined;
    const inspected = inspectData(file);
    if (inspected.ok) return { file, summary: inspected.value };
    void vscode.window.showErrorMessage(
      `LoRA+: ${inspected.problem.message}${inspected.problem.hint ? ` ${inspected.problem.hint}` : ''}`,
    );
  }
}

async function pickData(
  found: Promise<Found>,
  task: Task,
  trainFile: { file: string; summary: DataSummary },
  near: string | undefined,
): Promise<DataChoices | undefined> {
  const files = (await found).data;
  const train = trainFile.file;
  const { columns, pretokenized, rows } = trainFile.summary;
  const about = `${path.basename(train)} (${rows} rows)`;
  // sft rows name their own fields (messages, prompt/completion, ...): no column to ask for.
  const chat = task === 'sft' ? chatDataOf(trainFile.summary) : null;
  let textField: string | null = null;
  let labelField: string | undefined;
  let textPairField: string | null = null;
  if (!pretokenized && !chat) {
    const text = await pickColumn(
      orderColumns(columns, 'text'),
      'text column',
      `Which column of ${about} holds the text?`,
    );
    if (!text) return undefined;
    textField = text;
  }
  if (task === 'sequence-classification') {
    const label = await pickColumn(
      orderColumns(
        columns.filter((c) => c !== textField),
        'label',
      ),
      'label column',
      `Which column of ${about} holds the label?`,
    );
    if (!label) return undefined;
    labelField = label;
    const rest = columns.filter((c) => c !== textField && c !== labelField && c !== 'input_ids');
    if (rest.length && !pretokenized) {
      const none = { label: '(none)', description: 'single texts' };
      const pair = await pick(
        'text pair',
        'Do the rows hold pairs of texts (e.g. sentence1/sentence2)? Pick the second text, or (none).',
        [none, ...rest.map((c): Item<string> => ({ label: c, value: c }))],
      );
      if (!pair) return undefined;
      textPairField = pair.value ?? null;
    }
  }
  const evaluation = await pickEval(files, train, near);
  if (!evaluation) return undefined;
  return {
    train,
    ...evaluation,
    textField,
    textPairField,
    ...(labelField ? { labelField } : {}),
    ...(chat ? { chat } : {}),
  };
}

/** The only column is taken without asking; otherwise the likely one is first and selected. */
async function pickColumn(ordered: string[], step: string, question: string): Promise<string | undefined> {
  if (ordered.length === 1) return ordered[0];
  if (!ordered.length) return 'text';
  return (
    await pick(
      step,
      question,
      ordered.map((c): Item<string> => ({ label: c, value: c })),
    )
  )?.value;
}

async function pickEval(
  files: string[],
  train: string,
  near: string | undefined,
): Promise<{ eval: string | null; evalFraction: number } | undefined> {
  const beside = guessEvalFile(train, files);
  const items: Item<{ eval: string | null; evalFraction: number }>[] = [
    ...(beside
      ? [
          {
            label: path.basename(beside),
            description: 'beside the training file',
            detail: shown(beside, near),
            value: { eval: beside, evalFraction: 0 },
          },
        ]
      : []),
    {
      label: 'Hold out 5% of the training rows',
      description: 'eval_fraction: 0.05',
      value: { eval: null, evalFraction: 0.05 },
    },
    { label: 'No evaluation', description: 'train only', value: { eval: null, evalFraction: 0 } },
    ...files
      .filter((f) => f !== train && f !== beside)
      .map((f) => ({ label: path.basename(f), detail: shown(f, near), value: { eval: f, evalFraction: 0 } })),
    { label: BROWSE, description: 'another evaluation file', browse: true },
  ];
  for (;;) {
    const picked = await pick(
      'evaluation data',
      'Evaluate on which data (every eval_every steps and at the end)?',
      items,
    );
    if (!picked) return undefined;
    if (!picked.browse) return picked.value;
    const file = await browseDataFile(near);
    if (file) return { eval: file, evalFraction: 0 };
  }
}

async function pickDataFile(
  found: Promise<Found>,
  step: string,
  question: string,
  near: string | undefined,
): Promise<string | undefined> {
  const items = found.then(({ data }) => [
    ...data.map((f): Item<string> => ({ label: path.basename(f), detail: shown(f, near), value: f })),
    { label: BROWSE, description: SUPPORTED_EXTENSIONS.join(' '), browse: true },
  ]);
  for (;;) {
    const picked = await pick(step, question, items);
    if (!picked) return undefined;
    if (!picked.browse) return picked.value;
    const file = await browseDataFile(near);
    if (file) return file;
  }
}

async function browseDataFile(near: string | undefined): Promise<string | undefined> {
  const filters = { 'Data files': SUPPORTED_EXTENSIONS.map((e) => e.slice(1)) };
  return (
    await vscode.window.showOpenDialog({
      title: `${TITLE}: data file`,
      canSelectFiles: true,
      canSelectFolders: false,
      filters,
      defaultUri: uriOf(near),
    })
  )?.[0]?.fsPath;
}

/** The config's path: a name in the target folder (asking before replacing a file), or a save dialog without one. */
async function pickFile(dir: string | undefined, model: ModelChoice): Promise<string | undefined> {
  if (!dir) {
    const uri = await vscode.window.showSaveDialog({
      title: `${TITLE}: save as`,
      filters: { 'LoRA+ config': ['yaml'] },
      saveLabel: 'Create Config',
    });
    return uri?.fsPath; // the save dialog has asked about replacing already
  }
  let value = defaultConfigName(dir, model);
  for (;;) {
    const name = await vscode.window.showInputBox({
      title: `${TITLE}: file name`,
      prompt: `In ${dir} (relative paths in the config are written from there)`,
      value,
      valueSelection: [0, value.indexOf('.')],
      ignoreFocusOut: true,
      validateInput: (v) =>
        !v.trim()
          ? 'Give the config a file name.'
          : /\.ya?ml$/i.test(v.trim())
            ? undefined
            : 'A config is a YAML file: end the name in .lora.yaml.',
    });
    if (!name) return undefined;
    const file = path.resolve(dir, name.trim());
    if (!fs.existsSync(file)) return file;
    const replace = 'Replace';
    const answer = await vscode.window.showWarningMessage(
      `${path.basename(file)} already exists. Replace it?`,
      { modal: true },
      replace,
    );
    if (answer === replace) return file;
    value = name;
  }
}

// ---- Helpers ----

/** A quick pick that may fill in while the workspace is searched; undefined on Escape. */
function pick<T>(
  step: string,
  placeholder: string,
  items: Item<T>[] | Promise<Item<T>[]>,
): Promise<Item<T> | undefined> {
  const qp = vscode.window.createQuickPick<Item<T>>();
  qp.title = `${TITLE}: ${step}`;
  qp.placeholder = placeholder;
  qp.ignoreFocusOut = true;
  qp.matchOnDescription = true;
  qp.matchOnDetail = true;
  qp.busy = true;
  return new Promise((resolve) => {
    let settled = false;
    const settle = (v: Item<T> | undefined): void => {
      if (settled) return;
      settled = true;
      resolve(v);
      qp.dispose();
    };
    qp.onDidAccept(() => settle(qp.selectedItems[0] ?? qp.activeItems[0]));
    qp.onDidHide(() => settle(undefined));
    qp.show();
    Promise.resolve(items).then(
      (list) => {
        if (settled) return; // Escape while the workspace was searched
        qp.items = list;
        qp.busy = false;
      },
      (err: unknown) => {
        if (!settled) qp.busy = false;
        void vscode.window.showErrorMessage(`LoRA+: ${err instanceof Error ? err.message : String(err)}`);
      },
    );
  });
}

/** A path as the pickers show it: relative to the config's folder when that is shorter. */
function shown(file: string, near: string | undefined): string {
  if (!near) return file;
  const rel = path.relative(near, file);
  return rel.length < file.length ? rel : file;
}

function uriOf(dir: string | undefined): vscode.Uri | undefined {
  return dir ? vscode.Uri.file(dir) : undefined;
}
