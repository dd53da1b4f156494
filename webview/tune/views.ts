// The tune dashboard's tables (DOM): the lr_A × λ heatmaps of the rung results (HTML tables, so every cell is an
// element with its figure, its state and a tooltip; colours from the shared viridis ramp, diverged cells hatched),
// and the bracket, one column per rung. Clicking a trial opens its run dashboard (the host does that).
import { h } from '../shared/dom';
import { heatColor, heatText } from '../shared/heat';
import { bracket, fmtJudged, type HeatGrid, type RungChoice } from './model';
import type { TuneSummary } from '../../src/protocol/tune';

/** The heatmaps with a rung picker; `openTrial` gets a clicked cell's trial. */
export class HeatmapsView {
  readonly el = h('div', { class: 'heatmaps' });
  private readonly picker = h('select', { id: 'heat-rung', title: 'which rung the cells show' });
  private readonly grids = h('div', { class: 'grids' });
  private readonly legend = h('div', { class: 'legend' });
  choice: RungChoice = 'latest';

  constructor(
    private readonly openTrial: (trial: string) => void,
    private readonly redraw: () => void,
  ) {
    this.picker.addEventListener('change', () => {
      this.choice = this.picker.value === 'latest' ? 'latest' : Number(this.picker.value);
      this.redraw();
    });
    const controls = h('div', { class: 'controls' }, [h('label', {}, ['cells show ', this.picker])]);
    this.el.append(controls, this.grids, this.legend);
  }

  draw(s: TuneSummary, grids: HeatGrid[]): void {
    this.fillPicker(s);
    const several = grids.length > 1;
    this.grids.replaceChildren(
      ...grids.map((g) =>
        h('div', { class: 'grid-box' }, [
          several ? h('h3', { text: `optimizer ${g.optimizer}` }) : null,
          table(g, this.openTrial),
        ]),
      ),
    );
    const metric = s.start?.metric;
    const ramp = h('span', { class: 'ramp' });
    ramp.style.background = `linear-gradient(to right, ${[0, 0.25, 0.5, 0.75, 1].map(heatColor).join(', ')})`;
    const what = metric ? (metric.name === 'accuracy' ? 'eval accuracy' : 'eval loss') : 'figure';
    this.legend.replaceChildren(
      h('span', { text: 'worse' }),
      ramp,
      h('span', { text: `better ${what}` }),
      h('span', { class: 'diverged-key', text: 'diverged' }),
      h('span', { class: 'muted', text: '★ winner · → continues · ✗ out · … training · click a cell for its run' }),
    );
  }

  private fillPicker(s: TuneSummary): void {
    const rungs = s.start?.rungs ?? [];
    const options: [string, string][] = [
      ['latest', 'each trial’s latest rung'],
      ...rungs.map((steps, k): [string, string] => [String(k), `rung ${k + 1} (step ${steps})`]),
    ];
    const key = options.map((o) => o[0]).join();
    if (this.picker.dataset.options === key) return;
    this.picker.dataset.options = key;
    this.picker.replaceChildren(...options.map(([v, label]) => h('option', { text: label, attrs: { value: v } })));
    this.picker.value = String(this.choice);
  }
}

function table(g: HeatGrid, openTrial: (trial: string) => void): HTMLTableElement {
  const head = h('tr', {}, [
    h('th', { class: 'corner', text: 'lr_A \\ λ' }),
    ...g.cols.map((c) => h('th', { text: c })),
  ]);
  const rows = g.rows.map((lr, i) =>
    h('tr', {}, [
      h('th', { text: lr }),
      ...g.cells[i].map((c) => {
        const td = h('td', { class: 'cell', title: c.title }, [
          h('span', { class: 'figure', text: c.text }),
          c.mark ? h('span', { class: 'mark', text: c.mark }) : null,
        ]);
        td.dataset.trial = c.trial ?? '';
        td.dataset.state = c.state;
        td.dataset.value = c.value === null ? '' : String(c.value);
        if (c.diverged) td.classList.add('diverged');
        if (c.winner) td.classList.add('winner');
        if (c.shade !== null) {
          td.style.background = heatColor(c.shade);
          td.style.color = heatText(c.shade);
        }
        if (c.trial) {
          const trial = c.trial;
          td.classList.add('clickable');
          td.addEventListener('click', () => openTrial(trial));
        }
        return td;
      }),
    ]),
  );
  const t = h('table', { class: 'tune-heatmap', id: `tune-heatmap-${g.optimizer}` }, [
    h('thead', {}, [head]),
    h('tbody', {}, rows),
  ]);
  t.dataset.optimizer = g.optimizer;
  return t;
}

/** The bracket: a column per rung, its trials best first, marked by what happened to them. */
export function bracketTable(s: TuneSummary, openTrial: (trial: string) => void): HTMLElement {
  const columns = bracket(s);
  if (!columns.length) return h('p', { id: 'tune-bracket', class: 'muted', text: 'No rung has results yet.' });
  const depth = Math.max(...columns.map((c) => c.entries.length));
  const metric = s.start?.metric;
  const head = h(
    'tr',
    {},
    columns.map((c) => h('th', { text: c.title })),
  );
  const rows = Array.from({ length: depth }, (_, i) =>
    h(
      'tr',
      {},
      columns.map((c) => {
        const e = c.entries[i];
        if (!e) return h('td');
        const title = metric && e.value !== null ? `${metric.name} ${fmtJudged(e.value, metric)}` : e.mark;
        const td = h('td', { class: `entry ${e.mark} clickable`, text: e.text, title });
        td.dataset.trial = e.trial;
        td.dataset.mark = e.mark;
        td.addEventListener('click', () => openTrial(e.trial));
        return td;
      }),
    ),
  );
  return h('table', { id: 'tune-bracket', class: 'bracket' }, [h('thead', {}, [head]), h('tbody', {}, rows)]);
}
