// The compare page: runs, checkpoints and adapters side by side (the CompareReport of src/engine/compare/compare.ts).
// Sections: the items, their configs (differing rows highlighted), metrics with an Evaluate button per item,
// overlaid curves, per-module ΔW statistics, and the similarity heatmap (cosine, output and input subspaces). It says
// `ready` first; the host answers with `report` (or `reportError`), then `evalResult`/`evalError` for each `runEval`,
// and replays them all after a reload. A theme switch recolours the curves, the swatches and the heatmaps.
// vscode.setState({paths}) lets the serializer recompute the report after a window reload.
import './style.css';
import {
  isCompareState,
  isHostToCompare,
  webviewMessage,
  type CompareReport,
  type CompareState,
  type HostToCompare,
} from '../../src/protocol/compare';
import { formatError } from '../../src/protocol/errors';
import { h, setText } from '../shared/dom';
import { onThemeChange, readTheme, type Theme } from '../shared/theme';
import { initialState, vscodeApi } from '../shared/vscode-api';
import { CurvesView } from './curves';
import { SimilarityView } from './heatmap';
import { itemColors } from './model';
import { configTable, ItemsList, MetricsTable, modulesTable } from './tables';

/** What one report put on the page: the parts that redraw on a theme change or take eval results. */
interface Shown {
  report: CompareReport;
  items: ItemsList;
  metrics: MetricsTable;
  curves: CurvesView | null;
  similarity: SimilarityView;
}

class ComparePage {
  private readonly title = h('h1', { id: 'compare-title', text: 'LoRA+ Compare' });
  private readonly status = h('p', { id: 'compare-status', class: 'status', text: 'Computing the comparison…' });
  private shown: Shown | null = null;

  constructor(
    private readonly app: HTMLElement,
    private theme: Theme,
  ) {
    app.append(this.title, this.status);
    onThemeChange(() => this.setTheme(readTheme()));
  }

  receive(m: HostToCompare): void {
    switch (m.type) {
      case 'report':
        return this.render(m.report);
      case 'reportError':
        setText(this.status, `Could not compare: ${formatError(m.error)}`);
        this.status.className = 'status error';
        return;
      case 'evalResult':
        return this.shown?.metrics.showEval(m.item, m.result, null);
      case 'evalError':
        return this.shown?.metrics.showEval(m.item, null, m.error);
      default:
        m satisfies never;
    }
  }

  /** The whole page for a report (a replay after a reload sends the same report again: built afresh). */
  private render(r: CompareReport): void {
    vscodeApi<CompareState>().setState({ paths: r.items.map((it) => it.path) });
    this.shown?.curves?.dispose();
    this.shown?.similarity.dispose();
    this.app.replaceChildren(this.title, this.status);
    setText(this.title, `LoRA+ Compare: ${r.items.map((it) => it.label).join(' · ')}`);
    setText(this.status, '');
    this.status.className = 'status';
    const items = new ItemsList(r, itemColors(this.theme.series, r.items.length));
    const metrics = new MetricsTable(r, (item) => vscodeApi().postMessage(webviewMessage('runEval', { item })));
    this.app.append(
      section('Items', items.el),
      section('Configuration', configTable(r)),
      section('Metrics', metrics.el),
    );
    const curves = r.curves.some((c) => c) ? new CurvesView(r, this.theme) : null;
    if (curves) this.app.append(section('Curves', curves.root));
    this.app.append(section('Adapter: ΔW = scaling · B·A per module', modulesTable(r)));
    const similarity = new SimilarityView(r, this.theme);
    this.app.append(section('Similarity of the updates: cosine, output and input subspaces', similarity.root));
    curves?.draw(); // once in the page: the chart and the heatmap size themselves to it
    similarity.draw();
    this.shown = { report: r, items, metrics, curves, similarity };
  }

  private setTheme(theme: Theme): void {
    this.theme = theme;
    const s = this.shown;
    if (!s) return;
    s.items.setColors(itemColors(theme.series, s.report.items.length));
    s.curves?.setTheme(theme);
    s.similarity.setTheme(theme);
  }
}

function section(heading: string, body: HTMLElement): HTMLElement {
  return h('section', {}, [h('h2', { text: heading }), body]);
}

const state = initialState<CompareState>();
if (isCompareState(state)) vscodeApi<CompareState>().setState(state);
const app = h('main', { id: 'compare' });
document.body.append(app);
const page = new ComparePage(app, readTheme());
window.addEventListener('message', (e: MessageEvent<unknown>) => {
  if (isHostToCompare(e.data)) page.receive(e.data);
});
vscodeApi().postMessage(webviewMessage('ready', {}));
