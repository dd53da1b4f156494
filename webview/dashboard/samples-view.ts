// The Samples view (sft with eval.generate): what the model answers to the first eval prompts, at each eval step. A
// step slider over the evals (the latest by default, followed while the run goes on), and a table of the prompt
// (shortened; the row expands to the whole), the data's answer and the model's, with matches marked when the
// answers are short labels. Native controls only (a range input, <details>), so the keyboard works as everywhere
// and the colours are the theme's CSS variables; text goes in as text, never markup.
import { sameAnswer, type Sample, type SamplesEvent } from '../../src/protocol/events';
import { h, setText } from '../shared/dom';
import type { RunModel } from './model';

const PROMPT_CHARS = 100;

export class SamplesView {
  readonly el: HTMLElement;
  private readonly slider = h('input', {
    id: 'samples-step',
    attrs: { type: 'range', min: '0', max: '0', step: '1', value: '0', 'aria-label': 'Eval step of the answers' },
  });
  private readonly stepLabel = h('span', { id: 'samples-step-label', class: 'figure' });
  private readonly score = h('span', { id: 'samples-score', class: 'muted', attrs: { 'aria-live': 'polite' } });
  private readonly answerHead = h('th', { attrs: { scope: 'col' } });
  private readonly markHead = h('th', { class: 'mark', text: 'Match', attrs: { scope: 'col' } });
  private readonly rows = h('tbody');
  private readonly table: HTMLTableElement;
  private list: SamplesEvent[] = [];
  private picked: number | null = null; // the step picked on the slider; null follows the latest
  private key = '';

  constructor() {
    this.slider.addEventListener('input', () => {
      const i = Number(this.slider.value);
      this.picked = i >= this.list.length - 1 ? null : (this.list[i]?.step ?? null);
      this.render();
    });
    this.table = h('table', { id: 'samples-table', class: 'samples-table' }, [
      h('colgroup', {}, [
        h('col', { class: 'col-num' }),
        h('col', { class: 'col-prompt' }),
        h('col', { class: 'col-reference' }),
        h('col', { class: 'col-output' }),
        h('col', { class: 'col-mark' }),
      ]),
      h('thead', {}, [
        h('tr', {}, [
          h('th', { class: 'num', text: '#', attrs: { scope: 'col' } }),
          h('th', { text: 'Prompt', attrs: { scope: 'col' } }),
          h('th', { text: 'Reference', attrs: { scope: 'col' } }),
          this.answerHead,
          this.markHead,
        ]),
      ]),
      this.rows,
    ]);
    this.el = h('section', { id: 'samples-view', class: 'samples-view card' }, [
      h('div', { class: 'card-head' }, [
        h('h2', { text: 'Samples: the model’s answers to eval prompts' }),
        h('div', { class: 'controls' }, [
          h('label', { class: 'slider' }, ['Step ', this.slider, this.stepLabel]),
          this.score,
        ]),
      ]),
      this.table,
    ]);
    this.el.hidden = true; // until the run has samples
  }

  draw(model: RunModel): void {
    this.list = model.samples;
    this.el.hidden = !this.list.length;
    if (this.list.length) this.render();
  }

  /** The picked step's answers (the latest when none is picked or the picked one is gone). */
  private render(): void {
    const list = this.list;
    let i = this.picked === null ? -1 : list.findIndex((e) => e.step === this.picked);
    if (i < 0) [i, this.picked] = [list.length - 1, null];
    const e = list[i];
    this.slider.max = String(list.length - 1);
    this.slider.value = String(i);
    this.slider.disabled = list.length < 2;
    this.slider.setAttribute('aria-valuetext', `step ${e.step}`);
    setText(this.stepLabel, `${e.step}`);
    const n = e.samples.length;
    const marked = e.exact_match !== undefined;
    const hits = e.samples.filter((s) => sameAnswer(s.output, s.reference)).length;
    setText(
      this.score,
      marked
        ? `exact match ${Math.round(100 * e.exact_match!)}% (${hits} of ${n}) · ${list.length} evals`
        : `${n} prompt${n === 1 ? '' : 's'} · ${list.length} evals`,
    );
    const key = `${e.step}|${list.length}|${n}|${marked}`;
    if (key === this.key) return;
    this.key = key;
    setText(this.answerHead, `Answer at step ${e.step}`);
    this.markHead.hidden = !marked;
    this.table.classList.toggle('no-marks', !marked);
    // A prompt opened at one step stays open at the others: reading one row across steps is the point.
    const open = [...this.rows.querySelectorAll('details')].map((d) => d.open);
    this.rows.replaceChildren(...e.samples.map((s, j) => row(s, j, marked, open[j] ?? false)));
  }
}

function row(s: Sample, j: number, marked: boolean, open: boolean): HTMLTableRowElement {
  const hit = sameAnswer(s.output, s.reference);
  const prompt = h('details', {}, [
    h('summary', { text: shortPrompt(s.prompt), title: 'Show the whole prompt' }),
    h('pre', { class: 'prompt-full', text: s.prompt }),
  ]);
  prompt.open = open;
  const output = s.output.trim() ? h('td', { class: 'output', text: s.output }) : emptyCell();
  const mark = h('td', { class: 'mark' }, [
    h('span', { text: hit ? '✓' : '✗', attrs: { role: 'img', 'aria-label': hit ? 'matches' : 'does not match' } }),
  ]);
  mark.hidden = !marked;
  return h('tr', { class: `sample-row${marked ? (hit ? ' match' : ' miss') : ''}` }, [
    h('td', { class: 'num muted', text: String(j + 1) }),
    h('td', { class: 'prompt' }, [prompt]),
    h('td', { class: 'reference', text: s.reference }),
    output,
    mark,
  ]);
}

function emptyCell(): HTMLTableCellElement {
  return h('td', { class: 'output muted', text: '(no answer)' });
}

/** The end of the prompt on one line: what comes right before the answer says most about it. */
export function shortPrompt(prompt: string, chars = PROMPT_CHARS): string {
  const flat = prompt.replace(/\s+/g, ' ').trim();
  return flat.length <= chars ? flat : `…${flat.slice(flat.length - chars + 1)}`;
}
