// The dashboard page: says `ready`, gets the run's events so far (`init`), then batches of new ones (`events`) and
// status changes. Events go into the RunModel as they arrive; drawing is throttled to one frame per ~200 ms, so a
// live run updates a few times a second whatever the event rate. vscode.setState({runDir}) lets the webview
// serializer restore the panel after a reload.
import type { DashboardSummary, HostToDashboard, PackedModules } from '../../src/protocol/dashboard';
import { isHostToDashboard, packedValues, webviewMessage } from '../../src/protocol/dashboard';
import { h } from '../shared/dom';
import { StepSync } from '../shared/step-sync';
import { onThemeChange, readTheme } from '../shared/theme';
import { initialState, vscodeApi } from '../shared/vscode-api';
import { AbView } from './ab-view';
import { Charts } from './charts';
import './dashboard.css';
import { Header } from './header';
import { RunModel } from './model';
import { SamplesView } from './samples-view';
import type { RunStatus } from '../../src/protocol/events';

interface State {
  runDir: string;
}

const DRAW_EVERY_MS = 200;

class Dashboard {
  private model = new RunModel();
  private summary: DashboardSummary | null = null;
  private status: RunStatus = 'running';
  private error: string | null = null;
  private drawn = -1; // model.version last drawn
  private pending = false;
  private lastDraw = 0;
  private readonly header: Header;
  private readonly charts: Charts;
  private readonly ab: AbView;
  private readonly samples = new SamplesView();
  private readonly main: HTMLElement;
  private readonly message = h('div', { id: 'dashboard-message', class: 'message' });

  constructor(
    root: HTMLElement,
    private readonly runDir: string | null,
  ) {
    const theme = readTheme();
    const redraw = () => this.schedule(true);
    const sync = new StepSync(); // one step axis for every chart and the A/B heatmap
    this.header = new Header((file) => runDir && vscodeApi().postMessage(webviewMessage('openFile', { path: file })));
    this.charts = new Charts(theme, redraw, sync);
    this.ab = new AbView(theme, redraw, sync);
    this.ab.onQuantityPicked = (abQuantity) => vscodeApi().postMessage(webviewMessage('saveView', { abQuantity }));
    this.main = h('main', { class: 'dashboard' }, [this.header.el, this.charts.el, this.samples.el, this.ab.el]);
    this.main.hidden = true;
    this.message.textContent = runDir
      ? 'Loading the run…'
      : 'This dashboard does not know its run; open it again from the LoRA+ run explorer.';
    root.append(this.message, this.main);
    onThemeChange((t) => {
      this.charts.setTheme(t);
      this.ab.setTheme(t);
      this.schedule(true);
    });
  }

  receive(m: HostToDashboard): void {
    switch (m.type) {
      case 'init':
        this.model = new RunModel();
        this.model.ingest(m.events, unpack(m.packed));
        [this.summary, this.status, this.error] = [m.summary, m.summary.status, m.summary.error];
        this.ab.restoreQuantity(m.view?.abQuantity);
        this.message.hidden = true;
        this.main.hidden = false;
        return this.schedule(true);
      case 'events':
        this.model.ingest(m.events, unpack(m.packed));
        return this.schedule(false);
      case 'summary':
        [this.summary, this.status, this.error] = [m.summary, m.summary.status, m.summary.error];
        return this.schedule(true);
      case 'missing':
        this.main.hidden = true;
        this.message.hidden = false;
        this.message.textContent = m.message;
        this.message.classList.add('error');
        return;
      default:
        m satisfies never;
    }
  }

  /** One draw per animation frame, at most every DRAW_EVERY_MS; `force` redraws even if no event arrived. */
  private schedule(force: boolean): void {
    if (force) this.drawn = -1;
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.lastDraw + DRAW_EVERY_MS - performance.now());
    setTimeout(() => requestAnimationFrame(() => this.draw()), wait);
  }

  private draw(): void {
    this.pending = false;
    this.lastDraw = performance.now();
    if (!this.summary || this.drawn === this.model.version) return;
    this.drawn = this.model.version;
    this.header.draw(this.model, this.summary, this.status, this.error);
    this.charts.draw(this.model);
    this.samples.draw(this.model);
    this.ab.draw(this.model);
  }
}

function unpack(p: PackedModules | undefined): { modules: string[]; values: Float32Array } | undefined {
  return p && { modules: p.modules, values: packedValues(p.values)! }; // the guard checked it converts
}

const state = initialState<State>();
const runDir = typeof state?.runDir === 'string' ? state.runDir : null;
if (runDir) vscodeApi<State>().setState({ runDir });
const dashboard = new Dashboard(document.body, runDir);
window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isHostToDashboard(e.data)) dashboard.receive(e.data);
});
vscodeApi().postMessage(webviewMessage('ready', {}));
