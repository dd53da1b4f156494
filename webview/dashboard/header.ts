// The dashboard's header: run name and status, the config in one line (model, task, r, α, λ, learning rates,
// backend and device), and the live figures (#last-step, #last-loss, eval, tokens/s, elapsed). Before the run_start
// event arrives (or in a run folder without one) the config comes from the run's config.yaml via the summary.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import type { DashboardSummary } from '../../src/protocol/dashboard';
import type { RunStatus } from '../../src/protocol/events';
import { h, setText } from '../shared/dom';
import { count, duration, fixed4, sig3 } from '../shared/format';
import type { RunModel } from './model';

export class Header {
  readonly el: HTMLElement;
  private readonly title = h('h1', { id: 'run-title' });
  private readonly status = h('span', { id: 'run-status', class: 'status' });
  private readonly facts = h('div', { id: 'run-config', class: 'facts' });
  private readonly notes = h('div', { class: 'notes muted' });
  private readonly step = h('span', { id: 'last-step', class: 'figure' });
  private readonly total = h('span', { class: 'muted' });
  private readonly loss = h('span', { id: 'last-loss', class: 'figure' });
  private readonly evalFig = h('span', { id: 'last-eval', class: 'figure' });
  private readonly speed = h('span', { class: 'figure' });
  private readonly elapsed = h('span', { class: 'figure' });
  private readonly tokens = h('span', { class: 'figure' });
  private readonly checkpoints = h('vscode-badge', { attrs: { variant: 'counter' } });
  private readonly bar = h('div', { class: 'progress-fill' });
  private readonly error = h('div', { id: 'run-error', class: 'error' });
  private factsKey = '';

  constructor(private readonly openFile: (relative: string) => void) {
    const fig = (label: string, ...value: HTMLElement[]) =>
      h('div', { class: 'fig' }, [h('span', { class: 'label muted', text: label }), ...value]);
    const link = (label: string, file: string) => {
      const a = h('a', { text: label, attrs: { href: '#', role: 'button' } });
      a.addEventListener('click', (e) => {
        e.preventDefault();
        this.openFile(file);
      });
      return a;
    };
    this.el = h('header', { class: 'run-header' }, [
      h('div', { class: 'title-row' }, [
        this.title,
        this.status,
        h('span', { class: 'links' }, [link('config.yaml', 'config.yaml'), link('metrics.jsonl', 'metrics.jsonl')]),
      ]),
      this.facts,
      this.notes,
      h('div', { class: 'progress' }, [this.bar]),
      h('div', { class: 'figures' }, [
        fig('Step', this.step, this.total),
        fig('Loss', this.loss),
        fig('Eval', this.evalFig),
        fig('Tokens/s', this.speed),
        fig('Tokens seen', this.tokens),
        fig('Elapsed', this.elapsed),
        fig('Checkpoints', this.checkpoints),
      ]),
      this.error,
    ]);
  }

  draw(model: RunModel, summary: DashboardSummary, status: RunStatus, error: string | null): void {
    setText(this.title, model.start?.run_name ?? summary.name);
    setText(this.status, status);
    this.status.className = `status status-${status}`;
    this.drawFacts(model, summary);
    // Why the backend is not the fastest one, and the engine's latest warnings (e.g. a classification head created
    // fresh).
    const warnings = model.logs
      .filter((l) => l.level === 'warning')
      .slice(-3)
      .map((l) => `⚠ ${l.message}`);
    setText(this.notes, [...(model.start?.backend_notes ?? []), ...warnings].join(' · '));

    const s = model.steps;
    const last = model.lastStep;
    const total = model.start?.total_steps ?? summary.totalSteps;
    setText(this.step, last === null ? '–' : String(last));
    setText(this.total, total ? ` / ${total}` : '');
    const loss = model.lastLoss;
    setText(this.loss, fixed4(loss));
    const json = JSON.stringify(loss);
    if (this.loss.dataset.value !== json) this.loss.dataset.value = json;
    const e = model.evals;
    const metric = model.evalMetric;
    const metricFig = () =>
      metric === 'accuracy' ? `${(e.accuracy.at(-1) * 100).toFixed(1)}%` : sig3(e.perplexity.at(-1));
    setText(
      this.evalFig,
      e.x.length ? `${fixed4(e.loss.at(-1))}${metric ? ` · ${metric} ${metricFig()}` : ''} @ ${e.x.at(-1)}` : '–',
    );
    setText(this.speed, s.x.length ? count(s.tokensPerS.at(-1)) : '–');
    setText(this.tokens, s.x.length ? count(s.tokensSeen.at(-1)) : '–');
    // One clock and the checkpoints on disk, as the run's feed says (the same figures as the explorer and the log).
    const elapsed = summary.elapsed ?? (s.x.length ? s.elapsed.at(-1) : null);
    setText(this.elapsed, elapsed !== null ? duration(elapsed) : '–');
    setText(this.checkpoints, String(summary.checkpoints));
    const done = total && last !== null ? Math.min(1, last / total) : 0;
    this.bar.style.width = `${(done * 100).toFixed(2)}%`;
    setText(this.error, error ?? model.error ?? '');
  }

  private drawFacts(model: RunModel, summary: DashboardSummary): void {
    const st = model.start;
    const c = summary.config ?? {};
    const a = st?.groups.find((g) => g.name === 'A');
    const b = st?.groups.find((g) => g.name === 'B');
    const basename = (p: string | undefined) => (p ? (p.split(/[\\/]/).filter(Boolean).at(-1) ?? p) : '–');
    const facts: [string, string][] = [
      ['model', `${basename(st?.model ?? c.model)}${st ? ` (${st.model_type})` : ''}`],
      ['task', st?.task ?? c.task ?? '–'],
      ['r', String(st?.lora.r ?? c.r ?? '–')],
      ['α', String(st?.lora.lora_alpha ?? c.lora_alpha ?? '–')],
      ['λ', String(st?.loraplus_lr_ratio ?? c.loraplus_lr_ratio ?? '–')],
      ['lr', a && b ? `A ${sig3(a.lr)} · B ${sig3(b.lr)}` : sig3(c.learning_rate)],
      [
        'backend',
        st ? `${st.backend} · ${st.device}${st.threads > 1 ? ` · ${st.threads} threads` : ''}` : (c.device ?? '–'),
      ],
    ];
    if (st) facts.push(['trainable', `${count(st.params.trainable)} of ${count(st.params.total)}`]);
    const key = JSON.stringify(facts);
    if (key === this.factsKey) return;
    this.factsKey = key;
    this.facts.replaceChildren(
      ...facts.map(([k, v]) =>
        h('span', { class: 'fact', attrs: { 'data-key': k } }, [h('span', { class: 'muted', text: `${k} ` }), v]),
      ),
    );
  }
}
