// What the charts of one page share on their step axis (DOM-free), as W&B and TensorBoard do: the same x domain, one
// zoom (drag on any chart zooms all; double-click zooms all out) and a cursor (hover one chart, or the A/B heatmap,
// and the same step is marked on every one). Views subscribe; whoever moves the cursor passes itself as `from` and
// is not told of its own move.

export type CursorListener = (step: number | null, from: unknown) => void;

export class StepSync {
  /** The x range every chart shows when not zoomed (set by the page before it draws). */
  domain: [number, number] | null = null;
  zoom: [number, number] | null = null;
  cursor: number | null = null;
  private readonly cursorListeners = new Set<CursorListener>();
  private readonly zoomListeners = new Set<() => void>();

  onCursor(fn: CursorListener): () => void {
    this.cursorListeners.add(fn);
    return () => this.cursorListeners.delete(fn);
  }

  onZoom(fn: () => void): () => void {
    this.zoomListeners.add(fn);
    return () => this.zoomListeners.delete(fn);
  }

  setCursor(step: number | null, from: unknown): void {
    if (step === this.cursor) return;
    this.cursor = step;
    for (const fn of this.cursorListeners) fn(step, from);
  }

  setZoom(zoom: [number, number] | null): void {
    this.zoom = zoom;
    for (const fn of this.zoomListeners) fn();
  }
}

/** The steps every chart of a run shows: from the first to the last step or eval logged (the baseline eval is 0). */
export function stepDomain(...xs: ArrayLike<number>[]): [number, number] | null {
  let [lo, hi] = [Infinity, -Infinity];
  for (const x of xs) if (x.length) [lo, hi] = [Math.min(lo, x[0]), Math.max(hi, x[x.length - 1])];
  if (lo > hi) return null;
  return hi > lo ? [lo, hi] : [lo - 1, hi + 1];
}
