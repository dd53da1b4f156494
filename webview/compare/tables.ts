// The compare page's tables: the items (with their chart colours), the configs side by side (differing keys
// highlighted), the metrics with an Evaluate button per item, and per-module ΔW statistics with singular-value
// sparkbars. The figures come from model.ts; this file only builds elements.
import type { CompareReport, EvalOutcome } from '../../src/protocol/compare';
import { formatError, type ErrorInfo } from '../../src/protocol/errors';
import { h } from '../shared/dom';
import { count, fixed4, sig3 } from '../shared/format';
import { configRows, itemName, metricRows, moduleRows, sparkHeights } from './model';

const percent = (v: number | null) => (v === null ? '–' : `${(100 * v).toFixed(2)}%`);
const th = (text: string, props: { title?: string; attrs?: Record<string, string> } = {}) =>
  h('th', { text, ...props });
const rowHead = (text: string, title?: string) => h('th', { text, title, attrs: { scope: 'row' } });

/** The items, each with a swatch of its curve colour (recoloured when the theme changes). */
export class ItemsList {
  readonly el: HTMLElement;
  private readonly swatches: HTMLElement[];

  constructor(r: CompareReport, colors: string[]) {
    this.swatches = r.items.map(() => h('span', { class: 'swatch' }));
    this.el = h(
      'ol',
      { class: 'items' },
      r.items.map((it, i) => {
        const detail = [it.kind, it.status, it.step !== null ? `step ${it.step}` : null].filter(Boolean).join(', ');
        return h('li', { title: it.adapter_dir }, [
          this.swatches[i],
          h('strong', { text: itemName(it) }),
          ` (${[it.caption ? it.label : '', detail].filter(Boolean).join(', ')}) `,
          h('code', { text: it.adapter_dir }),
        ]);
      }),
    );
    this.setColors(colors);
  }

  setColors(colors: string[]): void {
    this.swatches.forEach((s, i) => (s.style.background = colors[i]));
  }
}

export function configTable(r: CompareReport): HTMLElement {
  const only = h('input', { id: 'only-diffs', attrs: { type: 'checkbox' } });
  only.checked = r.differs.length > 0;
  const n = r.differs.length;
  const toggle = h('label', { class: 'toggle' }, [only, ` only the ${n} key${n === 1 ? '' : 's'} that differ`]);
  const table = h('table', { id: 'config-table', class: 'grid' });
  const fill = () => {
    const head = h('tr', {}, [
      th('key'),
      ...r.items.map((it) => th(itemName(it), { title: `${it.label}: ${it.path}` })),
    ]);
    const rows = configRows(r, only.checked).map((row) =>
      h('tr', { class: row.differs ? 'differs' : '' }, [
        rowHead(row.key),
        ...row.cells.map((c) => h('td', { text: c, title: c })),
      ]),
    );
    table.replaceChildren(h('thead', {}, [head]), h('tbody', {}, rows));
  };
  only.addEventListener('change', fill);
  fill();
  return h('div', {}, [toggle, table]);
}

/** The metrics at each item's step, and a row of Evaluate buttons whose results land in the row below. */
export class MetricsTable {
  readonly el: HTMLElement;
  private readonly cells: HTMLElement[];
  private readonly buttons: HTMLButtonElement[];

  constructor(r: CompareReport, runEval: (item: number) => void) {
    const fmt = { loss: fixed4, count, sig: sig3, percent };
    const rows = metricRows(r).map((row) =>
      h('tr', {}, [rowHead(row.label), ...row.values.map((v) => h('td', { text: fmt[row.digits](v) }))]),
    );
    const noEval = r.eval_config
      ? ''
      : 'No eval set: none of the items is a run with a config.yaml (the CLI takes --eval-config CONFIG).';
    this.cells = r.items.map(() => h('td', { class: 'eval-result' }));
    this.buttons = r.items.map((it, i) => {
      const b = h('button', {
        class: 'eval',
        text: 'Evaluate',
        title: noEval || `Evaluate ${it.label} on the eval set of ${r.eval_config}`,
        attrs: { 'data-item': String(i) },
      });
      b.disabled = !r.eval_config;
      b.addEventListener('click', () => {
        b.disabled = true;
        b.textContent = 'Evaluating…';
        this.cells[i].textContent = '';
        runEval(i);
      });
      return b;
    });
    const table = h('table', { id: 'metrics-table', class: 'grid' }, [
      h('thead', {}, [h('tr', {}, [th(''), ...r.items.map((it) => th(itemName(it), { title: it.label }))])]),
      h('tbody', {}, [
        ...rows,
        h('tr', {}, [rowHead('evaluate', r.eval_config ?? noEval), ...this.buttons.map((b) => h('td', {}, [b]))]),
        h('tr', {}, [rowHead('result'), ...this.cells]),
      ]),
    ]);
    const note = r.eval_config ? `Evaluations use the eval set of ${r.eval_config}.` : noEval;
    this.el = h('div', {}, [table, h('p', { class: 'note', text: note })]);
  }

  /** An evaluation's outcome (or why it failed) under its item; the button offers to run it again. */
  showEval(item: number, result: EvalOutcome | null, error: ErrorInfo | null): void {
    const [cell, button] = [this.cells[item], this.buttons[item]];
    if (!cell || !button) return; // an index the report does not have
    button.disabled = false;
    button.textContent = 'Evaluate again';
    cell.classList.toggle('error', Boolean(error));
    if (error) cell.textContent = formatError(error);
    else if (result) {
      const extra =
        result.perplexity !== undefined
          ? ` · perplexity ${sig3(result.perplexity)}`
          : result.accuracy !== undefined
            ? ` · accuracy ${percent(result.accuracy)}`
            : '';
      cell.textContent = `loss ${fixed4(result.loss)}${extra} (${result.examples} examples)`;
      cell.dataset.value = JSON.stringify(result.loss);
    }
  }
}

export function modulesTable(r: CompareReport): HTMLElement {
  const head = h('tr', {}, [
    th('module'),
    ...r.items.map((it) => th(itemName(it), { title: it.label, attrs: { colspan: '3' } })),
  ]);
  const sub = h('tr', { class: 'sub' }, [
    th(''),
    ...r.items.flatMap(() => [
      th('‖ΔW‖', { title: '‖ΔW‖_F' }),
      th('eff. rank / r', { title: r.definitions.effective_rank }),
      th('σ', { title: 'singular values of ΔW, one scale per row' }),
    ]),
  ]);
  const rows = moduleRows(r).map((row) =>
    h('tr', {}, [
      rowHead(row.module, row.module),
      ...row.cells.flatMap((c) =>
        c
          ? [
              h('td', { class: 'num', text: sig3(c.norm) }),
              h('td', {
                class: 'num',
                title: `numerical rank ${c.numerical_rank}, 90% energy in ${c.energy_rank_90}`,
                text: `${c.effective_rank.toFixed(2)} / ${c.r}`,
              }),
              h('td', {}, [sparkbar(c.sigma, row.sigmaMax)]),
            ]
          : [h('td', { text: '—' }), h('td'), h('td')],
      ),
    ]),
  );
  return h('div', { class: 'scroll' }, [
    h('table', { id: 'modules-table', class: 'grid' }, [h('thead', {}, [head, sub]), h('tbody', {}, rows)]),
  ]);
}

function sparkbar(sigma: number[], max: number): HTMLElement {
  const bars = sparkHeights(sigma, max).map((height) => {
    const bar = h('span', { class: 'bar' });
    bar.style.height = `${(100 * height).toFixed(1)}%`; // through the CSSOM: the CSP allows no style attributes
    return bar;
  });
  return h('span', { class: 'spark', title: sigma.map(sig3).join(', ') }, bars);
}
