// The built dashboard page (media/dashboard.js + .css, from `npm run build`) in headless Chromium, inside the real
// HTML shell of src/vscode/panels/html.ts with its strict Content-Security-Policy: it must run with no CSP
// violation and no error, say `ready`, save its run folder for the serializer, and show a real run's figures where
// the UI contract says. Skipped where Chromium is not installed (the e2e tests need it too; .ci/run installs it).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { configFromObject } from '../../src/config/load';
import { readMetrics } from '../../src/engine/runs/writer';
import { dashboardSummary, summarizeEvents } from '../../src/engine/runs/summary';
import { train } from '../../src/engine/train/train';
import { DASHBOARD_PROTOCOL, hostMessage, packModules } from '../../src/protocol/dashboard';
import { sameAnswer, type EngineEvent, type RunStartEvent, type StepEvent } from '../../src/protocol/events';
import { SST2, STORIES, tempDir, useBackend } from '../helpers/shared';
import { installWebviewStub, Uri } from '../vscode/webview-stub';

installWebviewStub();

/** What the functions run inside the page see (the root tsconfig has no DOM types). */
interface Page$ {
  __posted: unknown[];
  __state: unknown;
  __csp: string[];
  postMessage(m: unknown, origin: string): void;
  document: {
    querySelector(sel: string): { textContent: string | null; getAttribute(name: string): string | null } | null;
  };
}
const CHROMIUM = process.env.LORAPLUS_E2E_CHROMIUM ?? '/usr/bin/chromium';
const MEDIA = path.resolve(__dirname, '..', '..', 'media');

// Stands in for what VS Code injects: acquireVsCodeApi, recording what the page posts and saves.
const API_STUB = `window.__posted = []; window.__state = undefined; window.__csp = [];
window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => window.__state, setState: (s) => (window.__state = s) });
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`;

describe(
  'dashboard page in Chromium under the webview CSP',
  { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` },
  () => {
    let server: http.Server;
    let browser: Browser;
    let page: Page;
    let events: EngineEvent[] = [];
    let runDir = '';
    const errors: string[] = [];

    before(async () => {
      assert.ok(fs.existsSync(path.join(MEDIA, 'dashboard.js')), 'media/dashboard.js is missing: run `npm run build`');
      await useBackend();
      const dir = tempDir();
      const config = configFromObject(
        {
          model: STORIES,
          task: 'causal-lm',
          device: 'wasm',
          output_dir: path.join(dir, 'runs'),
          run_name: 'page',
          data: {
            train: path.join(SST2, 'dev.tsv'),
            eval: path.join(SST2, 'dev.tsv'),
            text_field: 'sentence',
            max_length: 32,
            max_train_samples: 24,
            max_eval_samples: 4,
          },
          lora: { r: 2, lora_alpha: 4, target_modules: ['q_proj', 'v_proj'] },
          training: { learning_rate: 1e-3, batch_size: 4, max_steps: 4, eval_every: 2 },
        },
        dir,
      );
      runDir = (await train(config, () => {})).runDir;
      events = readMetrics(runDir);

      server = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
        if (name === 'index.html') return res.end(html);
        if (name === 'favicon.ico') return res.writeHead(204).end(); // the browser asks; a webview does not
        if (name === 'vscode-api-stub.js')
          return res.writeHead(200, { 'content-type': 'text/javascript' }).end(API_STUB);
        const file = path.join(MEDIA, name);
        if (!fs.existsSync(file)) return res.writeHead(404).end();
        res
          .writeHead(200, {
            'content-type': name.endsWith('.js')
              ? 'text/javascript'
              : name.endsWith('.css')
                ? 'text/css'
                : 'application/octet-stream',
          })
          .end(fs.readFileSync(file));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      // The real shell: webviewHtml with a webview whose resources are served from `origin`.
      const { webviewHtml } = await import('../../src/vscode/panels/html');
      const webview = {
        cspSource: origin,
        asWebviewUri: (u: { fsPath: string }) => ({ toString: () => `${origin}/media/${path.basename(u.fsPath)}` }),
      };
      const html = webviewHtml(webview as never, Uri.file('/ext') as never, {
        title: 'LoRA+ page',
        scripts: ['vscode-api-stub.js', 'dashboard.js'],
        styles: ['dashboard.css'],
        state: { runDir },
      });

      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${origin}/index.html`);
    });
    after(async () => {
      await browser?.close();
      server?.close();
    });

    const post = (m: unknown) => page.evaluate((msg) => (globalThis as unknown as Page$).postMessage(msg, '*'), m);
    const text = (sel: string) => page.locator(sel).textContent();

    it('says ready and saves its run folder for the serializer', async () => {
      await page.waitForFunction(() => (globalThis as unknown as Page$).__posted.length > 0);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__posted), [
        { v: DASHBOARD_PROTOCOL, type: 'ready' },
      ]);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__state), { runDir });
    });

    it('shows a finished run: status, last loss and step, the loss chart and a module × step heatmap', async () => {
      const summary = dashboardSummary(summarizeEvents(runDir, events));
      await post(hostMessage('init', { runDir, summary, ...packModules(events) }));
      const steps = events.filter((e): e is StepEvent => e.type === 'step');
      const last = steps.at(-1)!;
      await page.waitForFunction(
        (v) => (globalThis as unknown as Page$).document.querySelector('#last-loss')?.getAttribute('data-value') === v,
        JSON.stringify(last.loss),
      );
      assert.equal(await text('#run-status'), 'finished');
      assert.equal(await text('#run-title'), 'page');
      assert.equal(await text('#last-loss'), last.loss.toFixed(4));
      assert.equal(await text('#last-step'), String(last.step));
      const heatmap = page.locator('#ab-heatmap');
      const start = events.find((e): e is RunStartEvent => e.type === 'run_start')!;
      assert.equal(await heatmap.getAttribute('data-modules'), String(start.lora.target_modules.length));
      assert.equal(await heatmap.getAttribute('data-steps'), String(steps.length));
      assert.equal(await heatmap.getAttribute('data-quantity'), 'out_ratio');
      assert.ok((await heatmap.locator('canvas').boundingBox())!.height > 20);
      assert.equal((await page.locator('#chart-loss canvas').count()) > 0, true, 'uPlot drew the loss chart');
      assert.match((await text('#ab-groups')) ?? '', /lora_B\.weight/);
      // From the keyboard: focus the map, move down a row and left a step; the readout names that cell.
      await heatmap.locator('canvas').focus();
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('ArrowLeft');
      const readout = (await page.locator('.heatmap-wrap .readout').textContent()) ?? '';
      assert.ok(readout.startsWith(`${start.lora.target_modules[1]} · step ${steps.at(-2)!.step} · `), readout);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__csp), [], 'no CSP violation');
      assert.deepEqual(errors, []);
    });

    it('updates live from event batches and summary messages', async () => {
      const last = events.filter((e): e is StepEvent => e.type === 'step').at(-1)!;
      const next: StepEvent = { ...last, step: last.step + 1, loss: 1.23456789 };
      await post(hostMessage('events', { events: [next] }));
      const summary = dashboardSummary(summarizeEvents(runDir, [...events, next]));
      await post(hostMessage('summary', { summary: { ...summary, status: 'running' } }));
      await page.waitForFunction(
        () =>
          (globalThis as unknown as Page$).document.querySelector('#last-step')?.textContent === String(5) &&
          (globalThis as unknown as Page$).document.querySelector('#run-status')?.textContent === 'running',
      );
      assert.equal(await text('#last-loss'), '1.2346');
      assert.equal(await page.locator('#ab-heatmap').getAttribute('data-steps'), String(5));
    });

    it('shows sft samples: a step slider, the answers with matches marked, keyboard usable', async () => {
      const prompt = (review: string) =>
        `<|im_start|>user\nClassify the sentiment of this movie review.\nReview: ${review}<|im_end|>\n` +
        '<|im_start|>assistant\n';
      const samplesAt = (step: number, outputs: string[]): EngineEvent[] => [
        { type: 'eval', step, loss: 1, perplexity: 2.7, token_accuracy: 0.4, exact_match: 0.5, examples: 2 },
        {
          type: 'samples',
          step,
          exact_match: outputs.filter((o, i) => sameAnswer(o, ['positive', 'negative'][i])).length / 2,
          samples: [
            {
              prompt: prompt('a charming and often affecting journey. '.repeat(4)),
              reference: 'positive',
              output: outputs[0],
            },
            { prompt: prompt('unflinchingly bleak'), reference: 'negative', output: outputs[1] },
          ],
        },
      ];
      await post(
        hostMessage('events', { events: [...samplesAt(5, ['the', '']), ...samplesAt(6, ['Positive', 'positive'])] }),
      );
      await page.waitForFunction(
        () => (globalThis as unknown as Page$).document.querySelector('#samples-step-label')?.textContent === '6',
      );
      assert.equal(await page.locator('#samples-view').isVisible(), true);
      assert.equal(await page.locator('#samples-step').getAttribute('max'), '1');
      assert.match((await text('#samples-score')) ?? '', /exact match 50% \(1 of 2\)/);
      const rows = page.locator('#samples-table tbody tr');
      assert.equal(await rows.count(), 2);
      assert.deepEqual(await rows.evaluateAll((trs) => trs.map((tr) => tr.className)), [
        'sample-row match',
        'sample-row miss',
      ]);
      assert.equal(await rows.nth(0).locator('td.output').textContent(), 'Positive');
      // The prompt is shortened to its end; Enter on it shows the whole.
      const summary = rows.nth(0).locator('summary');
      assert.match((await summary.textContent()) ?? '', /^….*<\|im_start\|>assistant$/);
      await summary.focus();
      await page.keyboard.press('Enter');
      assert.equal(await rows.nth(0).locator('pre.prompt-full').isVisible(), true);
      assert.match((await rows.nth(0).locator('pre.prompt-full').textContent()) ?? '', /^<\|im_start\|>user\n/);
      // The slider from the keyboard: one step back shows step 5's answers.
      await page.locator('#samples-step').focus();
      await page.keyboard.press('ArrowLeft');
      assert.equal(await text('#samples-step-label'), '5');
      assert.match((await text('#samples-table thead')) ?? '', /Answer at step 5/);
      assert.equal(await rows.nth(1).locator('td.output').textContent(), '(no answer)');
      assert.equal(await rows.nth(0).locator('pre.prompt-full').isVisible(), true, 'an opened prompt stays open');
      // The eval answers chart appears with them.
      assert.equal(await page.locator('#chart-answers').isVisible(), true);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__csp), [], 'no CSP violation');
      assert.deepEqual(errors, []);
    });

    it("the A/B quantity: the host's kept choice comes back with init, and a pick is sent to be kept", async () => {
      const summary = dashboardSummary(summarizeEvents(runDir, events));
      await post(hostMessage('init', { runDir, summary, view: { abQuantity: 'grad_B' }, ...packModules(events) }));
      await page.waitForFunction(
        () =>
          (globalThis as unknown as Page$).document.querySelector('#ab-heatmap')?.getAttribute('data-quantity') ===
          'grad_B',
      );
      await page.evaluate(() => {
        const select = (
          globalThis as unknown as { document: { querySelector(s: string): unknown } }
        ).document.querySelector('#ab-view vscode-single-select') as { value: string; dispatchEvent(e: unknown): void };
        select.value = 'delta_A';
        select.dispatchEvent(new Event('change'));
      });
      const posted = await page.evaluate(() => (globalThis as unknown as Page$).__posted);
      assert.deepEqual(posted.at(-1), { v: DASHBOARD_PROTOCOL, type: 'saveView', abQuantity: 'delta_A' });
      assert.deepEqual(errors, []);
    });

    it('says so when its run folder is gone', async () => {
      await post(hostMessage('missing', { runDir, message: `The run folder ${runDir} no longer exists` }));
      await page.waitForFunction(() =>
        (globalThis as unknown as Page$).document
          .querySelector('#dashboard-message')
          ?.textContent?.includes('no longer exists'),
      );
      assert.equal(await page.locator('main.dashboard').isVisible(), false);
      assert.deepEqual(errors, []);
    });
  },
);
