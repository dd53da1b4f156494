// The engine process's side of a `chat` request (src/protocol/chat.ts): the model is loaded once and answers every
// `say` the host sends, streaming `token` messages, one conversation at a time in the order the messages came (a
// reset or a new system message waits for the answer before it). `cancel` ends the answer being written; the
// request itself ends when the host stops it or goes away (`signal`), after the answer in progress.
import { toErrorInfo } from '../../protocol/errors';
import { CHAT_SIDES, type ChatRequest, type ChatToHost, type HostToChat } from '../../protocol/chat';
import { ChatSession } from './chat-session';

export interface ChatServer {
  /** A message from the host for this request. */
  deliver(m: HostToChat): void;
  /** Resolves when the chat ends (stop or disconnect); rejects when the model cannot be loaded. */
  done: Promise<{ turns: number }>;
}

export function serveChat(
  req: ChatRequest,
  id: number,
  send: (m: ChatToHost) => void,
  signal: AbortSignal,
): ChatServer {
  const queue: HostToChat[] = [];
  const cancelled = new Set<number>(); // turns cancelled before they started
  let current: { turn: number; controller: AbortController } | null = null;
  let wake: (() => void) | null = null;
  signal.addEventListener('abort', () => {
    current?.controller.abort();
    wake?.();
  });

  const deliver = (m: HostToChat) => {
    if (m.type === 'cancel') {
      if (current?.turn === m.turn) current.controller.abort();
      else cancelled.add(m.turn);
      return;
    }
    queue.push(m);
    wake?.();
  };

  const next = async (): Promise<HostToChat | null> => {
    while (!queue.length && !signal.aborted) await new Promise<void>((r) => (wake = r));
    wake = null;
    return signal.aborted ? null : queue.shift()!;
  };

  const run = async (): Promise<{ turns: number }> => {
    const session = await ChatSession.open({ ...req, device: req.device ?? 'auto' });
    let turns = 0;
    try {
      send({ type: 'chat-ready', id, info: session.info });
      for (let m = await next(); m; m = await next()) {
        if (m.type === 'system') session.setSystem(m.text);
        else if (m.type === 'reset') session.reset();
        else if (m.type === 'say') {
          const controller = new AbortController();
          if (cancelled.delete(m.turn)) controller.abort();
          current = { turn: m.turn, controller };
          const turn = m.turn;
          try {
            const answers = await session.say(m.text, {
              compare: m.compare,
              order: 'interleaved',
              signal: controller.signal,
              onStart: (side, p) =>
                send({ type: 'turn-start', id, turn, side, promptTokens: p.promptTokens, dropped: p.dropped }),
              onToken: (side, text) => send({ type: 'token', id, turn, side, text }),
            });
            for (const side of CHAT_SIDES) {
              const a = answers[side];
              if (a) send({ type: 'turn-end', id, turn, side, text: a.text, reason: a.reason, tokens: a.tokens });
            }
            turns++;
          } catch (err) {
            send({ type: 'turn-error', id, turn, error: toErrorInfo(err) });
          } finally {
            current = null;
          }
        }
      }
      return { turns };
    } finally {
      session.dispose();
    }
  };

  return { deliver, done: run() };
}
