// The built chat page (media/chat.js + .css, from `npm run build`) in headless Chromium, inside the real HTML shell of
// src/vscode/panels/html.ts with its strict Content-Security-Policy: it must run with no CSP violation and no error,
// say `ready`, save its state for the serializer, show a streamed compared answer side by side (text as text, never
// markup), send what is typed on Enter, turn Send into Stop while an answer is written, and rebuild the transcript
// from `init`. Skipped where Chromium is not installed.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { CHAT_PROTOCOL, hostMessage, type ChatInfo, type ChatPanelState } from '../../src/protocol/chat';
import { installWebviewStub, Uri } from '../vscode/webview-stub';

installWebviewStub();

/** What the functions run inside the page see (the root tsconfig has no DOM types). */
interface Page$ {
  __posted: { type: string }[];
  __state: unknown;
  __csp: string[];
  postMessage(m: unknown, origin: string): void;
  document: { querySelector(sel: string): unknown };
}
const CHROMIUM = process.env.LORAPLUS_E2E_CHROMIUM ?? '/usr/bin/chromium';
const MEDIA = path.resolve(__dirname, '..', '..', 'media');

const API_STUB = `window.__posted = []; window.__state = undefined; window.__csp = [];
window.acquireVsCodeApi = () => ({ postMessage: (m) => window.__posted.push(m), getState: () => window.__state, setState: (s) => (window.__state = s) });
document.addEventListener('securitypolicyviolation', (e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));`;

const STATE: ChatPanelState = { model: '/models/stories260k', adapter: '/runs/sft-run/final', template: null };
const INFO: ChatInfo = {
  model: '/models/stories260k',
  modelType: 'llama',
  adapter: '/runs/sft-run/final',
  template: "built-in 'plain'",
  templateNote: null,
  maxPositions: 512,
  backend: 'wasm',
  options: { maxNewTokens: 64, temperature: 0, topK: 0, topP: 1, seed: 0 },
  stops: ['</s>', '### Instruction:'],
};

describe(
  'chat page in Chromium under the webview CSP',
  { skip: !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}` },
  () => {
    let server: http.Server;
    let browser: Browser;
    let page: Page;
    const errors: string[] = [];

    before(async () => {
      assert.ok(fs.existsSync(path.join(MEDIA, 'chat.js')), 'media/chat.js is missing: run `npm run build`');
      let html = '';
      server = http.createServer((req, res) => {
        const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname);
        if (name === 'index.html') return res.end(html);
        if (name === 'favicon.ico') return res.writeHead(204).end();
        if (name === 'vscode-api-stub.js')
          return res.writeHead(200, { 'content-type': 'text/javascript' }).end(API_STUB);
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
        asWebviewUri: (u: { fsPath: string }) => ({ toString: () => `${origin}/media/${path.basename(u.fsPath)}` }),
      };
      html = webviewHtml(webview as never, Uri.file('/ext') as never, {
        title: 'LoRA+ Chat',
        scripts: ['vscode-api-stub.js', 'chat.js'],
        styles: ['chat.css'],
        state: STATE,
      });
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ['--headless', '--no-sandbox', '--disable-gpu'],
      });
      page = await browser.newPage({ viewport: { width: 1100, height: 800 } });
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      await page.goto(`${origin}/index.html`);
    });
    after(async () => {
      await browser?.close();
      server?.close();
    });

    const post = (m: unknown) => page.evaluate((msg) => (globalThis as unknown as Page$).postMessage(msg, '*'), m);
    const posted = () => page.evaluate(() => (globalThis as unknown as Page$).__posted);
    const text = (sel: string) => page.locator(sel).textContent();

    it('says ready and saves its state for the serializer', async () => {
      await page.waitForFunction(() => (globalThis as unknown as Page$).__posted.length > 0);
      assert.deepEqual(await posted(), [{ v: CHAT_PROTOCOL, type: 'ready' }]);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__state), STATE);
    });

    it('shows the chat: header, compare toggle on, Send enabled once ready', async () => {
      await post(
        hostMessage('init', {
          state: STATE,
          status: 'loading',
          message: null,
          info: null,
          compare: true,
          system: null,
          turns: [],
        }),
      );
      await page.waitForSelector('#chat-status[data-status="loading"]');
      assert.equal(await page.locator('#send').isDisabled(), true, 'nothing to send to while loading');
      await post(hostMessage('status', { status: 'ready', message: null, info: INFO }));
      await page.waitForSelector('#chat-status[data-status="ready"]');
      assert.equal(await text('#chat-title'), 'LoRA+ Chat: sft-run');
      assert.match(
        (await text('#chat-info')) ?? '',
        /stories260k \(llama\) · adapter \/runs\/sft-run\/final · template built-in 'plain'/,
      );
      assert.equal(await page.locator('#compare-toggle').isChecked(), true);
      assert.equal(await page.locator('#compare-toggle').isVisible(), true);
    });

    it('sends on Enter, streams a compared answer side by side as text, and Stop cancels', async () => {
      await page.locator('#prompt').fill('Once upon a time');
      await page.locator('#prompt').press('Enter');
      assert.deepEqual((await posted()).at(-1), { v: CHAT_PROTOCOL, type: 'say', text: 'Once upon a time' });
      assert.equal(await page.locator('#prompt').inputValue(), '');
      await post(hostMessage('turnStart', { turn: 1, user: 'Once upon a time', sides: ['adapter', 'base'] }));
      await post(hostMessage('status', { status: 'busy', message: null, info: INFO }));
      for (const side of ['adapter', 'base'] as const) {
        await post(hostMessage('answerStart', { turn: 1, side, dropped: 0 }));
        await post(hostMessage('token', { turn: 1, side, text: side === 'adapter' ? 'There was <b>a</b>' : 'Lily' }));
        await post(hostMessage('token', { turn: 1, side, text: ' cat.' }));
      }
      await page.waitForSelector('.turn[data-turn="1"] .answers.pair .answer.base.writing');
      assert.equal(await text('.turn[data-turn="1"] .user'), 'Once upon a time');
      assert.equal(await text('.answer.adapter .text'), 'There was <b>a</b> cat.', 'model output stays text');
      assert.equal(await page.locator('.answer.adapter .text b').count(), 0);
      assert.equal(await text('.answer.adapter .label'), 'adapter · sft-run');
      assert.equal(await text('.answer.base .label'), 'base model');
      assert.equal(await text('#send'), 'Stop');
      await page.locator('#send').click();
      assert.deepEqual((await posted()).at(-1), { v: CHAT_PROTOCOL, type: 'cancel' });
      await post(
        hostMessage('turnEnd', { turn: 1, side: 'adapter', text: 'There was <b>a</b> cat.', reason: 'eos', tokens: 5 }),
      );
      await post(hostMessage('turnEnd', { turn: 1, side: 'base', text: 'Lily cat.', reason: 'stopped', tokens: 2 }));
      await post(hostMessage('status', { status: 'ready', message: null, info: INFO }));
      await page.waitForFunction(() => !(globalThis as unknown as Page$).document.querySelector('.writing'));
      assert.match((await text('.answer.base .meta')) ?? '', /Stopped\. \(2 tokens\)/);
      assert.equal(await text('#send'), 'Send');
    });

    it('the toggle, the system message and a new conversation go to the host; `init` rebuilds the transcript', async () => {
      await page.locator('#compare-toggle').uncheck();
      assert.deepEqual((await posted()).at(-1), { v: CHAT_PROTOCOL, type: 'setCompare', compare: false });
      await page.locator('#system-box summary').click();
      await page.locator('#system').fill('Be brief.');
      await page.locator('#system-set').click();
      assert.deepEqual((await posted()).at(-1), { v: CHAT_PROTOCOL, type: 'setSystem', text: 'Be brief.' });
      await page.locator('#reset').click();
      assert.deepEqual((await posted()).at(-1), { v: CHAT_PROTOCOL, type: 'reset' });
      await post(hostMessage('cleared', { system: 'Be brief.' }));
      await page.waitForFunction(() => !(globalThis as unknown as Page$).document.querySelector('.turn'));
      await post(
        hostMessage('init', {
          state: STATE,
          status: 'ready',
          message: null,
          info: INFO,
          compare: false,
          system: 'Be brief.',
          turns: [
            {
              turn: 4,
              user: 'Hi',
              answers: { adapter: { text: 'Hello!', done: true, reason: 'eos', tokens: 2, dropped: 1 } },
              error: null,
            },
            {
              turn: 5,
              user: 'Way too long',
              answers: {},
              error: { code: 'chat/too-long', message: 'this message takes 900 tokens' },
            },
          ],
        }),
      );
      await page.waitForSelector('.turn[data-turn="5"] .turn-error:not([hidden])');
      assert.equal(await text('.turn[data-turn="4"] .answer.adapter .text'), 'Hello!');
      assert.match((await text('.turn[data-turn="4"] .meta')) ?? '', /oldest exchange was dropped/);
      assert.equal(await page.locator('.turn[data-turn="4"] .answers.pair').count(), 0);
      assert.match((await text('.turn[data-turn="5"] .turn-error')) ?? '', /900 tokens/);
      assert.equal(await page.locator('#compare-toggle').isChecked(), false);
    });

    it('ran with no error and no CSP violation', async () => {
      assert.deepEqual(errors, []);
      assert.deepEqual(await page.evaluate(() => (globalThis as unknown as Page$).__csp), []);
    });
  },
);
