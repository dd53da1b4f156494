// The built tune dashboard page (media/tune.js + .css, from `npm run build`) in headless Chromium, inside the real
// HTML shell of src/vscode/panels/html.ts with its strict Content-Security-Policy, on a tune's events made by code:
// no CSP violation and no error, `ready` and its tune folder saved, the heatmap filling in as rung results arrive, the
// winner and its buttons, the bracket and the curves. Skipped where Chromium is not installed (as the e2e tests).
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { EngineEvent } from '../../src/protocol/events';
import { summarizeTune } from '../../src/protocol/tune';
import { TUNE_DASHBOARD_PROTOCOL, trialCurves, tuneHostMessage } from '../../src/protocol/tune-dashboard';
import { fakeTune } from '../helpers/tune-events';
import { installWebviewStub, Uri } from '../vscode/webview-stub';

installWebviewStub();

interface Page$ {
  __posted: { type: string; [k: string]: unknown }[];
  __state: unknown;
  __csp: string[];
  postMessage(m: unknown, origin: string): void;
  document: {
    querySelector(sel: string): { textContent: string | null } | null;
    querySelectorAll(sel: string): { length: number };
  };
}
const CHROMIUM = process.env.LORAPLUS_E2E_CHROMIUM ?? '/usr/bin/chromium';
const MEDIA = path.resolve(__dirname, '..', '..', 'media');
const API_STUB = `window.__posted = []; window.__state = undefined; window.__csp = [];
window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => window.__state, setState: (s) => (window.__state = s) });
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`;
const TUNE_DIR = '/w/runs/mytune';

describe(
  'tune dashboard page in Chromium under the webview CSP',
  { skip: !fs.existsSync(CHROMIUM) && `no ${CHROMIUM}` },
  () => {
    let server: http.Server;
    let browser: Browser;
    let page: Page;
    const errors: string[] = [];
    const tune = fakeTune(TUNE_DIR);

    before(async () => {
      assert.ok(fs.existsSync(path.join(MEDIA, 'tune.js')), 'media/tune.js is missing: run `npm run build`');
      let html = '';
      server = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
        if (name === 'index.html') return res.end(html);
        if (name === 'favicon.ico') return res.writeHead(204).end();
        if (name === 'vscode-api-stub.js')
          return res.writeHead(200, { 'content-type': 'text/javascript' }).end(API_STUB);
        const file = path.join(MEDIA, name);
        if (!fs.existsSync(file)) return res.writeHead(404).end();
        res.writeHead(200, { 'content-type': name.endsWith('.js') ? 'text/javascript' : 'text/css' });
        res.end(fs.readFileSync(file));
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const { webviewHtml } = await import('../../src/vscode/panels/html');
      const webview = {
        cspSource: origin,
        asWebviewUri: (u: { fsPath: string }) => ({ toString: () => `${origin}/media/${path.basename(u.fsPath)}` }),
      };
      html = webviewHtml(webview as never, Uri.file('/ext') as never, {
        title: 'LoRA+ tune mytune',
        scripts: ['vscode-api-stub.js', 'tune.js'],
        styles: ['tune.css'],
        state: { tuneDir: TUNE_DIR },
      });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      page = await browser.newPage({ viewport: { width: 1100, height: 1200 } });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${origin}/index.html`);
    });
    after(async () => {
      await browser?.close();
      server?.close();
    });

    const post = (m: unknown) => page.evaluate((msg) => (globalThis as unknown as Page$).postMessage(msg, '*'), m);
    const cells = () => page.locator('table.tune-heatmap td.cell');
    const upTo = (n: number) => {
      let seen = 0;
      return tune.events.slice(0, tune.events.findIndex((e) => e.type === 'rung_result' && ++seen === n) + 1);
    };

    it('says ready and saves its tune folder for the serializer', async () => {
      await page.waitForFunction(() => (globalThis as unknown as Page$).__posted.length > 0);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__posted), [
        { v: TUNE_DASHBOARD_PROTOCOL, type: 'ready' },
      ]);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__state), { tuneDir: TUNE_DIR });
    });

    it('fills the heatmap in as rung results arrive', async () => {
      await post(tuneHostMessage('init', { tuneDir: TUNE_DIR, summary: summarizeTune(upTo(2), true), curves: [] }));
      await page.waitForFunction(
        () =>
          (globalThis as unknown as Page$).document.querySelectorAll('td.cell[data-value]:not([data-value=""])')
            .length === 2,
      );
      assert.equal(await cells().count(), 6);
      assert.equal(await page.locator('#tune-status').textContent(), 'running');
      assert.equal(await page.locator('#train-winner').isDisabled(), true);
      await post(tuneHostMessage('summary', { summary: summarizeTune(upTo(6), true) }));
      await page.waitForFunction(
        () => (globalThis as unknown as Page$).document.querySelectorAll('td.cell.diverged').length === 2,
      );
    });

    it('shows a finished tune: the winner and its buttons, the bracket, curves; cells open their trial', async () => {
      const step = (s: number, loss: number) => ({ type: 'step', step: s, loss }) as unknown as EngineEvent;
      const curves = tune.trials.map((t, i) =>
        trialCurves(
          t,
          [1, 2, 3].map((s) => step(s, 0.7 - 0.01 * s - 0.02 * i)),
          true,
        ),
      );
      await post(tuneHostMessage('summary', { summary: summarizeTune(tune.events, false) }));
      await post(tuneHostMessage('curves', { curves }));
      await page.waitForFunction(
        () => (globalThis as unknown as Page$).document.querySelector('#tune-status')?.textContent === 'finished',
      );
      assert.equal(await page.locator('td.cell.winner').getAttribute('data-trial'), tune.winner);
      assert.equal(await page.locator('#tune-winner').getAttribute('data-trial'), tune.winner);
      assert.match((await page.locator('#tune-winner').textContent()) ?? '', /^lr5e-4-ratio1: lr_A 5e-4 · λ 1/);
      assert.equal(await page.locator('#tune-bracket thead th').count(), 3);
      assert.equal(await page.locator('#tune-bracket td.entry.winner').textContent(), `${tune.winner} 72.0%`);
      await page.waitForFunction(
        () => (globalThis as unknown as Page$).document.querySelectorAll('#chart-tune-loss canvas').length > 0,
      );
      assert.equal(await page.locator('#chart-tune-eval').isVisible(), false, 'no evals were sent');
      await page.locator('#train-winner').click();
      await page.locator('#open-winner').click();
      await page.locator('td.cell[data-trial="lr2e-3-ratio16"]').click();
      const posted = (await page.evaluate(() => (globalThis as unknown as Page$).__posted)).slice(-3);
      assert.deepEqual(
        posted.map((m) => [m.type, m.trial]),
        [
          ['trainWinner', undefined],
          ['openWinner', undefined],
          ['openTrial', 'lr2e-3-ratio16'],
        ],
      );
      // For a look by eye (not asserted): .test-work/tune-page.png.
      fs.mkdirSync(path.join(MEDIA, '..', '.test-work'), { recursive: true });
      await page.screenshot({ path: path.join(MEDIA, '..', '.test-work', 'tune-page.png'), fullPage: true });
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__csp), [], 'no CSP violation');
      assert.deepEqual(errors, []);
    });
  },
);
