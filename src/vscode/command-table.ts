// Every command the extension contributes, as data: id → title. package.json's contributes.commands must list exactly
// these (test/vscode/manifest.test.ts), and commands.ts must give each one a handler (the type makes it so).
// No `vscode` import here, so tests can read it outside VS Code.

export const CATEGORY = 'LoRA+';

export const COMMAND_TITLES = {
  'loraplus.newConfig': 'New Training Config',
  'loraplus.startTraining': 'Start Training',
  'loraplus.stopTraining': 'Stop Training',
  'loraplus.resumeTraining': 'Resume Training',
  'loraplus.openLog': 'Open Log',
  'loraplus.openDashboard': 'Open Dashboard',
  'loraplus.openRunConfig': 'Open Run Config',
  'loraplus.revealRun': 'Reveal Run in Explorer',
  'loraplus.renameRun': 'Rename Run…',
  'loraplus.deleteRun': 'Delete Run',
  'loraplus.refreshRuns': 'Refresh Runs',
  'loraplus.mergeAdapter': 'Merge Adapter into Model',
  'loraplus.openModelCard': 'Open Model Card',
  'loraplus.compareCheckpoints': 'Compare Checkpoints',
  'loraplus.downloadModel': 'Download Model…',
  'loraplus.chat': 'Chat with Model',
  'loraplus.tune': 'Find λ and Learning Rate',
  'loraplus.openTuneDashboard': 'Open Tune Dashboard',
  'loraplus.exportJob': 'Export Run for a GPU Cluster…',
} as const;

export type CommandId = keyof typeof COMMAND_TITLES;

/** The view and container ids, shared by package.json, the tree and the e2e tests. */
export const VIEW_CONTAINER = 'loraplus';
export const RUNS_VIEW = 'loraplus.runs';

/** Tree item contextValues (package.json menus match on them). */
export const CONTEXT = {
  runRunning: 'loraplus.run.running',
  runIdle: 'loraplus.run.idle', // stopped, failed or interrupted: it can be resumed
  runFinished: 'loraplus.run.finished',
  checkpoint: 'loraplus.checkpoint',
  adapter: 'loraplus.adapter',
  merged: 'loraplus.merged', // a folder a merge wrote (merge_info.json): a model, or a combined adapter
  tuneRunning: 'loraplus.tune.running', // a tune folder (its trials are run items)
  tuneDone: 'loraplus.tune.done', // finished, stopped, failed or interrupted
} as const;
