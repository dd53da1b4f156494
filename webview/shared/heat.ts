// The heatmaps' colour ramp (DOM-free, shared by the webviews): viridis in five stops, perceptual and readable on dark
// and light themes alike, for a value in [0, 1]; and which text colour stays legible on it.

const RAMP: [number, number, number][] = [
  [68, 1, 84],
  [59, 82, 139],
  [33, 145, 140],
  [94, 201, 98],
  [253, 231, 37],
];

export function heatColor(v: number): string {
  const t = Math.min(1, Math.max(0, v)) * (RAMP.length - 1);
  const i = Math.min(RAMP.length - 2, Math.floor(t));
  const f = t - i;
  const [a, b] = [RAMP[i], RAMP[i + 1]];
  return `rgb(${a.map((x, k) => Math.round(x + f * (b[k] - x))).join(', ')})`;
}

/** Black on the light (yellow-green) end of the ramp, white on the dark end. */
export function heatText(v: number): string {
  return v > 0.6 ? '#000' : '#fff';
}
