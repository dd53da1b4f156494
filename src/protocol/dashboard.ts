// Messages between the extension host and a run's dashboard webview, as two typed maps (name → payload). The
// webview sends `ready` first; the host answers with `init` (every event so far, read from metrics.jsonl), then
// `events` batches (coalesced, at most ~10 a second) and `summary` changes (status, checkpoints on disk). A reload or a hidden-then-shown panel
// sends `ready` again and gets a fresh `init`. Every message carries the protocol version, and each side checks what
// it receives with the guards below (a webview can outlive an extension update).
import { RUN_STATUSES, type EngineEvent, type RunStatus } from './events';

export const DASHBOARD_PROTOCOL = 2;

/** What the header needs before (or without) a run_start event: read from the run folder's files. */
export interface DashboardSummary {
  name: string; // the run folder's name
  runDir: string;
  status: RunStatus;
  step: number;
  totalSteps: number | null;
  lastLoss: number | null;
  elapsed: number | null; // seconds, as the run's last step or end event says
  checkpoints: number; // on disk
  finalAdapter: string | null;
  error: string | null; // the error message of a failed run
  config: {
    model?: string;
    task?: string;
    r?: number;
    lora_alpha?: number;
    learning_rate?: number;
    loraplus_lr_ratio?: number;
    optimizer?: string; // training.optimizer: adamw (LoRA+), riemannian, lorafa
    device?: string;
  } | null;
}

/**
 * The per-module figures of a message's step events, packed: one float array instead of an object per module and
 * step (a 100,000-step run of 24 modules would otherwise clone 2.4 million objects into the page). When a message
 * carries `packed`, each of its step events has `modules: []`, and the k-th step event's figures are block k of
 * `values`: [modules.length][PACKED_FIELDS.length], NaN where a figure is missing (out_A/out_B of older files).
 */
export interface PackedModules {
  modules: string[];
  values: Float32Array;
}
export const PACKED_FIELDS = ['grad_A', 'grad_B', 'delta_A', 'delta_B', 'out_A', 'out_B'] as const;

/** Host → webview, by name. */
export interface HostMessages {
  init: {
    runDir: string;
    summary: DashboardSummary;
    events: EngineEvent[];
    packed?: PackedModules;
    view?: DashboardView;
  };
  events: { events: EngineEvent[]; packed?: PackedModules };
  summary: { summary: DashboardSummary }; // the run's status, figures or checkpoints changed
  missing: { runDir: string; message: string }; // the run folder is gone (restored after a reload, or deleted)
}

/** Webview → host, by name. */
export interface WebviewMessages {
  ready: Record<string, never>;
  openFile: { path: string }; // relative to the run folder (config.yaml, metrics.jsonl); the host opens nothing outside it
  saveView: DashboardView; // the user picked a view setting: the host keeps it for every dashboard, also reopened
}

/** View settings the host keeps across dashboards (its memento) and sends with `init`. */
export interface DashboardView {
  abQuantity?: string; // the A/B view's quantity (webview/dashboard/ab-model.ts AB_QUANTITIES)
}

/** One message of a map: `{v, type, ...payload}`. */
export type Message<M, K extends keyof M = keyof M> = K extends keyof M
  ? { v: typeof DASHBOARD_PROTOCOL; type: K } & M[K]
  : never;
export type HostToDashboard = Message<HostMessages>;
export type DashboardToHost = Message<WebviewMessages>;

export function hostMessage<K extends keyof HostMessages>(type: K, payload: HostMessages[K]): Message<HostMessages, K> {
  return { v: DASHBOARD_PROTOCOL, type, ...payload } as Message<HostMessages, K>;
}

export function webviewMessage<K extends keyof WebviewMessages>(
  type: K,
  payload: WebviewMessages[K],
): Message<WebviewMessages, K> {
  return { v: DASHBOARD_PROTOCOL, type, ...payload } as Message<WebviewMessages, K>;
}

// ---- guards: what arrives over postMessage is unknown until checked ------------------------------------------------

// A record, not a list: an event type added to EngineEvent and missing here does not compile.
const EVENT_TYPES: Record<EngineEvent['type'], true> = {
  run_start: true,
  step: true,
  eval_progress: true,
  eval: true,
  samples: true,
  checkpoint: true,
  log: true,
  end: true,
  error: true,
};

type Obj = Record<string, unknown>;
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null && !Array.isArray(x);
const isStr = (x: unknown): x is string => typeof x === 'string';
const isNumOrNull = (x: unknown) => x === null || typeof x === 'number';

export function isStatus(x: unknown): x is RunStatus {
  return (RUN_STATUSES as readonly unknown[]).includes(x);
}

/** A shallow check: an object whose `type` is an engine event type (the fields are the engine's to keep right). */
export function isEngineEvent(x: unknown): x is EngineEvent {
  if (!isObj(x) || !isStr(x.type) || !Object.hasOwn(EVENT_TYPES, x.type)) return false;
  // The samples view writes these strings into the page: a samples event must at least hold a list.
  return x.type !== 'samples' || Array.isArray(x.samples);
}

function isSummary(x: unknown): x is DashboardSummary {
  return (
    isObj(x) &&
    isStr(x.name) &&
    isStr(x.runDir) &&
    isStatus(x.status) &&
    typeof x.step === 'number' &&
    isNumOrNull(x.totalSteps) &&
    isNumOrNull(x.lastLoss) &&
    typeof x.checkpoints === 'number' &&
    (x.config === null || isObj(x.config))
  );
}

const isEvents = (x: unknown): x is EngineEvent[] => Array.isArray(x) && x.every(isEngineEvent);
const isView = (x: unknown): x is DashboardView => isObj(x) && (x.abQuantity === undefined || isStr(x.abQuantity));

/**
 * PackedModules.values as it arrived: VS Code (engines ≥ 1.57) recreates typed arrays in the page; an ArrayBuffer or
 * a plain number list (another transport) is accepted too. Anything else is null.
 */
export function packedValues(x: unknown): Float32Array | null {
  if (x instanceof Float32Array) return x;
  if (x instanceof ArrayBuffer && x.byteLength % 4 === 0) return new Float32Array(x);
  if (Array.isArray(x) && x.every((v) => typeof v === 'number' || v === null))
    return Float32Array.from(x, (v) => v ?? NaN);
  return null;
}

function isPacked(x: unknown, events: EngineEvent[]): boolean {
  if (x === undefined) return true;
  if (!isObj(x) || !Array.isArray(x.modules) || !x.modules.every(isStr)) return false;
  const values = packedValues(x.values);
  const steps = events.filter((e) => e.type === 'step').length;
  return values !== null && values.length === steps * x.modules.length * PACKED_FIELDS.length;
}

const HOST_CHECKS: { [K in keyof HostMessages]: (m: Obj) => boolean } = {
  init: (m) =>
    isStr(m.runDir) &&
    isSummary(m.summary) &&
    isEvents(m.events) &&
    isPacked(m.packed, m.events) &&
    (m.view === undefined || isView(m.view)),
  events: (m) => isEvents(m.events) && isPacked(m.packed, m.events),
  summary: (m) => isSummary(m.summary),
  missing: (m) => isStr(m.runDir) && isStr(m.message),
};

const WEBVIEW_CHECKS: { [K in keyof WebviewMessages]: (m: Obj) => boolean } = {
  ready: () => true,
  openFile: (m) => isStr(m.path) && m.path.length > 0,
  saveView: isView,
};

function check<M>(checks: { [K in keyof M]: (m: Obj) => boolean }, x: unknown): boolean {
  if (!isObj(x) || x.v !== DASHBOARD_PROTOCOL || !isStr(x.type) || !Object.hasOwn(checks, x.type)) return false;
  return checks[x.type as keyof M](x);
}

export function isHostToDashboard(x: unknown): x is HostToDashboard {
  return check(HOST_CHECKS, x);
}

export function isDashboardToHost(x: unknown): x is DashboardToHost {
  return check(WEBVIEW_CHECKS, x);
}

// ---- packing ------------------------------------------------------------------------------------------------------

/**
 * Packs the step events' module figures (see PackedModules) when every step event lists the same modules in the same
 * order (always, within one run); otherwise the events go as they are. The input is not modified.
 */
export function packModules(events: EngineEvent[]): { events: EngineEvent[]; packed?: PackedModules } {
  const steps = events.filter((e) => e.type === 'step');
  const first = steps[0]?.modules;
  if (!first?.length) return { events };
  const modules = first.map((m) => m.module);
  if (!steps.every((e) => e.modules.length === modules.length && e.modules.every((m, i) => m.module === modules[i])))
    return { events };
  const width = modules.length * PACKED_FIELDS.length;
  const values = new Float32Array(steps.length * width);
  let k = 0;
  const out = events.map((e) => {
    if (e.type !== 'step') return e;
    for (const [i, m] of e.modules.entries()) {
      PACKED_FIELDS.forEach((f, j) => {
        const v = (m as unknown as Record<string, unknown>)[f];
        values[k * width + i * PACKED_FIELDS.length + j] = typeof v === 'number' ? v : NaN;
      });
    }
    k++;
    return { ...e, modules: [] };
  });
  return { events: out, packed: { modules, values } };
}
