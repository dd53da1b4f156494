// The theme's kind from what VS Code sets on a webview's <body> (DOM-free): the class vscode-light, vscode-dark,
// vscode-high-contrast, or vscode-high-contrast-light, which also carries vscode-high-contrast for older pages, so
// it is checked first: Light High Contrast is a light theme.

export type ThemeKind = 'light' | 'dark' | 'hc-light' | 'hc-dark';

/** The kind from <body>'s classes (or its data-vscode-theme-kind): high-contrast-light first, it carries both. */
export function themeKind(classes: Iterable<string>, dataKind?: string): ThemeKind {
  const c = new Set([...classes, ...(dataKind ? [dataKind] : [])]);
  if (c.has('vscode-high-contrast-light')) return 'hc-light';
  if (c.has('vscode-high-contrast')) return 'hc-dark';
  if (c.has('vscode-light')) return 'light';
  return 'dark';
}

export const isDarkKind = (k: ThemeKind): boolean => k === 'dark' || k === 'hc-dark';
