// Colour arithmetic for the themes (DOM-free): parse what VS Code's CSS variables hold (#rgb, #rrggbb, #rrggbbaa,
// rgb(), rgba()), WCAG contrast, and a perceptual distance (CIE76 ΔE in Lab), so a chart palette can be checked for
// lines that look alike or vanish into the background.

export type Rgb = [number, number, number];

/** [r, g, b] in 0…255, or null for what is not a colour we read (a name, a var(), transparent). */
export function parseColor(c: string): Rgb | null {
  const s = c.trim().toLowerCase();
  const hex = /^#([0-9a-f]{3,8})$/.exec(s);
  if (hex) {
    const d = hex[1];
    if (d.length === 3 || d.length === 4) return [0, 1, 2].map((i) => parseInt(d[i] + d[i], 16)) as Rgb;
    if (d.length === 6 || d.length === 8) return [0, 2, 4].map((i) => parseInt(d.slice(i, i + 2), 16)) as Rgb;
    return null;
  }
  const fn = /^rgba?\(([^)]+)\)$/.exec(s);
  if (!fn) return null;
  const parts = fn[1]
    .split(/[\s,/]+/)
    .filter(Boolean)
    .slice(0, 3)
    .map(Number);
  return parts.length === 3 && parts.every((v) => Number.isFinite(v)) ? (parts as Rgb) : null;
}

/** WCAG 2 relative luminance, 0 (black) … 1 (white). */
export function luminance([r, g, b]: Rgb): number {
  const lin = (v: number) => {
    const x = v / 255;
    return x <= 0.03928 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
}

/** WCAG contrast ratio, 1 … 21. */
export function contrast(a: Rgb, b: Rgb): number {
  const [x, y] = [luminance(a), luminance(b)];
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}

function lab([r, g, b]: Rgb): [number, number, number] {
  const lin = (v: number) => {
    const x = v / 255;
    return x <= 0.04045 ? x / 12.92 : ((x + 0.055) / 1.055) ** 2.4;
  };
  const [R, G, B] = [lin(r), lin(g), lin(b)];
  const xyz = [
    (0.4124 * R + 0.3576 * G + 0.1805 * B) / 0.95047,
    0.2126 * R + 0.7152 * G + 0.0722 * B,
    (0.0193 * R + 0.1192 * G + 0.9505 * B) / 1.08883,
  ];
  const f = (t: number) => (t > 216 / 24389 ? Math.cbrt(t) : ((24389 / 27) * t + 16) / 116);
  const [fx, fy, fz] = xyz.map(f);
  return [116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)];
}

/** CIE76 ΔE: about 2 is just noticeable; two chart lines want 20 or more. */
export function deltaE(a: Rgb, b: Rgb): number {
  const [p, q] = [lab(a), lab(b)];
  return Math.hypot(p[0] - q[0], p[1] - q[1], p[2] - q[2]);
}

export const MIN_LINE_CONTRAST = 3; // WCAG's minimum for graphics against their background
export const MIN_LINE_DISTANCE = 20; // ΔE between any two series

/**
 * A series palette for a background: each preferred colour (the theme's chart colours) is kept when it stands out
 * from the background and from the colours already kept; otherwise the first fallback that does takes its place.
 * Fallbacks are per theme kind and chosen to pass; if none does, the preferred colour stays.
 */
export function distinctPalette(preferred: string[], fallback: string[], background: string): string[] {
  const bg = parseColor(background) ?? [128, 128, 128];
  const kept: Rgb[] = [];
  const out: string[] = [];
  const ok = (c: Rgb) => contrast(c, bg) >= MIN_LINE_CONTRAST && kept.every((k) => deltaE(k, c) >= MIN_LINE_DISTANCE);
  const spare = [...fallback];
  for (const want of preferred) {
    const rgb = parseColor(want);
    let pick: [string, Rgb] | null = rgb && ok(rgb) ? [want, rgb] : null;
    for (let i = 0; !pick && i < spare.length; i++) {
      const f = parseColor(spare[i]);
      if (f && ok(f)) {
        pick = [spare[i], f];
        spare.splice(i, 1);
      }
    }
    pick ??= [want, rgb ?? [128, 128, 128]];
    kept.push(pick[1]);
    out.push(pick[0]);
  }
  return out;
}
