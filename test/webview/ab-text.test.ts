// The A/B view's explanation reads true at every λ: it never says B trains faster when it does not (λ = 1, or an
// optimizer without λ), and the balance it describes is the one the run asks for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { abExplanation } from '../../webview/dashboard/ab-text';

describe('A/B explanation', () => {
  it('λ = 16: B trains λ times faster, and ‖ΔB‖/‖ΔA‖ settles near λ', () => {
    const [rates, balance, stalls] = abExplanation(16, 'adamw', 100);
    assert.match(rates, /LoRA\+ trains B at λ = 16 times A's learning rate/);
    assert.match(balance, /settles near λ \(16\)/);
    assert.match(stalls, /100× smaller than λ asks for/);
  });

  it('λ = 1: one rate for both (plain LoRA), with no sentence claiming otherwise', () => {
    const text = abExplanation(1, 'adamw', 100).join(' ');
    assert.match(text, /λ = 1, plain LoRA: A and B share one learning rate/);
    assert.doesNotMatch(text, /trains B at λ = 1 times/);
    assert.doesNotMatch(text, /λ asks for/);
    assert.match(text, /settles near 1 \(λ = 1\)/);
  });

  it('riemannian and lorafa have no λ; runs older than the optimizer key are adamw', () => {
    const text = abExplanation(1, 'riemannian', 100).join(' ');
    assert.match(text, /trains with riemannian, which has no λ/);
    assert.doesNotMatch(text, /LoRA\+ trains B at λ =/);
    assert.match(abExplanation(4, undefined, 100)[0], /λ = 4 times/);
  });
});
