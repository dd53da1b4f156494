// Colours from VS Code's theme (the CSS variables it sets on the webview's <html>), for what is drawn on canvases
// (charts, heatmaps) where CSS cannot reach. A theme switch changes the variables and <body>'s class; onThemeChange
// tells the views to redraw with the new colours.

export interface Theme {
  fg: string;
  muted: string;
  grid: string;
  bg: string;
  font: string;
  /** Distinct series colours (VS Code's chart palette). */
  series: string[];
  warning: string;
  dark: boolean;
}

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  return style.getPropertyValue(name).trim() || fallback;
}

export function readTheme(): Theme {
  const s = getComputedStyle(document.documentElement);
  const dark = !document.body.classList.contains('vscode-light');
  const fg = cssVar(s, '--vscode-editor-foreground', dark ? '#cccccc' : '#333333');
  return {
    fg,
    muted: cssVar(s, '--vscode-descriptionForeground', dark ? '#9d9d9d' : '#717171'),
    grid: cssVar(s, '--vscode-editorWidget-border', dark ? '#454545' : '#c8c8c8'),
    bg: cssVar(s, '--vscode-editor-background', dark ? '#1e1e1e' : '#ffffff'),
    font: `${cssVar(s, '--vscode-font-size', '12px')} ${cssVar(s, '--vscode-font-family', 'sans-serif')}`,
    series: [
      cssVar(s, '--vscode-charts-blue', '#3794ff'),
      cssVar(s, '--vscode-charts-orange', '#d18616'),
      cssVar(s, '--vscode-charts-green', '#89d185'),
      cssVar(s, '--vscode-charts-purple', '#b180d7'),
      cssVar(s, '--vscode-charts-red', '#f14c4c'),
      cssVar(s, '--vscode-charts-yellow', '#cca700'),
    ],
    warning: cssVar(s, '--vscode-editorWarning-foreground', '#cca700'),
    dark,
  };
}

/** Calls `cb` after VS Code switches theme; returns the unsubscribe. */
export function onThemeChange(cb: () => void): () => void {
  const obs = new MutationObserver(() => cb());
  obs.observe(document.body, { attributes: true, attributeFilter: ['class'] });
  obs.observe(document.documentElement, { attributes: true, attributeFilter: ['style'] });
  return () => obs.disconnect();
}

/** `#rrggbb` (or rgb()) with an alpha, for faded raw lines under their smoothed curve. */
export function withAlpha(color: string, alpha: number): string {
  const hex = /^#([0-9a-f]{6})$/i.exec(color);
  if (hex) {
    const [r, g, b] = [0, 2, 4].map((i) => parseInt(hex[1].slice(i, i + 2), 16));
    return `rgba(${r}, ${g}, ${b}, ${alpha})`;
  }
  const short = /^#([0-9a-f]{3})$/i.exec(color);
  if (short) return withAlpha(`#${[...short[1]].map((c) => c + c).join('')}`, alpha);
  const rgb = /^rgba?\(([^)]+)\)$/.exec(color);
  if (rgb) return `rgba(${rgb[1].split(',').slice(0, 3).join(',')}, ${alpha})`;
  return color;
}
