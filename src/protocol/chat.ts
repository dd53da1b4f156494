// Talking to a model: the engine's long-lived `chat` request (src/protocol/host.ts carries it) and the chat panel's
// messages. The engine keeps the conversation (src/engine/train/chat-session.ts) and streams each answer token by
// token; with `compare`, the base model answers too (the adapter switched off), each side keeping its own history.
//   host → engine (while the request runs): say, system, reset, cancel; `stop` (host.ts) ends the request
//   engine → host: chat-ready once the model is loaded, then per turn and side: turn-start, token…, turn-end
//   (or one turn-error for the whole turn); the request's {id, result|error} comes when it ends.
// The panel's messages are two typed maps like the dashboard's, each message carrying the protocol version.
import type { ErrorInfo } from './errors';
import { isObject } from './json';
import type { Device } from './merge';

export type ChatSide = 'adapter' | 'base';
export const CHAT_SIDES: readonly ChatSide[] = ['adapter', 'base'];

export interface SamplingOptions {
  maxNewTokens: number;
  temperature: number; // 0: greedy
  topK: number; // 0: all tokens
  topP: number; // 1: all tokens
  seed: number;
}

export interface ChatRequest {
  model: string; // a model folder or a cached Hub id
  adapter?: string | null; // an adapter, checkpoint or run folder (a run: its final/ adapter, else newest checkpoint)
  /** A built-in name or a .jinja file; default: the adapter's run's data.chat_template, else the model's, else
   *  the built-in 'plain'. */
  template?: string | null;
  system?: string | null;
  options?: Partial<SamplingOptions>; // default: the model's generation_config.json, else greedy
  device?: Device; // default: auto
}

/** What was loaded, for headers and notices. */
export interface ChatInfo {
  model: string; // the folder
  modelType: string;
  adapter: string | null; // the adapter folder
  template: string; // where the template came from
  templateNote: string | null; // why it is not the model's own, when it is not
  maxPositions: number;
  backend: string;
  options: SamplingOptions;
  stops: string[]; // what ends an answer: eos and the template's end of turn
}

/** Why an answer ended: end of turn (eos or the template's marker), max new tokens, the model's positions, a cancel. */
export type ChatEnd = 'eos' | 'length' | 'positions' | 'stopped';

/** Host → engine while a chat request runs. `turn` numbers come from the host and tag what the engine sends back. */
export type HostToChat =
  | { type: 'say'; id: number; turn: number; text: string; compare: boolean }
  | { type: 'system'; id: number; text: string | null } // the system message of every side (history kept)
  | { type: 'reset'; id: number } // both histories cleared (the system message stays)
  | { type: 'cancel'; id: number; turn: number }; // ends the turn's answers where they are (kept in the history)

/** What the host sends on a running chat call (EngineCall.send fills in the id). */
export type ChatCommand = HostToChat extends infer M ? (M extends HostToChat ? Omit<M, 'id'> : never) : never;

/** Engine → host while a chat request runs. */
export type ChatToHost =
  | { type: 'chat-ready'; id: number; info: ChatInfo }
  | { type: 'turn-start'; id: number; turn: number; side: ChatSide; promptTokens: number; dropped: number }
  | { type: 'token'; id: number; turn: number; side: ChatSide; text: string }
  | { type: 'turn-end'; id: number; turn: number; side: ChatSide; text: string; reason: ChatEnd; tokens: number }
  | { type: 'turn-error'; id: number; turn: number; error: ErrorInfo }; // nothing of the turn was kept

export const CHAT_TO_HOST_TYPES: readonly string[] = ['chat-ready', 'turn-start', 'token', 'turn-end', 'turn-error'];
export const HOST_TO_CHAT_TYPES: readonly string[] = ['say', 'system', 'reset', 'cancel'];

export function isHostToChat(m: unknown): m is HostToChat {
  if (!isObject(m) || typeof m.id !== 'number' || !HOST_TO_CHAT_TYPES.includes(String(m.type))) return false;
  switch (m.type) {
    case 'say':
      return typeof m.turn === 'number' && typeof m.text === 'string' && typeof m.compare === 'boolean';
    case 'system':
      return m.text === null || typeof m.text === 'string';
    case 'cancel':
      return typeof m.turn === 'number';
    default:
      return true;
  }
}

// ---- the chat panel's messages -----------------------------------------------------------------------------------

// The webview sends `ready` first (again after every reload: hidden panels lose their page); the host answers with
// `init`, the whole transcript so far, then streams. The engine's messages reach the page translated into these.
export const CHAT_PROTOCOL = 1;

export type ChatStatus = 'loading' | 'ready' | 'busy' | 'error' | 'ended';

/** One side's answer to one turn, as far as it has come. */
export interface ChatAnswer {
  text: string;
  done: boolean;
  reason: ChatEnd | null;
  tokens: number;
  dropped: number; // oldest turns dropped from this side's history before it answered
}

export interface ChatTurn {
  turn: number;
  user: string;
  answers: Partial<Record<ChatSide, ChatAnswer>>;
  error: ErrorInfo | null;
}

/** What the panel is about; also its saved state (the serializer reopens it with a fresh conversation). */
export interface ChatPanelState {
  model: string;
  adapter: string | null;
  template: string | null;
}

/** Host → chat webview, by name. */
export interface HostMessages {
  init: {
    state: ChatPanelState;
    status: ChatStatus;
    message: string | null; // what the status line says (a load error, a notice)
    info: ChatInfo | null; // once the model is loaded
    compare: boolean;
    system: string | null;
    turns: ChatTurn[];
  };
  status: { status: ChatStatus; message: string | null; info: ChatInfo | null };
  turnStart: { turn: number; user: string; sides: ChatSide[] };
  token: { turn: number; side: ChatSide; text: string };
  answerStart: { turn: number; side: ChatSide; dropped: number };
  turnEnd: { turn: number; side: ChatSide; text: string; reason: ChatEnd; tokens: number };
  turnError: { turn: number; error: ErrorInfo };
  cleared: { system: string | null }; // the conversation was reset
}

/** Chat webview → host, by name. */
export interface WebviewMessages {
  ready: Record<string, never>;
  say: { text: string };
  cancel: Record<string, never>; // stop the answer being written
  reset: Record<string, never>;
  setSystem: { text: string | null };
  setCompare: { compare: boolean };
  restart: Record<string, never>; // start the engine again after an error
}

export type ChatMessage<M, K extends keyof M = keyof M> = K extends keyof M
  ? { v: typeof CHAT_PROTOCOL; type: K } & M[K]
  : never;
export type HostToChatPage = ChatMessage<HostMessages>;
export type ChatPageToHost = ChatMessage<WebviewMessages>;

export function hostMessage<K extends keyof HostMessages>(
  type: K,
  payload: HostMessages[K],
): ChatMessage<HostMessages, K> {
  return { v: CHAT_PROTOCOL, type, ...payload } as ChatMessage<HostMessages, K>;
}

export function webviewMessage<K extends keyof WebviewMessages>(
  type: K,
  payload: WebviewMessages[K],
): ChatMessage<WebviewMessages, K> {
  return { v: CHAT_PROTOCOL, type, ...payload } as ChatMessage<WebviewMessages, K>;
}

// ---- guards ------------------------------------------------------------------------------------------------------

type Obj = Record<string, unknown>;
const isStr = (x: unknown): x is string => typeof x === 'string';
const isNum = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const isStrOrNull = (x: unknown) => x === null || isStr(x);
const isSide = (x: unknown): x is ChatSide => x === 'adapter' || x === 'base';
const isEnd = (x: unknown): x is ChatEnd => x === 'eos' || x === 'length' || x === 'positions' || x === 'stopped';
const STATUSES: readonly unknown[] = ['loading', 'ready', 'busy', 'error', 'ended'];
const isError = (x: unknown): x is ErrorInfo => isObject(x) && isStr(x.code) && isStr(x.message);

export function isChatPanelState(x: unknown): x is ChatPanelState {
  return isObject(x) && isStr(x.model) && x.model !== '' && isStrOrNull(x.adapter) && isStrOrNull(x.template);
}

function isInfo(x: unknown): x is ChatInfo {
  return (
    isObject(x) &&
    isStr(x.model) &&
    isStrOrNull(x.adapter) &&
    isStr(x.template) &&
    isNum(x.maxPositions) &&
    isStr(x.backend) &&
    isObject(x.options) &&
    Array.isArray(x.stops)
  );
}

function isAnswer(x: unknown): x is ChatAnswer {
  return (
    isObject(x) &&
    isStr(x.text) &&
    typeof x.done === 'boolean' &&
    (x.reason === null || isEnd(x.reason)) &&
    isNum(x.tokens)
  );
}

function isTurn(x: unknown): x is ChatTurn {
  return (
    isObject(x) &&
    isNum(x.turn) &&
    isStr(x.user) &&
    isObject(x.answers) &&
    Object.entries(x.answers).every(([k, v]) => isSide(k) && isAnswer(v)) &&
    (x.error === null || isError(x.error))
  );
}

const HOST_CHECKS: { [K in keyof HostMessages]: (m: Obj) => boolean } = {
  init: (m) =>
    isChatPanelState(m.state) &&
    STATUSES.includes(m.status) &&
    isStrOrNull(m.message) &&
    (m.info === null || isInfo(m.info)) &&
    typeof m.compare === 'boolean' &&
    isStrOrNull(m.system) &&
    Array.isArray(m.turns) &&
    m.turns.every(isTurn),
  status: (m) => STATUSES.includes(m.status) && isStrOrNull(m.message) && (m.info === null || isInfo(m.info)),
  turnStart: (m) => isNum(m.turn) && isStr(m.user) && Array.isArray(m.sides) && m.sides.every(isSide),
  token: (m) => isNum(m.turn) && isSide(m.side) && isStr(m.text),
  answerStart: (m) => isNum(m.turn) && isSide(m.side) && isNum(m.dropped),
  turnEnd: (m) => isNum(m.turn) && isSide(m.side) && isStr(m.text) && isEnd(m.reason) && isNum(m.tokens),
  turnError: (m) => isNum(m.turn) && isError(m.error),
  cleared: (m) => isStrOrNull(m.system),
};

const WEBVIEW_CHECKS: { [K in keyof WebviewMessages]: (m: Obj) => boolean } = {
  ready: () => true,
  say: (m) => isStr(m.text) && m.text.trim() !== '',
  cancel: () => true,
  reset: () => true,
  setSystem: (m) => isStrOrNull(m.text),
  setCompare: (m) => typeof m.compare === 'boolean',
  restart: () => true,
};

function check<M>(checks: { [K in keyof M]: (m: Obj) => boolean }, x: unknown): boolean {
  if (!isObject(x) || x.v !== CHAT_PROTOCOL || !isStr(x.type) || !Object.hasOwn(checks, x.type)) return false;
  return checks[x.type as keyof M](x);
}

export function isHostToChatPage(x: unknown): x is HostToChatPage {
  return check(HOST_CHECKS, x);
}

export function isChatPageToHost(x: unknown): x is ChatPageToHost {
  return check(WEBVIEW_CHECKS, x);
}
