// Colours from VS Code's theme (the CSS variables it sets on the webview's <html>), for what is drawn on canvases
// (charts, heatmaps) where CSS cannot reach. VS Code marks the theme's kind on <body>: vscode-light, vscode-dark,
// vscode-high-contrast, and vscode-high-contrast-light (which also carries vscode-high-contrast, for older pages):
// Light High Contrast is a light theme. A theme switch changes the variables and those classes; onThemeChange tells
// the views to redraw with the new colours.
import { distinctPalette } from './color';
import { isDarkKind, themeKind, type ThemeKind } from './theme-kind';

export { isDarkKind, themeKind, type ThemeKind };

export interface Theme {
  kind: ThemeKind;
  dark: boolean; // dark or hc-dark: light text on a dark background
  highContrast: boolean;
  fg: string;
  muted: string;
  grid: string;
  bg: string;
  font: string;
  /** Series colours: the theme's chart palette, with lines that look alike or vanish replaced (color.ts). */
  series: string[];
  warning: string;
  /** Changes whenever anything above does (a redraw is due). */
  key: string;
}

/** Per kind: text and grid defaults, and series colours that pass color.ts's checks on that kind's background. */
const DEFAULTS: Record<ThemeKind, { fg: string; muted: string; grid: string; bg: string; series: string[] }> = {
  dark: {
    fg: '#cccccc',
    muted: '#9d9d9d',
    grid: '#454545',
    bg: '#1f1f1f',
    series: ['#3794ff', '#d18616', '#89d185', '#b180d7', '#f14c4c', '#4ec9b0', '#ff8fd0', '#cca700'],
  },
  light: {
    fg: '#333333',
    muted: '#717171',
    grid: '#c8c8c8',
    bg: '#ffffff',
    series: ['#0066b8', '#c45500', '#2e7d32', '#8e24aa', '#c62828', '#00838f', '#6d4c41', '#ad1457'],
  },
  'hc-dark': {
    fg: '#ffffff',
    muted: '#ffffff',
    grid: '#6fc3df',
    bg: '#000000',
    series: ['#4fc1ff', '#ffa657', '#89d185', '#d2a8ff', '#ff7b72', '#f2cc60', '#56d4dd', '#ff9bce'],
  },
  'hc-light': {
    fg: '#292929',
    muted: '#292929',
    grid: '#0f4a85',
    bg: '#ffffff',
    series: ['#0f4a85', '#b5200d', '#1b5e20', '#6a1b9a', '#8a4b00', '#006064', '#ad1457'],
  },
};

const CHART_VARS = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'];

function cssVar(style: CSSStyleDeclaration, name: string, fallback: string): string {
  return style.getPropertyValue(name).trim() || fallback;
}

export function readTheme(): Theme {
  const s = getComputedStyle(document.documentElement);
  const kind = themeKind(document.body.classList, document.body.dataset.vscodeThemeKind);
  const d = DEFAULTS[kind];
  const bg = cssVar(s, '--vscode-editor-background', d.bg);
  const preferred = CHART_VARS.map((c, i) => cssVar(s, `--vscode-charts-${c}`, d.series[i]));
  const theme: Omit<Theme, 'key'> = {
    kind,
    dark: isDarkKind(kind),
    highContrast: kind === 'hc-dark' || kind === 'hc-light',
    fg: cssVar(s, '--vscode-editor-foreground', d.fg),
    muted: cssVar(s, '--vscode-descriptionForeground', d.muted),
    grid: cssVar(s, '--vscode-editorWidget-border', d.grid),
    bg,
    font: `${cssVar(s, '--vscode-font-size', '12px')} ${cssVar(s, '--vscode-font-family', 'sans-serif')}`,
    series: distinctPalette(preferred, d.series, bg),
    warning: cssVar(s, '--vscode-editorWarning-foreground', kind === 'light' ? '#bf8803' : '#cca700'),
  };
  return { ...theme, key: JSON.stringify(theme) };
}

/**
 * Calls `cb` with the new theme after VS Code switches theme (body class, its data-vscode-theme-kind, or the
 * variables on <html>); changes that leave the colours as they were (a context menu's class on <body>) are ignored.
 * Returns the unsubscribe.
 */
export function onThemeChange(cb: (theme: Theme) => void): () => void {
  let key = readTheme().key;
  const obs = new MutationObserver(() => {
    const t = readTheme();
    if (t.key === key) return;
    key = t.key;
    cb(t);
    document.body.dataset.loraplusTheme = t.kind; // the page has redrawn in this kind (end-to-end tests read it)
  });
  document.body.dataset.loraplusTheme = readTheme().kind;
  obs.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
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
  const long = /^#([0-9a-f]{6})[0-9a-f]{2}$/i.exec(color);
  if (long) return withAlpha(`#${long[1]}`, alpha);
  const rgb = /^rgba?\(([^)]+)\)$/.exec(color);
  if (rgb) return `rgba(${rgb[1].split(',').slice(0, 3).join(',')}, ${alpha})`;
  return color;
}
