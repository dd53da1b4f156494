// The tune dashboard page: says `ready`, gets the tune's summary and its trials' curves (`init`), then `summary` and
// `curves` as the tune goes on. It shows the tune's setup and progress, the winner with "Train with these settings"
// and "Open winner", the lr_A × λ heatmaps of the rung results (filling in as rung results arrive), the bracket and
// the overlaid curves. Drawing is throttled to one frame per ~200 ms. vscode.setState({tuneDir}) lets the serializer
// restore the panel after a reload.
import type { TuneSummary } from '../../src/protocol/tune';
import {
  isHostToTuneDashboard,
  isTuneDashboardState,
  tuneWebviewMessage,
  type HostToTuneDashboard,
  type TuneDashboardState,
} from '../../src/protocol/tune-dashboard';
import { h, setText } from '../shared/dom';
import { onThemeChange, readTheme } from '../shared/theme';
import { initialState, vscodeApi } from '../shared/vscode-api';
import { CurvesView } from './curves';
import { CurveStore, headerLines, heatGrids, winnerText } from './model';
import './style.css';
import { bracketTable, HeatmapsView } from './views';

const DRAW_EVERY_MS = 200;

class TunePage {
  private summary: TuneSummary | null = null;
  private readonly curves = new CurveStore();
  private pending = false;
  private lastDraw = 0;
  private tablesFor: [TuneSummary | null, unknown] = [null, null]; // the summary and rung choice the tables show
  private readonly message = h('div', { id: 'tune-message', class: 'message' });
  private readonly main = h('main', { class: 'tune' });
  private readonly title = h('h1', { id: 'tune-title' });
  private readonly status = h('span', { id: 'tune-status', class: 'status' });
  private readonly meta = h('div', { id: 'tune-meta', class: 'muted' });
  private readonly winner = h('p', { id: 'tune-winner' });
  private readonly trainButton = h('button', { id: 'train-winner', text: 'Train with these settings' });
  private readonly openButton = h('button', { id: 'open-winner', text: 'Open winner' });
  private readonly heatmaps: HeatmapsView;
  private readonly bracketBox = h('div', { class: 'scroll' });
  private readonly curveView: CurvesView;

  constructor(root: HTMLElement, known: boolean) {
    const post = vscodeApi().postMessage.bind(vscodeApi());
    const openTrial = (trial: string) => post(tuneWebviewMessage('openTrial', { trial }));
    this.heatmaps = new HeatmapsView(openTrial, () => this.schedule());
    this.curveView = new CurvesView(readTheme());
    this.trainButton.addEventListener('click', () => post(tuneWebviewMessage('trainWinner', {})));
    this.openButton.addEventListener('click', () => post(tuneWebviewMessage('openWinner', {})));
    this.trainButton.title = 'Write a config next to the tuned one with the winner’s settings, and open it';
    this.openButton.title = 'The winner’s run dashboard';
    const winnerBox = h('section', { class: 'winner-box' }, [
      h('h2', { text: 'Winner' }),
      this.winner,
      h('div', { class: 'buttons' }, [this.trainButton, this.openButton]),
    ]);
    this.main.append(
      h('header', { class: 'tune-header' }, [h('div', { class: 'title-row' }, [this.title, this.status]), this.meta]),
      winnerBox,
      section('Grid: lr_A × λ, the judged figure at the rungs', this.heatmaps.el),
      section('Bracket: which trials continued at each rung', this.bracketBox),
      section('Curves', this.curveView.el),
    );
    this.main.hidden = true;
    this.message.textContent = known
      ? 'Loading the tune…'
      : 'This dashboard does not know its tune; open it again from the LoRA+ run explorer.';
    root.append(this.message, this.main);
    onThemeChange(() => {
      this.curveView.setTheme(readTheme());
      this.schedule();
    });
  }

  receive(m: HostToTuneDashboard): void {
    switch (m.type) {
      case 'init':
        this.curves.clear();
        m.curves.forEach((c) => this.curves.add(c));
        this.summary = m.summary;
        this.message.hidden = true;
        this.main.hidden = false;
        return this.schedule();
      case 'summary':
        this.summary = m.summary;
        return this.schedule();
      case 'curves':
        m.curves.forEach((c) => this.curves.add(c));
        return this.schedule();
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

  private schedule(): void {
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.lastDraw + DRAW_EVERY_MS - performance.now());
    setTimeout(() => requestAnimationFrame(() => this.draw()), wait);
  }

  private draw(): void {
    this.pending = false;
    this.lastDraw = performance.now();
    const s = this.summary;
    if (!s) return;
    setText(this.title, `LoRA+ tune ${s.start?.tune_name ?? ''}`);
    setText(this.status, s.status);
    this.status.dataset.status = s.status;
    this.meta.replaceChildren(...headerLines(s).map((l) => h('div', { text: l })));
    if (s.error) this.meta.append(h('div', { class: 'error', text: `error: ${s.error.message}` }));
    const w = winnerText(s);
    setText(this.winner, w ?? (s.status === 'running' ? 'No winner yet: the tune is still running.' : 'No winner.'));
    this.winner.dataset.trial = s.winner?.trial ?? '';
    this.trainButton.disabled = this.openButton.disabled = !s.winner;
    this.curveView.draw(s, this.curves);
    // The tables change with the summary (rung results) or the rung picked, not with each trial's new steps.
    if (this.tablesFor[0] === s && this.tablesFor[1] === this.heatmaps.choice) return;
    this.tablesFor = [s, this.heatmaps.choice];
    this.heatmaps.draw(s, heatGrids(s, this.heatmaps.choice));
    this.bracketBox.replaceChildren(
      bracketTable(s, (trial) => vscodeApi().postMessage(tuneWebviewMessage('openTrial', { trial }))),
    );
  }
}

function section(heading: string, body: HTMLElement): HTMLElement {
  return h('section', {}, [h('h2', { text: heading }), body]);
}

const state = initialState<TuneDashboardState>();
const known = isTuneDashboardState(state);
if (known) vscodeApi<TuneDashboardState>().setState({ tuneDir: state.tuneDir });
const page = new TunePage(document.body, known);
window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isHostToTuneDashboard(e.data)) page.receive(e.data);
});
vscodeApi().postMessage(tuneWebviewMessage('ready', {}));
