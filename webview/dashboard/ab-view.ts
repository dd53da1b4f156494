// The A/B view: how each LoRA module's two halves learn, step by step. A quantity picker, the module × step heatmap,
// lines for the modules picked on the map, a flag when one side stalls, what balanced training looks like, and which
// tensors LoRA+ trains at B's learning rate.
import '@vscode-elements/elements/dist/vscode-collapsible/index.js';
import '@vscode-elements/elements/dist/vscode-option/index.js';
import '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type { VscodeSingleSelect } from '@vscode-elements/elements/dist/vscode-single-select/index.js';
import type { ParamGroupInfo } from '../../src/protocol/events';
import { h, setText } from '../shared/dom';
import { shortModule, sig3, times } from '../shared/format';
import { LineChart, type ChartSpec } from '../shared/line-chart';
import type { StepSync } from '../shared/step-sync';
import type { Theme } from '../shared/theme';
import { AB_INFO, AB_QUANTITIES, STALL_FACTOR, STALL_WINDOW, type AbQuantity, type Stall } from './ab-model';
import { abExplanation } from './ab-text';
import { Heatmap } from './heatmap';
import type { RunModel } from './model';

const MAX_LINES = 8;

export class AbView {
  readonly el: HTMLElement;
  private quantity: AbQuantity = 'delta_ratio';
  private quantityPicked = false;
  /** Told when the user picks a quantity (the page asks the host to keep it for the next dashboard). */
  onQuantityPicked: ((q: AbQuantity) => void) | null = null;
  private readonly selected = new Set<string>();
  private selectionPicked = false;
  private readonly select: VscodeSingleSelect;
  private readonly heatmap: Heatmap;
  private readonly lines: LineChart;
  private readonly linesTitle = h('h3');
  private readonly stallBox = h('div', { id: 'ab-stall', class: 'stall', attrs: { role: 'status' } });
  private readonly note = h('p', { class: 'muted' });
  private readonly explanation = h('div', { class: 'explanation' });
  private readonly groupList = h('div', { id: 'ab-groups', class: 'groups' });
  private linesKey = '';
  private groupsKey = '';
  private lambda = 1;
  private width = 0;
  private readonly resize: ResizeObserver;

  constructor(
    private theme: Theme,
    private readonly redraw: () => void,
    sync?: StepSync,
  ) {
    this.select = h('vscode-single-select', { attrs: { 'aria-label': 'Quantity' } }) as VscodeSingleSelect;
    for (const q of AB_QUANTITIES)
      this.select.append(h('vscode-option', { text: AB_INFO[q].label, attrs: { value: q } }));
    this.select.addEventListener('change', () => {
      this.quantity = this.select.value as AbQuantity;
      this.quantityPicked = true;
      this.onQuantityPicked?.(this.quantity);
      this.redraw();
    });
    this.heatmap = new Heatmap(
      theme,
      (m) => {
        this.selectionPicked = true;
        if (this.selected.has(m)) this.selected.delete(m);
        else if (this.selected.size < MAX_LINES) this.selected.add(m);
        this.redraw();
      },
      sync,
    );
    const linesHost = h('div', { id: 'chart-ab-lines', class: 'chart' });
    this.lines = new LineChart(linesHost, { series: [] }, theme, sync);
    const collapsible = (heading: string, body: HTMLElement, open: boolean) => {
      const c = h('vscode-collapsible', {}, [body]);
      c.heading = heading;
      c.open = open;
      return c;
    };
    // The heatmap is sized in pixels when drawn: redraw when the panel's width changes.
    this.resize = new ResizeObserver(() => {
      const w = this.heatmap.el.clientWidth;
      if (w === this.width) return;
      this.width = w;
      this.redraw();
    });
    this.resize.observe(this.heatmap.el);
    this.el = h('section', { id: 'ab-view', class: 'ab-view' }, [
      h('div', { class: 'card-head' }, [
        h('h2', { text: 'A/B view: how the two halves of each LoRA module learn' }),
        h('div', { class: 'controls' }, [h('label', { text: 'Quantity ' }), this.select]),
      ]),
      this.stallBox,
      this.note,
      this.heatmap.el,
      h('section', { class: 'card wide' }, [h('div', { class: 'card-head' }, [this.linesTitle]), linesHost]),
      collapsible('What balanced LoRA+ training looks like', this.explanation, true),
      collapsible("Which tensors train at B's learning rate", this.groupList, false),
    ]);
  }

  /** The quantity picked in an earlier dashboard (the host's memento), unless one is picked here already. */
  restoreQuantity(q: string | undefined): void {
    if (this.quantityPicked || !(AB_QUANTITIES as readonly string[]).includes(q ?? '')) return;
    [this.quantity, this.quantityPicked, this.select.value] = [q as AbQuantity, true, q!];
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    this.heatmap.setTheme(theme);
    this.linesKey = ''; // rebuilt with the new colours on the next draw
  }

  destroy(): void {
    this.resize.disconnect();
    this.lines.destroy();
  }

  draw(model: RunModel): void {
    const ab = model.ab;
    if (!this.quantityPicked) {
      const q: AbQuantity = ab.hasOutput ? 'out_ratio' : 'delta_ratio';
      if (q !== this.quantity || this.select.value !== q) [this.quantity, this.select.value] = [q, q];
    }
    const stalls = model.stalls();
    if (!this.selectionPicked) {
      this.selected.clear();
      const pick = stalls.length ? stalls.map((s) => s.module) : [ab.modules[0], ab.modules.at(-1)];
      for (const m of pick.slice(0, 3)) if (m) this.selected.add(m);
    }
    this.lambda = model.start?.loraplus_lr_ratio ?? 1;
    setText(
      this.note,
      this.quantity === 'out_ratio' && !ab.hasOutput
        ? "This run's metrics.jsonl has no out_A/out_B (written by an older version); pick another quantity."
        : '',
    );
    this.drawStalls(stalls, ab.modules.length);
    this.heatmap.draw({
      ab,
      quantity: this.quantity,
      selected: this.selected,
      stalled: new Map(stalls.map((s) => [s.module, s.side])),
      balanced: this.quantity === 'delta_ratio' ? Math.max(1e-9, this.lambda) : 1, // LoRA+ asks ‖ΔB‖/‖ΔA‖ ≈ λ
    });
    this.drawLines(model);
    this.drawExplanation(model);
    this.drawGroups(model.groups);
  }

  private drawLines(model: RunModel): void {
    const ab = model.ab;
    const rows = ab.modules.map((m, i) => [m, i] as const).filter(([m]) => this.selected.has(m));
    const key = `${this.quantity}|${rows.map(([m]) => m).join()}`;
    if (key !== this.linesKey) {
      this.linesKey = key;
      const spec: ChartSpec = {
        log: true,
        yLabel: AB_INFO[this.quantity].ratio ? 'B / A' : 'norm',
        format: sig3,
        series: rows.map(([m], i) => ({
          label: shortModule(m),
          color: this.theme.series[i % this.theme.series.length],
        })),
      };
      this.lines.respec(spec, this.theme);
      const which = rows.length ? 'the modules picked on the map' : 'click rows of the map to draw their lines';
      setText(this.linesTitle, `${AB_INFO[this.quantity].label}: ${which}`);
    }
    this.lines.setData({ x: ab.steps.data, n: ab.cols, ys: rows.map(([, r]) => ab.row(this.quantity, r)) });
  }

  private drawStalls(stalls: Stall[], modules: number): void {
    this.stallBox.replaceChildren();
    this.stallBox.classList.toggle('active', stalls.length > 0);
    for (const side of ['B', 'A'] as const) {
      const these = stalls.filter((s) => s.side === side);
      if (!these.length) continue;
      const worst = these.reduce((a, b) => (side === 'B' ? (b.ratio < a.ratio ? b : a) : b.ratio > a.ratio ? b : a));
      const what =
        side === 'B'
          ? `${side} stalls in ${these.length} of ${modules} modules: ` +
            `its updates are ${STALL_FACTOR}× or more smaller than A's ` +
            `(median ‖ΔB‖/‖ΔA‖ down to ${sig3(worst.ratio)} over the last ${STALL_WINDOW} logged steps). ` +
            'Raise loraplus_lr_ratio or the learning rate, and check lora_B is in the B group below.'
          : `A stalls in ${these.length} of ${modules} modules: ‖ΔB‖/‖ΔA‖ reaches ${times(worst.ratio)}, ` +
            `over ${STALL_FACTOR}× what λ = ${this.lambda} asks for. Lower loraplus_lr_ratio.`;
      this.stallBox.append(
        h('p', { text: `⚠ ${what}` }),
        h('p', { class: 'muted', text: these.map((s) => shortModule(s.module)).join(', ') }),
      );
    }
  }

  private drawExplanation(model: RunModel): void {
    const text = abExplanation(this.lambda, model.start?.optimizer, STALL_FACTOR);
    if (model.ab.cols === 0) text.push('No A/B figures yet: they arrive with the first logged step.');
    const key = text.join('\n');
    if (this.explanation.dataset.key === key) return;
    this.explanation.dataset.key = key;
    this.explanation.replaceChildren(...text.map((t) => h('p', { text: t })));
  }

  private drawGroups(groups: ParamGroupInfo[]): void {
    const key = groups.map((g) => `${g.name}:${g.lr}:${g.params.length}`).join('|');
    if (key === this.groupsKey) return;
    this.groupsKey = key;
    if (!groups.length) {
      this.groupList.replaceChildren(
        h('p', { class: 'muted', text: 'The optimizer groups are listed once the run has started.' }),
      );
      return;
    }
    const order = ['B', 'B_no_decay', 'A', 'embedding'];
    const sorted = [...groups].sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
    this.groupList.replaceChildren(
      h('p', {
        text:
          "LoRA+ (PEFT's create_loraplus_optimizer) trains every lora_B matrix and every 1-D trainable tensor " +
          "(biases, norms) at B's rate, λ × lr; " +
          'lora_A and other matrices stay at lr; embeddings get their own rate.',
      }),
      ...sorted.map((g) => {
        const details = h('details', {}, [
          h('summary', {
            text:
              `${g.name}: ${g.params.length} tensor${g.params.length === 1 ? '' : 's'}, ` +
              `lr ${sig3(g.lr)}, weight decay ${sig3(g.weight_decay)}`,
          }),
          h(
            'ul',
            { class: 'param-list' },
            g.params.map((p) => h('li', { text: p })),
          ),
        ]);
        details.open = g.name === 'B' || g.name === 'B_no_decay';
        details.dataset.group = g.name;
        return details;
      }),
    );
  }
}
