// The webview's side of VS Code: acquireVsCodeApi() may be called once per page, so this module calls it once and
// hands out the same object. The initial state comes from <body data-state> (webview-html.ts puts it there) or,
// after a reload, from getState().
interface VsCodeApi<S> {
  postMessage(message: unknown): void;
  getState(): S | undefined;
  setState(state: S): S;
}
declare function acquireVsCodeApi<S>(): VsCodeApi<S>;

let api: VsCodeApi<unknown> | null = null;

export function vscodeApi<S>(): VsCodeApi<S> {
  api ??= acquireVsCodeApi<unknown>();
  return api as VsCodeApi<S>;
}

/**
 * The page's state: <body data-state> JSON first (a fresh panel), then the state saved by setState (a restored one).
 */
export function initialState<S>(): S | undefined {
  const raw = document.body.dataset.state;
  if (raw) {
    try {
      return JSON.parse(raw) as S;
    } catch {
      // fall through to the saved state
    }
  }
  return vscodeApi<S>().getState();
}
