// The compare webview: runs, checkpoints and adapters side by side (the CompareReport of src/engine/compare/compare.ts).
// Sections: the configs (differing rows highlighted), metrics with an Evaluate button per item, overlaid curves,
// per-module ΔW statistics with singular-value sparkbars, and the subspace-similarity heatmap. The host posts
// `report` after our `ready`, and `evalResult`/`evalError` after a `runEval`.
import 'uplot/dist/uPlot.min.css';
import './style.css';
import type {
  CompareReport,
  CompareState,
  CompareToHost,
  EvalOutcome,
  HostToCompare,
} from '../../src/protocol/compare';
import { formatError, type ErrorInfo } from '../../src/protocol/errors';
import { count, fixed4, sig3 } from '../shared/format';
import { CurvesView, itemColors } from './curves';
import { SimilarityView } from './heatmap';
import { el } from './dom';
import { configRows, metricRows, moduleRows, sparkHeights } from './model';

interface VsCodeApi {
  postMessage(m: CompareToHost): void;
  setState(s: CompareState): void;
  getState(): CompareState | undefined;
}
declare function acquireVsCodeApi(): VsCodeApi;

const vscode = acquireVsCodeApi();
const app = el('main', { id: 'compare' });
document.body.append(app);
const title = el('h1', { id: 'compare-title' }, 'LoRA+ Compare');
const status = el('p', { id: 'compare-status', className: 'status' }, 'Computing the comparison…');
app.append(title, status);

const initial = readState();
if (initial) vscode.setState(initial);

const evalCells: HTMLElement[] = [];
const evalButtons: HTMLButtonElement[] = [];
let curves: CurvesView | null = null;
let similarity: SimilarityView | null = null;

window.addEventListener('message', (ev: MessageEvent<HostToCompare>) => {
  const m = ev.data;
  switch (m.type) {
    case 'report':
      render(m.report);
      break;
    case 'reportError':
      status.textContent = `Could not compare: ${formatError(m.error)}`;
      status.className = 'status error';
      break;
    case 'evalResult':
      showEval(m.item, m.result, null);
      break;
    case 'evalError':
      showEval(m.item, null, m.error);
      break;
  }
});
vscode.postMessage({ type: 'ready' });

function render(r: CompareReport): void {
  vscode.setState({ paths: r.items.map((it) => it.path) });
  curves?.dispose();
  similarity?.dispose();
  app.replaceChildren(title, status);
  title.textContent = `LoRA+ Compare: ${r.items.map((it) => it.label).join(' · ')}`;
  status.textContent = '';
  status.className = 'status';
  const colors = itemColors(r.items.length);
  app.append(
    section('Items', itemsList(r, colors)),
    section('Configuration', configTable(r)),
    section('Metrics', metricsTable(r)),
  );
  if (r.curves.some((c) => c)) {
    curves = new CurvesView(r, colors);
    app.append(section('Curves', curves.root));
    curves.draw();
  }
  app.append(section('Adapter: ΔW = scaling · B·A per module', modulesTable(r)));
  similarity = new SimilarityView(r);
  app.append(section('Subspace similarity (Hu et al. 2021, §7)', similarity.root));
  similarity.draw();
}

// ---- sections ---------------------------------------------------------------------------------------------------

function itemsList(r: CompareReport, colors: string[]): HTMLElement {
  const list = el('ol', { className: 'items' });
  r.items.forEach((it, i) => {
    const swatch = el('span', { className: 'swatch' });
    swatch.style.background = colors[i];
    const detail = [it.kind, it.status, it.step !== null ? `step ${it.step}` : null].filter(Boolean).join(', ');
    list.append(
      el(
        'li',
        { title: it.adapter_dir },
        swatch,
        el('strong', {}, it.label),
        ` (${detail}) `,
        el('code', {}, it.adapter_dir),
      ),
    );
  });
  return list;
}

function configTable(r: CompareReport): HTMLElement {
  const wrap = el('div');
  const only = el('input', { type: 'checkbox', id: 'only-diffs', checked: r.differs.length > 0 });
  const toggle = el(
    'label',
    { className: 'toggle' },
    only,
    ` only the ${r.differs.length} key${r.differs.length === 1 ? '' : 's'} that differ`,
  );
  const table = el('table', { id: 'config-table', className: 'grid' });
  const fill = () => {
    const head = el('tr', {}, el('th', {}, 'key'), ...r.items.map((it) => el('th', { title: it.path }, it.label)));
    const rows = configRows(r, only.checked).map((row) =>
      el(
        'tr',
        { className: row.differs ? 'differs' : '' },
        el('th', { scope: 'row' }, row.key),
        ...row.cells.map((c) => el('td', { title: c }, c)),
      ),
    );
    table.replaceChildren(el('thead', {}, head), el('tbody', {}, ...rows));
  };
  only.addEventListener('change', fill);
  fill();
  wrap.append(toggle, table);
  return wrap;
}

function metricsTable(r: CompareReport): HTMLElement {
  const fmt = {
    loss: fixed4,
    count,
    sig: sig3,
    percent: (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(2)}%`),
  };
  const rows = metricRows(r).map((row) =>
    el('tr', {}, el('th', { scope: 'row' }, row.label), ...row.values.map((v) => el('td', {}, fmt[row.digits](v)))),
  );
  evalCells.length = 0;
  evalButtons.length = 0;
  const noEval = r.eval_config
    ? ''
    : 'No eval set: none of the items is a run with a config.yaml (the CLI takes --eval-config CONFIG).';
  const buttons = r.items.map((it, i) => {
    const b = el(
      'button',
      {
        className: 'eval',
        disabled: !r.eval_config,
        title: noEval || `Evaluate ${it.label} on the eval set of ${r.eval_config}`,
      },
      'Evaluate',
    );
    b.dataset.item = String(i);
    b.addEventListener('click', () => {
      b.disabled = true;
      b.textContent = 'Evaluating…';
      evalCells[i].textContent = '';
      vscode.postMessage({ type: 'runEval', item: i });
    });
    evalButtons.push(b);
    const cell = el('td', { className: 'eval-result' });
    evalCells.push(cell);
    return { button: el('td', {}, b), cell };
  });
  const table = el(
    'table',
    { id: 'metrics-table', className: 'grid' },
    el('thead', {}, el('tr', {}, el('th', {}, ''), ...r.items.map((it) => el('th', {}, it.label)))),
    el(
      'tbody',
      {},
      ...rows,
      el(
        'tr',
        {},
        el('th', { scope: 'row', title: r.eval_config ?? noEval }, 'evaluate'),
        ...buttons.map((b) => b.button),
      ),
      el('tr', {}, el('th', { scope: 'row' }, 'result'), ...buttons.map((b) => b.cell)),
    ),
  );
  return el(
    'div',
    {},
    table,
    r.eval_config
      ? el('p', { className: 'note' }, `Evaluations use the eval set of ${r.eval_config}.`)
      : el('p', { className: 'note' }, noEval),
  );
}

function showEval(item: number, result: EvalOutcome | null, error: ErrorInfo | null): void {
  const cell = evalCells[item];
  const button = evalButtons[item];
  if (!cell || !button) return;
  button.disabled = false;
  button.textContent = 'Evaluate again';
  cell.classList.toggle('error', Boolean(error));
  if (error) cell.textContent = formatError(error);
  else if (result) {
    const extra =
      result.perplexity !== undefined
        ? ` · perplexity ${sig3(result.perplexity)}`
        : result.accuracy !== undefined
          ? ` · accuracy ${(100 * result.accuracy).toFixed(2)}%`
          : '';
    cell.textContent = `loss ${fixed4(result.loss)}${extra} (${result.examples} examples)`;
    cell.dataset.value = JSON.stringify(result.loss);
  }
}

function modulesTable(r: CompareReport): HTMLElement {
  const head = el('tr', {}, el('th', {}, 'module'), ...r.items.map((it) => el('th', { colSpan: 3 }, it.label)));
  const sub = el(
    'tr',
    { className: 'sub' },
    el('th', {}, ''),
    ...r.items.flatMap(() => [
      el('th', { title: '‖ΔW‖_F' }, '‖ΔW‖'),
      el('th', { title: r.definitions.effective_rank }, 'eff. rank / r'),
      el('th', { title: 'singular values of ΔW, one scale per row' }, 'σ'),
    ]),
  );
  const rows = moduleRows(r).map((row) =>
    el(
      'tr',
      {},
      el('th', { scope: 'row', title: row.module }, row.module),
      ...row.cells.flatMap((c) =>
        c
          ? [
              el('td', { className: 'num' }, sig3(c.norm)),
              el(
                'td',
                { className: 'num', title: `numerical rank ${c.numerical_rank}, 90% energy in ${c.energy_rank_90}` },
                `${c.effective_rank.toFixed(2)} / ${c.r}`,
              ),
              el('td', {}, sparkbar(c.sigma, row.sigmaMax)),
            ]
          : [el('td', {}, '—'), el('td', {}, ''), el('td', {}, '')],
      ),
    ),
  );
  return el(
    'div',
    { className: 'scroll' },
    el('table', { id: 'modules-table', className: 'grid' }, el('thead', {}, head, sub), el('tbody', {}, ...rows)),
  );
}

function sparkbar(sigma: number[], max: number): HTMLElement {
  const bars = el('span', { className: 'spark', title: sigma.map(sig3).join(', ') });
  for (const h of sparkHeights(sigma, max)) {
    const bar = el('span', { className: 'bar' });
    bar.style.height = `${(100 * h).toFixed(1)}%`;
    bars.append(bar);
  }
  return bars;
}

// ---- helpers ------------------------------------------------------------------------------------------------------

function section(heading: string, body: HTMLElement): HTMLElement {
  return el('section', {}, el('h2', {}, heading), body);
}

function readState(): CompareState | null {
  const saved = vscode.getState();
  if (saved?.paths?.length) return saved;
  try {
    const s = JSON.parse(document.body.dataset.state ?? 'null') as CompareState | null;
    return s?.paths?.length ? s : null;
  } catch {
    return null;
  }
}
