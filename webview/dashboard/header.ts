// The dashboard's header: run name and status, the config in one line (model, task, r, α, λ, learning rates,
// and what it computes on: "CPU · WebAssembly SIMD, 2 threads — no GPU found" with the reasons one click away), and
// the live figures (#last-step, #run-phase "evaluating n/N", #last-loss, eval, tokens/s, elapsed, ETA). Before the
// run_start event arrives (or in a run folder without one) the config comes from the run's config.yaml via the
// summary.
import '@vscode-elements/elements/dist/vscode-badge/index.js';
import { backendSummary } from '../../src/protocol/backend';
import type { DashboardSummary } from '../../src/protocol/dashboard';
import type { RunStatus } from '../../src/protocol/events';
import { phaseText } from '../../src/protocol/progress';
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
  private readonly elapsed = h('span', { id: 'run-elapsed', class: 'figure' });
  private readonly phase = h('span', { id: 'run-phase', class: 'phase muted', attrs: { 'aria-live': 'polite' } });
  private readonly eta = h('span', { id: 'run-eta', class: 'figure' });
  private readonly etaFig: HTMLElement;
  private readonly backendDetails = h('ul', { id: 'backend-details', class: 'backend-details muted' });
  private detailsOpen = false;
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
      this.backendDetails,
      this.notes,
      h('div', { class: 'progress' }, [this.bar]),
      h('div', { class: 'figures' }, [
        fig('Step', this.step, this.total, this.phase),
        fig('Loss', this.loss),
        fig('Eval', this.evalFig),
        fig('Tokens/s', this.speed),
        fig('Tokens seen', this.tokens),
        fig('Elapsed', this.elapsed),
        (this.etaFig = fig('ETA', this.eta)),
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
    // The engine's latest warnings (e.g. a classification head created fresh); why there is no GPU is information,
    // behind the backend's "details".
    const warnings = model.logs
      .filter((l) => l.level === 'warning')
      .slice(-3)
      .map((l) => `⚠ ${l.message}`);
    setText(this.notes, warnings.join(' · '));

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
    this.drawPhase(model, status);
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
      ['backend', st ? backendSummary(st).text : (c.device ?? '–')],
    ];
    if (st) facts.push(['trainable', `${count(st.params.trainable)} of ${count(st.params.total)}`]);
    const key = JSON.stringify(facts);
    if (key === this.factsKey) return;
    this.factsKey = key;
    const details = st ? backendSummary(st).details : [];
    this.facts.replaceChildren(
      ...facts.map(([k, v]) =>
        h('span', { class: 'fact', attrs: { 'data-key': k } }, [
          h('span', { class: 'muted', text: `${k} ` }),
          h('span', { id: k === 'backend' ? 'run-backend' : undefined, text: v }),
          k === 'backend' && details.length > 0 && this.detailsButton(details),
        ]),
      ),
    );
    this.backendDetails.replaceChildren(...details.map((d) => h('li', { text: d })));
    this.backendDetails.hidden = !this.detailsOpen || !details.length;
  }

  /** "details": the reasons behind the backend (no GPU found, threads) on hover, and listed below on a click. */
  private detailsButton(details: string[]): HTMLElement {
    const b = h('button', {
      id: 'backend-details-toggle',
      class: 'link-button',
      text: 'details',
      title: details.join('\n'),
      attrs: { 'aria-expanded': String(this.detailsOpen), 'aria-controls': 'backend-details' },
    });
    b.addEventListener('click', () => {
      this.detailsOpen = !this.detailsOpen;
      b.setAttribute('aria-expanded', String(this.detailsOpen));
      this.backendDetails.hidden = !this.detailsOpen;
    });
    return b;
  }

  /** "evaluating 32/64 at step 100" while an eval runs (the baseline before step 1 too), and the ETA, evals counted. */
  private drawPhase(model: RunModel, status: RunStatus): void {
    const p = model.timing.phase;
    const live = status === 'running';
    setText(
      this.phase,
      !live
        ? ''
        : p.kind === 'evaluating'
          ? `· ${phaseText(p)} at step ${p.step}`
          : p.kind === 'starting'
            ? '· starting'
            : '',
    );
    const eta = live ? model.timing.eta() : null;
    this.etaFig.hidden = eta === null;
    setText(this.eta, eta === null ? '–' : duration(eta));
  }
}
