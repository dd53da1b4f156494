// The A/B heatmap's colour bar (#ab-colorbar): the ramp as wide as a third of the map (at least 240 px), tick labels
// under it in one number format (the balanced value among them on a ratio's scale), the range's ends beside it
// ("≤ 0.5" when cells below were clipped to the end colour), what the two sides mean, and the "no data yet" swatch.
// data-palette (diverging-light, diverging-dark, viridis), data-lo, data-mid and data-hi carry what it shows.
import { h, setText } from '../shared/dom';
import { sig3 } from '../shared/format';
import type { Theme } from '../shared/theme';
import { formatTicks } from '../shared/ticks';
import { heatPosition, logTicks, type HeatScale } from './heat-scale';

export type Palette = 'diverging-light' | 'diverging-dark' | 'viridis';

export interface BarSpec {
  palette: Palette;
  ramp: string[];
  scale: HeatScale;
  lowMeans?: string; // ratios: what the low end means ("A's side larger")
  highMeans?: string;
  midLabel?: string; // ratios: the balanced value's name ("λ", "1")
}

const BAR_H = 12;
const TICK_H = 4;

export class ColorBar {
  readonly el: HTMLElement;
  private readonly canvas = h('canvas');
  private readonly ticks = h('div', { class: 'colorbar-ticks' });
  private readonly bar = h('div', { id: 'ab-colorbar', class: 'colorbar' }, [this.canvas, this.ticks]);
  private readonly lowEnd = h('span', { class: 'colorbar-end muted' });
  private readonly highEnd = h('span', { class: 'colorbar-end muted' });
  private readonly caption = h('span', { class: 'colorbar-caption muted' });
  readonly swatch = h('span', { class: 'nodata-swatch', attrs: { 'aria-hidden': 'true' } });

  constructor() {
    this.el = h('div', { class: 'colorbar-row' }, [
      this.lowEnd,
      this.bar,
      this.highEnd,
      this.caption,
      h('span', { class: 'nodata-key muted' }, [this.swatch, ' no data yet']),
    ]);
  }

  draw(spec: BarSpec, theme: Theme, width: number): void {
    const { scale, ramp } = spec;
    const w = Math.round(Math.min(480, Math.max(240, width)));
    const ctx = sized(this.canvas, w, BAR_H + TICK_H);
    for (let x = 0; x < w; x++) {
      ctx.fillStyle = rampColor(ramp, x / (w - 1));
      ctx.fillRect(x, 0, 1, BAR_H);
    }
    const values = logTicks(scale.lo, scale.hi, scale.mid === null ? [] : [scale.mid]);
    const labels = formatTicks(
      values.map((t) => 10 ** t),
      true,
    );
    ctx.fillStyle = theme.muted;
    this.ticks.replaceChildren(
      ...values.map((t, i) => {
        const x = heatPosition(t, scale) * (w - 1);
        ctx.fillRect(Math.round(x), BAR_H, 1, TICK_H);
        const mid = scale.mid !== null && Math.abs(t - scale.mid) < 1e-9;
        const label = h('span', {
          class: mid ? 'tick mid' : 'tick',
          text: mid && spec.midLabel ? spec.midLabel : labels[i],
        });
        label.style.left = `${x}px`;
        return label;
      }),
    );
    this.bar.style.width = `${w}px`;
    Object.assign(this.bar.dataset, {
      palette: spec.palette,
      lo: String(10 ** scale.lo),
      hi: String(10 ** scale.hi),
      mid: scale.mid === null ? '' : String(10 ** scale.mid),
    });
    setText(this.lowEnd, `${scale.clippedLow ? '≤ ' : ''}${sig3(10 ** scale.lo)}`);
    setText(this.highEnd, `${scale.clippedHigh ? '≥ ' : ''}${sig3(10 ** scale.hi)}`);
    setText(
      this.caption,
      spec.lowMeans
        ? `◀ ${spec.lowMeans} · ${spec.highMeans} ▶ (log scale)`
        : 'log scale, 5th–95th percentile of the map',
    );
  }
}

/** A canvas of w × h CSS pixels at the screen's pixel ratio; returns its context in CSS pixels. */
export function sized(c: HTMLCanvasElement, w: number, hgt: number): CanvasRenderingContext2D {
  const dpr = window.devicePixelRatio || 1;
  if (c.width !== Math.round(w * dpr) || c.height !== Math.round(hgt * dpr)) {
    [c.width, c.height] = [Math.round(w * dpr), Math.round(hgt * dpr)];
    c.style.width = `${w}px`;
    c.style.height = `${hgt}px`;
  }
  const ctx = c.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  return ctx;
}

/** The ramp's colour at f in [0, 1] as [r, g, b]. */
export function rampAt(ramp: string[], f: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, Number.isFinite(f) ? f : 0.5)) * (ramp.length - 1);
  const i = Math.min(ramp.length - 2, Math.floor(x));
  const [a, b] = [hex(ramp[i]), hex(ramp[i + 1])];
  const t = x - i;
  return [0, 1, 2].map((k) => Math.round(a[k] + (b[k] - a[k]) * t)) as [number, number, number];
}

function rampColor(ramp: string[], f: number): string {
  return `rgb(${rampAt(ramp, f).join(',')})`;
}

function hex(c: string): [number, number, number] {
  return [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16)) as [number, number, number];
}
