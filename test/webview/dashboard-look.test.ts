// The built dashboard page (media/dashboard.js + .css) in headless Chromium under the real webview shell and CSP, fed
// a synthetic run whose first steps are outliers, as a user's run is: the four theme kinds VS Code sets (body class
// and CSS variables, switched live as VS Code does), the A/B heatmap's robust scale, colour bar, hover frame and
// "no data yet", the step axes shared by the charts (domain, left edge, one cursor), eval progress in the header, and
// the backend said as information. Skipped where Chromium is not installed (.ci/run installs it).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { hostMessage } from '../../src/protocol/dashboard';
import type { DashboardSummary } from '../../src/protocol/dashboard';
import type { EngineEvent, ModuleStats, RunStartEvent } from '../../src/protocol/events';
import { contrast, deltaE, parseColor, type Rgb } from '../../webview/shared/color';
import { installWebviewStub, Uri } from '../vscode/webview-stub';

installWebviewStub();

/** What the functions run inside the page use (the root tsconfig has no DOM types). */
interface El {
  className: string;
  textContent: string | null;
  dataset: Record<string, string | undefined>;
  style: { setProperty(name: string, value: string): void };
  getAttribute(name: string): string | null;
}
interface Win {
  document: { body: El; documentElement: El; querySelector(sel: string): El | null };
  getComputedStyle(e: unknown): { color: string; backgroundColor: string; borderColor: string };
  postMessage(m: unknown, origin: string): void;
  __csp: string[];
}

const CHROMIUM = process.env.LORAPLUS_E2E_CHROMIUM ?? '/usr/bin/chromium';
const MEDIA = path.resolve(__dirname, '..', '..', 'media');
const API_STUB = `window.acquireVsCodeApi = () => ({ postMessage() {}, getState() {}, setState() {} });
window.__csp = []; document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective));`;
const MODULES = [
  'model.layers.0.self_attn.q_proj',
  'model.layers.0.self_attn.v_proj',
  'model.layers.1.self_attn.q_proj',
];

/** What VS Code puts on <body> and <html> for each kind (the colours that matter here, from its default themes). */
export const KINDS = {
  dark: { cls: 'vscode-dark', bg: '#1f1f1f', fg: '#cccccc', charts: ['#3794ff', '#d18616', '#89d185'] },
  light: { cls: 'vscode-light', bg: '#ffffff', fg: '#3b3b3b', charts: ['#1a85ff', '#d18616', '#388a34'] },
  'hc-dark': { cls: 'vscode-high-contrast', bg: '#000000', fg: '#ffffff', charts: ['#3794ff', '#d18616', '#89d185'] },
  // Light High Contrast: two chart colours nearly alike, as in VS Code (the palette must fix that).
  'hc-light': {
    cls: 'vscode-high-contrast vscode-high-contrast-light',
    bg: '#ffffff',
    fg: '#292929',
    charts: ['#0f4a85', '#0f4a86', '#374e06'],
  },
} as const;
type Kind = keyof typeof KINDS;

function events(): EngineEvent[] {
  const start: RunStartEvent = {
    type: 'run_start',
    time: '2026-01-01T00:00:00Z',
    run_name: 'look',
    run_dir: '/tmp/look',
    backend: 'wasm',
    device: 'CPU (WebAssembly SIMD, 2 threads)',
    threads: 2,
    backend_notes: [
      "cuda: @tensorflow/tfjs-node-gpu is not installed or its native library failed to load (Cannot find module '@tensorflow/tfjs-node-gpu')",
      'webgpu: no WebGPU adapter found (no Vulkan/Metal/D3D12 driver?)',
    ],
    model: 'stories260k',
    model_type: 'llama',
    task: 'causal-lm',
    total_steps: 100,
    start_step: 0,
    params: { total: 1000, trainable: 100, lora: 100 },
    lora: { r: 4, lora_alpha: 8, scaling: 2, target_modules: MODULES, modules_to_save: [] },
    loraplus_lr_ratio: 16,
    groups: [
      { name: 'A', lr: 1e-3, weight_decay: 0, params: [] },
      { name: 'B', lr: 16e-3, weight_decay: 0, params: [] },
    ],
    train_examples: 100,
    eval_examples: 64,
    eval_every: 20,
  };
  const out: EngineEvent[] = [start, { type: 'eval_progress', step: 0, done: 0, total: 64, elapsed_s: 0 }];
  out.push({ type: 'eval', step: 0, loss: 4.6, perplexity: Math.exp(4.6), examples: 64, elapsed_s: 2 });
  for (let n = 1; n <= 60; n++) {
    // Step 1: A has not moved (B starts at zero): no ratio. Steps 2-3: outliers of 10⁴. Then ratios of 5…30.
    const modules: ModuleStats[] = MODULES.map((module, i) => ({
      module,
      grad_A: n === 1 ? 0 : 0.1,
      grad_B: 0.2,
      delta_A: n === 1 ? 0 : n <= 3 ? 1e-6 : 1e-3,
      delta_B: n <= 3 ? 1e-2 : (5 + 5 * i + (n % 7)) * 1e-3,
      out_A: n === 1 ? 0 : 1e-3,
      out_B: n <= 3 ? 10 : (2 + i) * 1e-3,
    }));
    const lr = { A: 1e-3 * Math.min(1, n / 10), B: 16e-3 * Math.min(1, n / 10) };
    out.push({
      type: 'step',
      step: n,
      epoch: n / 100,
      loss: 4 - n / 40,
      lr,
      grad_norm: 1,
      tokens_per_s: 900,
      tokens_seen: 128 * n,
      elapsed_s: 2 + n / 2,
      modules,
    });
    if (n % 20 === 0) {
      out.push({ type: 'eval_progress', step: n, done: 0, total: 64, elapsed_s: 2 + n / 2 });
      const loss = 4.4 - n / 50;
      out.push({ type: 'eval', step: n, loss, perplexity: Math.exp(loss), examples: 64, elapsed_s: 4 + n / 2 });
    }
  }
  return out;
}

const summary = (status: DashboardSummary['status']): DashboardSummary => ({
  name: 'look',
  runDir: '/tmp/look',
  status,
  step: 60,
  totalSteps: 100,
  lastLoss: 2.5,
  elapsed: 40,
  checkpoints: 0,
  finalAdapter: null,
  error: null,
  config: null,
});

describe(
  'dashboard look in Chromium: themes, heatmap scale, shared step axes',
  { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` },
  () => {
    let server: http.Server;
    let browser: Browser;
    let page: Page;
    const errors: string[] = [];

    before(async () => {
      assert.ok(fs.existsSync(path.join(MEDIA, 'dashboard.js')), 'media/dashboard.js is missing: run `npm run build`');
      let html = '';
      server = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
        if (name === 'index.html') return res.end(html);
        if (name === 'favicon.ico') return res.writeHead(204).end(); // the browser asks; a webview does not
        if (name === 'stub.js') return res.writeHead(200, { 'content-type': 'text/javascript' }).end(API_STUB);
        const file = path.join(MEDIA, name);
        if (!fs.existsSync(file)) return res.writeHead(404).end();
        const type = name.endsWith('.js')
          ? 'text/javascript'
          : name.endsWith('.css')
            ? 'text/css'
            : 'application/octet-stream';
        res.writeHead(200, { 'content-type': type }).end(fs.readFileSync(file));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { webviewHtml } = await import('../../src/vscode/panels/html');
      const webview = {
        cspSource: origin,
        asWebviewUri: (u: { fsPath: string }) => ({ toString: () => `${origin}/${path.basename(u.fsPath)}` }),
      };
      html = webviewHtml(webview as never, Uri.file('/ext') as never, {
        title: 'look',
        scripts: ['stub.js', 'dashboard.js'],
        styles: ['dashboard.css'],
        state: { runDir: '/tmp/look' },
      });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${origin}/index.html`);
      await setKind('dark');
      const evs = events();
      await page.evaluate(
        (m) => (globalThis as unknown as Win).postMessage(m, '*'),
        hostMessage('init', { runDir: '/tmp/look', summary: summary('running'), events: evs }),
      );
      await page.locator('#ab-colorbar .tick').first().waitFor();
    });
    after(async () => {
      await browser?.close();
      server?.close();
    });

    /** Sets the kind as VS Code's webview host does: body classes, data-vscode-theme-kind, variables on <html>. */
    async function setKind(kind: Kind): Promise<void> {
      const k = KINDS[kind];
      await page.evaluate(
        ({ cls, bg, fg, charts }) => {
          const doc = (globalThis as unknown as Win).document;
          doc.body.className = cls;
          doc.body.dataset.vscodeThemeKind = cls.split(' ').at(-1);
          const st = doc.documentElement.style;
          const vars: Record<string, string> = {
            'editor-background': bg,
            'editor-foreground': fg,
            foreground: fg,
            descriptionForeground: fg,
            'charts-blue': charts[0],
            'charts-orange': charts[1],
            'charts-green': charts[2],
          };
          for (const [name, v] of Object.entries(vars)) st.setProperty(`--vscode-${name}`, v);
        },
        { ...k },
      );
      await page.waitForFunction(
        (want) => (globalThis as unknown as Win).document.body.dataset.loraplusTheme === want,
        kind,
      );
    }

    const rgb = (css: string): Rgb => {
      const c = parseColor(css);
      assert.ok(c, `a colour: ${css}`);
      return c;
    };

    for (const kind of ['light', 'hc-dark', 'hc-light', 'dark'] as Kind[]) {
      it(`is readable in ${kind} and follows the switch live: text contrast, palette, section headers`, async () => {
        await setKind(kind);
        const bg = rgb(KINDS[kind].bg);
        const light = kind === 'light' || kind === 'hc-light';
        const title = await page
          .locator('#run-title')
          .evaluate((e) => (globalThis as unknown as Win).getComputedStyle(e).color);
        assert.ok(contrast(rgb(title), bg) >= 4.5, `#run-title ${title} on ${KINDS[kind].bg}`);
        const bar = page.locator('#ab-colorbar');
        await page.waitForFunction(
          (p) =>
            (globalThis as unknown as Win).document.querySelector('#ab-colorbar')?.getAttribute('data-palette') === p,
          light ? 'diverging-light' : 'diverging-dark',
        );
        assert.equal(await bar.getAttribute('data-palette'), light ? 'diverging-light' : 'diverging-dark');
        // The collapsible's header: no black bar on a light page, its title readable.
        const header = page.locator('vscode-collapsible .collapsible-header').first();
        const headBg = await header.evaluate((e) => (globalThis as unknown as Win).getComputedStyle(e).backgroundColor);
        const headFg = await page
          .locator('vscode-collapsible .title')
          .first()
          .evaluate((e) => (globalThis as unknown as Win).getComputedStyle(e).color);
        const shown = blend(headBg, KINDS[kind].bg);
        assert.ok(contrast(rgb(headFg), shown) >= 4.5, `section header ${headFg} on ${headBg}`);
        if (light) assert.ok(contrast(shown, bg) < 1.5, `section header background ${headBg} is not a dark bar`);
        // The lr chart's two groups: lines that differ, and that show on the background.
        const markers = await page
          .locator('#chart-lr .u-legend .u-series:not(:first-child) .u-marker')
          .evaluateAll((ms) => ms.map((m) => (globalThis as unknown as Win).getComputedStyle(m).borderColor));
        assert.equal(markers.length, 2, `lr legend markers: ${markers}`);
        const [a, b] = markers.map(rgb);
        assert.ok(deltaE(a, b) >= 20, `A and B lines alike in ${kind}: ${markers}`);
        for (const m of [a, b]) assert.ok(contrast(m, bg) >= 3, `a line of ${m} on ${KINDS[kind].bg}`);
        await page.screenshot({ path: path.join(artifacts(), `dashboard-look-${kind}.png`), fullPage: true });
      });
    }

    it('scales the heatmap robustly: outliers clipped, a readable bar with ticks, the balanced value marked', async () => {
      const bar = page.locator('#ab-colorbar');
      const [lo, hi, mid] = await Promise.all(
        ['data-lo', 'data-hi', 'data-mid'].map((a) => bar.getAttribute(a).then(Number)),
      );
      assert.equal(mid, 1, 'the output ratio is balanced at 1');
      assert.ok(hi < 100, `the 10⁴ outliers of steps 2-3 do not set the top (${hi})`);
      assert.ok(lo <= 0.51 && hi >= 1.99, `at least a factor 2 either side of 1 (${lo} … ${hi})`);
      assert.ok((await bar.boundingBox())!.width >= 240, 'the bar is at least 240 px wide');
      const ticks = await page.locator('#ab-colorbar .tick').allTextContents();
      assert.ok(ticks.length >= 3, `ticks: ${ticks}`);
      assert.ok(ticks.every((t) => !/e/.test(t)) || ticks.every((t) => /e|^1$/.test(t)), `one number format: ${ticks}`);
      assert.match((await page.locator('.colorbar-row').textContent()) ?? '', /no data yet/);
    });

    it('frames the hovered cell, says "no data yet" for step 1, and marks its step on the charts', async () => {
      const canvas = page.locator('#ab-heatmap canvas').first();
      const box = (await canvas.boundingBox())!;
      await page.mouse.move(box.x + 121, box.y + 6 + 7); // the first cell: step 1, row 0
      assert.equal(await page.locator('#ab-heatmap').getAttribute('data-hover'), '0,0');
      assert.match((await page.locator('.heatmap-wrap .readout').textContent()) ?? '', /step 1 · .*no data yet/);
      const cursor = page.locator('#chart-loss .u-cursor-x');
      assert.equal(await cursor.isVisible(), true, 'the loss chart marks the hovered step');
      await page.mouse.move(box.x + box.width - 8, box.y + 6 + 7);
      assert.match((await page.locator('.heatmap-wrap .readout').textContent()) ?? '', /step 60 · /);
    });

    it('lines up the eval chart with the train loss: same plot left edge and width, one cursor for both', async () => {
      const over = (id: string) => page.locator(`${id} .u-over`).boundingBox();
      const [loss, evals] = [(await over('#chart-loss'))!, (await over('#chart-eval'))!];
      assert.ok(
        Math.abs(loss.x - evals.x) <= 1 && Math.abs(loss.width - evals.width) <= 1,
        `${JSON.stringify([loss, evals])}`,
      );
      await page.mouse.move(loss.x + loss.width / 2, loss.y + loss.height / 2);
      const cx = async (id: string) => (await page.locator(`${id} .u-cursor-x`).boundingBox())!.x;
      assert.ok(
        Math.abs((await cx('#chart-loss')) - (await cx('#chart-eval'))) <= 2,
        'the eval chart marks the same step',
      );
      const legend = (await page.locator('#chart-eval .u-legend').textContent()) ?? '';
      assert.match(legend, /perplexity/, 'perplexity is read off the loss line');
    });

    it('says where it computes as information, with the reasons one click away, and shows an eval under way', async () => {
      const backend = (await page.locator('#run-backend').textContent()) ?? '';
      assert.equal(backend, 'CPU · WebAssembly SIMD, 2 threads — no GPU found');
      assert.doesNotMatch((await page.locator('header').textContent()) ?? '', /Cannot find module/);
      await page.locator('#backend-details-toggle').click();
      assert.match(
        (await page.locator('#backend-details').textContent()) ?? '',
        /CUDA: @tensorflow\/tfjs-node-gpu is not installed/,
      );
      const ev: EngineEvent = { type: 'eval_progress', step: 60, done: 32, total: 64, elapsed_s: 33 };
      await page.evaluate(
        (m) => (globalThis as unknown as Win).postMessage(m, '*'),
        hostMessage('events', { events: [ev] }),
      );
      await page.waitForFunction(() =>
        /evaluating 32\/64 at step 60/.test(
          (globalThis as unknown as Win).document.querySelector('#run-phase')?.textContent ?? '',
        ),
      );
      assert.match((await page.locator('#run-eta').textContent()) ?? '', /\d+(\.\d)?s|\dm \d\ds/);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Win).__csp), []);
      assert.deepEqual(errors, []);
    });
  },
);

/** A CSS colour with alpha over the page background, as the eye sees it. */
function blend(css: string, background: string): Rgb {
  const bg = parseColor(background)!;
  const m = /rgba?\(([^)]+)\)/.exec(css);
  const parts = m
    ? m[1]
        .split(/[\s,/]+/)
        .filter(Boolean)
        .map(Number)
    : [];
  const a = parts.length > 3 ? parts[3] : css === 'transparent' ? 0 : 1;
  const c = parts.length >= 3 ? parts.slice(0, 3) : bg;
  return bg.map((b, i) => Math.round(a * c[i] + (1 - a) * b)) as Rgb;
}

function artifacts(): string {
  const dir = path.resolve(__dirname, '..', '..', '.test-work', 'webview');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}
