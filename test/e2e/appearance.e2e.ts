// How the webviews look in a real VS Code, after the training and compare scenarios (their dashboard and Compare
// tabs are open): the dashboard opens at the editor's full width, says where it computes as information, lines up its
// step axes and shares one cursor; the engine wrote eval progress and kept native noise out of the log. Then VS Code's
// theme is switched (the workbench.colorTheme setting) through all four kinds; each time the view on screen must
// follow live (no reload) and the other one come back in the new theme, both readable: title text, section headers
// that are no dark bars, chart lines that differ, the heatmap's light palette in light kinds. Screenshots of each
// kind go to the artifacts folder. Run by studio.e2e.test.ts.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { FrameLocator, Locator } from 'playwright-core';
import { contrast, deltaE, parseColor, type Rgb } from '../../webview/shared/color';
import { e2eIt, until, type Shared, type Studio } from './harness';
import { PALETTE_RUN } from './training.e2e';
import { readEvents } from './workspace';

const DASHBOARD = `LoRA+ ${PALETTE_RUN}`;
const COMPARE = 'LoRA+ Compare';

/** VS Code's default theme of each kind: its name, the workbench's class, the webview <body>'s class. */
const THEMES = [
  // name: the setting's value; label: the row in Preferences: Color Theme (its description is the name)
  { kind: 'light', name: 'Default Light Modern', label: 'Light Modern', workbench: 'vs', body: 'vscode-light' },
  {
    kind: 'hc-dark',
    name: 'Default High Contrast',
    label: 'Dark High Contrast',
    workbench: 'hc-black',
    body: 'vscode-high-contrast',
  },
  {
    kind: 'hc-light',
    name: 'Default High Contrast Light',
    label: 'Light High Contrast',
    workbench: 'hc-light',
    body: 'vscode-high-contrast-light',
  },
  { kind: 'dark', name: 'Default Dark Modern', label: 'Dark Modern', workbench: 'vs-dark', body: 'vscode-dark' },
] as const;

/** What the functions run inside a webview use (the root tsconfig has no DOM types). */
interface Win {
  document: { body: { className: string; dataset: Record<string, string | undefined> } };
  getComputedStyle(e: unknown): { color: string; backgroundColor: string; borderColor: string };
}
type Prop = 'color' | 'backgroundColor' | 'borderColor';
/** A computed style of an element in a webview (the function runs in the page: no closure, the name is its arg). */
const css = (l: Locator, prop: Prop) =>
  l.evaluate((e, p) => (globalThis as unknown as Win).getComputedStyle(e)[p], prop);
const cssAll = (l: Locator, prop: Prop) =>
  l.evaluateAll((es, p) => es.map((e) => (globalThis as unknown as Win).getComputedStyle(e)[p]), prop);

/** A computed colour (rgb(), rgba(), or color(srgb …) as color-mix() computes) as seen over `under`. */
function rgb(css: string, under?: Rgb): Rgb {
  const srgb = /^color\(srgb ([^)]+)\)$/.exec(css);
  const m = srgb ?? /rgba?\(([^)]+)\)/.exec(css);
  const parts = m
    ? m[1]
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number)
    : [];
  const c = srgb ? (parts.slice(0, 3).map((v) => v * 255) as Rgb) : (parseColor(css) ?? under ?? [128, 128, 128]);
  const a = parts.length > 3 ? parts[3] : css === 'transparent' ? 0 : 1;
  return under ? (c.map((v, i) => Math.round(a * v + (1 - a) * under[i])) as Rgb) : c;
}

/** Picks the theme in Preferences: Color Theme, as a user does (VS Code applies it live). */
async function switchTheme(studio: Studio, t: (typeof THEMES)[number]): Promise<void> {
  // A webview redrawing in the last theme can take the focus and close the palette as it opens: try again then.
  for (let attempt = 1; ; attempt++) {
    try {
      await studio.runCommand('Preferences: Color Theme');
      await studio.page.locator('.quick-input-widget input[type="text"]').fill(t.label, { timeout: 10_000 });
      await studio.quickPickRow(t.label).click({ timeout: 10_000 });
      break;
    } catch (err) {
      if (attempt === 3) throw err;
      await studio.page.keyboard.press('Escape');
    }
  }
  await studio.page.locator(`.monaco-workbench.${t.workbench}`).waitFor({ timeout: 15_000 });
}

/** Waits until the page has redrawn in this kind (theme.ts marks <body> once its views have their new colours). */
export async function followed(view: FrameLocator, kind: string, bodyClass: string): Promise<void> {
  await until(`the webview to redraw in ${kind}`, async () => {
    const [mark, cls] = await view
      .locator('body')
      .evaluate((b) => [
        (b as Win['document']['body']).dataset.loraplusTheme,
        (b as Win['document']['body']).className,
      ]);
    return mark === kind && (cls ?? '').split(/\s+/).includes(bodyClass) ? true : undefined;
  });
}

export function appearanceTests(shared: () => Shared): void {
  e2eIt(
    'opens the dashboard full width; backend as information; eval progress written; charts share the step axis',
    shared,
    async ({ studio, workspace }) => {
      const dash = await studio.webview(DASHBOARD);
      const frame = studio.page.locator('iframe.webview.ready').filter({ visible: true }).first();
      const width = (await frame.boundingBox())?.width ?? 0;
      assert.ok(width >= 800, `the dashboard has the editor's full width (${width} px of a 1400 px window)`);
      assert.equal(await studio.notification(/LoRA\+ tiny\.lora\.yaml/).isVisible(), false, 'no progress toast left');

      const backend = ((await dash.locator('#run-backend').textContent()) ?? '').trim();
      assert.match(backend, /^CPU · WebAssembly( SIMD)?, 1 thread/);
      assert.doesNotMatch((await dash.locator('header').textContent()) ?? '', /Cannot find module|tfjs-node-gpu/);
      const log = await studio.outputChannel();
      assert.match(log, /backend: CPU · WebAssembly/, 'the log says where it computes');
      assert.doesNotMatch(log, /Couldn't load Vulkan|BackendVk|artificially reduced|Cannot find module/);

      const events = readEvents(path.join(workspace, 'runs', PALETTE_RUN));
      for (const [i, e] of events.entries()) {
        if (e.type !== 'eval') continue;
        const before = events.slice(0, i).filter((x) => x.type === 'eval_progress' && x.step === e.step);
        assert.ok(before.length > 0, `an eval_progress before the eval at step ${e.step}`);
      }

      // The eval chart lies under the train loss with the same plot edges; hovering one marks the step on both.
      const [loss, evals] = await Promise.all(
        ['#chart-loss', '#chart-eval'].map((id) => dash.locator(`${id} .u-over`).boundingBox()),
      );
      assert.ok(loss && evals && Math.abs(loss.x - evals.x) <= 1 && Math.abs(loss.width - evals.width) <= 1);
      await dash.locator('#chart-loss .u-over').hover({ position: { x: loss.width / 2, y: loss.height / 2 } });
      const cursorX = (id: string) => dash.locator(`${id} .u-cursor-x`).boundingBox();
      const [a, b] = [await cursorX('#chart-loss'), await cursorX('#chart-eval')];
      assert.ok(a && b && Math.abs(a.x - b.x) <= 2, `one cursor: ${JSON.stringify([a, b])}`);
      await studio.screenshot('appearance-dashboard-full-width');
    },
  );

  e2eIt(
    'follows a theme switch live in all four kinds: the dashboard and Compare stay readable',
    shared,
    async ({ studio }) => {
      for (const [i, t] of THEMES.entries()) {
        // One view is shown while the theme switches and must follow it live (a mark set in its page before the
        // switch is still there: no reload); the other is shown next, restored in the new theme. They alternate.
        const [live, next] = i % 2 === 0 ? [DASHBOARD, COMPARE] : [COMPARE, DASHBOARD];
        await (await studio.webview(live)).locator('body').evaluate(mark);
        await switchTheme(studio, t);
        for (const title of [live, next]) {
          const view = await studio.webview(title);
          await followed(view, t.kind, t.body);
          if (title === live)
            assert.equal(await view.locator('body').evaluate(marked), true, `${title} redrew without a reload`);
          await (title === DASHBOARD ? checkDashboard(view, t.kind) : checkTitle(view, '#compare-title', t.kind));
          await studio.screenshot(`appearance-${t.kind}-${title === DASHBOARD ? 'dashboard' : 'compare'}`);
        }
      }
    },
  );
}

const isLight = (kind: string) => kind === 'light' || kind === 'hc-light';
export const mark = (b: unknown) => void ((b as Win['document']['body']).dataset.e2eLive = '1');
export const marked = (b: unknown) => (b as Win['document']['body']).dataset.e2eLive === '1';

/** The title's text stands out from a page of the kind's lightness. */
export async function checkTitle(view: FrameLocator, title: string, kind: string): Promise<Rgb> {
  const bg = rgb(await css(view.locator('body'), 'backgroundColor'));
  const fg = rgb(await css(view.locator(title), 'color'));
  assert.ok(contrast(fg, bg) >= 4.5, `${title} in ${kind}: ${fg} on ${bg}`);
  assert.equal(bg[0] > 128, isLight(kind), `a ${isLight(kind) ? 'light' : 'dark'} page in ${kind}: ${bg}`);
  return bg;
}

/** The dashboard: title, the heatmap's palette, section headers that are no dark bar, chart lines that differ. */
export async function checkDashboard(dash: FrameLocator, kind: string): Promise<void> {
  // The heatmap redraws on the next frame after the switch (or once a restored page has its run).
  const want = isLight(kind) ? 'diverging-light' : 'diverging-dark';
  let palette: string | null = null;
  await until(
    `the heatmap's ${want} palette in ${kind}`,
    async () =>
      (palette = await dash.locator('#ab-colorbar').getAttribute('data-palette')) === want ? true : undefined,
    30_000,
    () => palette,
  );
  const bg = await checkTitle(dash, '#run-title', kind);
  const header = dash.locator('vscode-collapsible .collapsible-header').first();
  const headBg = rgb(await css(header, 'backgroundColor'), bg);
  const headFg = rgb(await css(dash.locator('vscode-collapsible .title').first(), 'color'));
  assert.ok(contrast(headFg, headBg) >= 4.5, `section header text in ${kind}`);
  if (isLight(kind)) assert.ok(contrast(headBg, bg) < 1.5, `no dark bar for a section header in ${kind}: ${headBg}`);
  const legend = dash.locator('#chart-lr .u-legend .u-series:not(:first-child) .u-marker');
  const markers = await until('the lr chart legend', async () => {
    const m = await cssAll(legend, 'borderColor');
    return m.length >= 2 ? m : undefined;
  });
  const [a, b] = markers.map((m) => rgb(m));
  assert.ok(deltaE(a, b) >= 20, `the A and B lines differ in ${kind}: ${markers}`);
}
