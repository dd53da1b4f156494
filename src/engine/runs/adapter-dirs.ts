// What a merge starts from, found from files alone (no TensorFlow.js, so the extension host can use it too): the
// adapter folder behind a run or checkpoint folder, the run it came from, its base model, and the default output.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { ADAPTER_CONFIG_FILE } from '../../adapters/peft';
import { LoraPlusError } from '../../protocol/errors';
import { listCheckpoints } from './checkpoints';
import { CONFIG_FILE } from './writer';
import { parseModelSpec, resolveModel } from '../hub/cache';

/** An adapter folder; a checkpoint folder; or a run folder, whose final/ adapter, else newest checkpoint, is used. */
export function resolveAdapterDir(target: string): string {
  const dir = path.resolve(target);
  if (fs.existsSync(path.join(dir, ADAPTER_CONFIG_FILE))) return dir;
  if (fs.existsSync(path.join(dir, 'final', ADAPTER_CONFIG_FILE))) return path.join(dir, 'final');
  const newest = listCheckpoints(dir).at(-1);
  if (newest) return newest.dir;
  if (fs.existsSync(dir) && fs.statSync(dir).isFile() && dir.endsWith('.safetensors')) {
    throw new LoraPlusError({
      code: 'merge/no-adapter',
      message: 'this is a bare safetensors file, not an adapter folder',
      file: dir,
      hint: `Put it in a folder as adapter_model.safetensors next to its ${ADAPTER_CONFIG_FILE}.`,
    });
  }
  return dir; // loadAdapter says what is missing
}

export interface RunConfig {
  dir: string;
  config: Record<string, unknown>; // config.yaml as run
}

/** The run an adapter came from (…/run/final or …/run/checkpoints/step-N), when its config.yaml is there. */
export function runOf(adapterDir: string): RunConfig | null {
  const parent = path.dirname(adapterDir);
  const runDir = path.basename(parent) === 'checkpoints' ? path.dirname(parent) : parent;
  try {
    const config = parse(fs.readFileSync(path.join(runDir, CONFIG_FILE), 'utf8')) as unknown;
    return config && typeof config === 'object' ? { dir: runDir, config: config as Record<string, unknown> } : null;
  } catch {
    return null;
  }
}

/** Where a merge of `target` goes unless told: `<run>/merged`, else `<adapter folder>-merged`. */
export function defaultMergeOut(target: string): string {
  const adapterDir = resolveAdapterDir(target);
  const run = runOf(adapterDir);
  return run ? path.join(run.dir, 'merged') : `${adapterDir}-merged`;
}

/**
 * The base model an adapter names (base_model_name_or_path, else its run's `model`) and the local folder it
 * resolves to: as given, or relative to the adapter or the run folder. `dir` is null for a Hub id or a path from
 * another machine: then the user has to say where the base model is.
 */
export function locateBase(adapterDir: string, run = runOf(adapterDir)): { named: string | null; dir: string | null } {
  let named: string | null = null;
  try {
    const c = JSON.parse(fs.readFileSync(path.join(adapterDir, ADAPTER_CONFIG_FILE), 'utf8')) as {
      base_model_name_or_path?: unknown;
    };
    if (typeof c.base_model_name_or_path === 'string' && c.base_model_name_or_path) named = c.base_model_name_or_path;
  } catch {
    // no or broken config: loadAdapter reports it
  }
  if (!named && typeof run?.config.model === 'string') named = run.config.model;
  if (!named) return { named: null, dir: null };
  const candidates = [
    path.resolve(named),
    path.resolve(adapterDir, named),
    ...(run ? [path.resolve(run.dir, named)] : []),
  ];
  const local = candidates.find((d) => fs.existsSync(path.join(d, 'config.json')));
  return { named, dir: local ?? cachedModel(named) };
}

/** A Hub id (what Python adapters usually name) found in the Hugging Face cache, or null. */
function cachedModel(named: string): string | null {
  if (parseModelSpec(named).kind !== 'hub') return null;
  try {
    return resolveModel(named);
  } catch {
    return null; // not (completely) cached: the caller asks where the base model is
  }
}
