// The pure logic behind how the webviews look (DOM-free): the theme's kind from VS Code's body classes (Light High
// Contrast is light), a series palette whose lines differ and show on the background, the A/B heatmap's robust
// colour scale and colour-bar ticks, chart ticks (whole steps, one number format per axis), the step domain shared
// by a page's charts, and Compare's smoothing.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { withSmoothing } from '../../webview/compare/smoothing';
import { heatPosition, heatScale, heatValueAt, logTicks, quantile } from '../../webview/dashboard/heat-scale';
import { contrast, deltaE, distinctPalette, parseColor } from '../../webview/shared/color';
import { stepDomain, StepSync } from '../../webview/shared/step-sync';
import { isDarkKind, themeKind } from '../../webview/shared/theme-kind';
import { formatTicks, INT_INCRS, logSplits, paddedRange } from '../../webview/shared/ticks';

describe('theme kind', () => {
  it('reads the four kinds VS Code sets on <body>, Light High Contrast as light', () => {
    assert.equal(themeKind(['vscode-light']), 'light');
    assert.equal(themeKind(['vscode-dark']), 'dark');
    assert.equal(themeKind(['vscode-high-contrast']), 'hc-dark');
    assert.equal(themeKind(['vscode-high-contrast', 'vscode-high-contrast-light']), 'hc-light');
    assert.equal(themeKind([], 'vscode-high-contrast-light'), 'hc-light');
    assert.equal(themeKind(['vscode-context-menu-visible']), 'dark', 'no kind yet: dark, as VS Code starts');
    assert.deepEqual((['light', 'dark', 'hc-light', 'hc-dark'] as const).map(isDarkKind), [false, true, false, true]);
  });
});

describe('colours', () => {
  it('parses what CSS variables hold, and measures contrast and difference', () => {
    assert.deepEqual(parseColor('#0f4a85'), [15, 74, 133]);
    assert.deepEqual(parseColor('#fff'), [255, 255, 255]);
    assert.deepEqual(parseColor('#0f4a85cc'), [15, 74, 133]);
    assert.deepEqual(parseColor('rgba(1, 2, 3, 0.5)'), [1, 2, 3]);
    assert.equal(parseColor('var(--x)'), null);
    assert.equal(Math.round(contrast([0, 0, 0], [255, 255, 255])), 21);
    assert.ok(deltaE([15, 74, 133], [15, 74, 134]) < 1);
  });

  it('replaces series colours that look alike or vanish into the background', () => {
    const fallback = ['#0066b8', '#c45500', '#2e7d32'];
    // Light High Contrast: VS Code's blue and orange are both navy.
    const hc = distinctPalette(['#0f4a85', '#0f4a86', '#374e06'], fallback, '#ffffff');
    assert.equal(hc[0], '#0f4a85', 'a good colour is kept');
    assert.notEqual(hc[1], '#0f4a86');
    for (let i = 0; i < hc.length; i++)
      for (let j = i + 1; j < hc.length; j++)
        assert.ok(deltaE(parseColor(hc[i])!, parseColor(hc[j])!) >= 20, `${hc[i]} vs ${hc[j]}`);
    // Yellow on white is too faint for a line.
    const light = distinctPalette(['#0066b8', '#ffe000'], ['#c45500'], '#ffffff');
    assert.deepEqual(light, ['#0066b8', '#c45500']);
    assert.deepEqual(distinctPalette(['#3794ff', '#d18616'], fallback, '#1f1f1f'), ['#3794ff', '#d18616']);
  });
});

describe('heatmap scale', () => {
  // A run's output ratio: 3 steps of 10⁴ (B has moved, A barely), then a hundred steps between 2 and 30.
  const cells = Float32Array.from([
    4,
    4,
    4,
    ...Array.from({ length: 100 }, (_, i) => Math.log10(2 + (28 * i) / 99)),
    NaN,
  ]);

  it('lets outliers clip instead of setting the range, and centres a ratio on its balanced value', () => {
    const s = heatScale(cells, 0);
    assert.equal(s.mid, 0);
    assert.ok(s.hi < 1.6 && s.hi > 1.3, `hi ${s.hi}: the 95th percentile, not the 10⁴ outliers`);
    assert.ok(s.clippedHigh && !s.clippedLow);
    assert.ok(s.lo <= -Math.log10(2) + 1e-12, 'the blue half spans at least a factor 2');
    // The later steps spread over the orange half instead of sharing one colour.
    const [a, b] = [heatPosition(Math.log10(3), s), heatPosition(Math.log10(25), s)];
    assert.ok(b - a > 0.3, `positions ${a} … ${b}`);
    assert.equal(heatPosition(4, s), 1, 'an outlier takes the end colour');
    assert.equal(heatPosition(0, s), 0.5, 'balanced is the neutral colour');
    assert.ok(Number.isNaN(heatPosition(NaN, s)), 'no data stays no data');
    for (const f of [0, 0.2, 0.5, 0.8, 1]) assert.ok(Math.abs(heatPosition(heatValueAt(f, s), s) - f) < 1e-9);
  });

  it('centres ‖ΔB‖/‖ΔA‖ on λ, and gives a norm its own sequential span', () => {
    const s = heatScale(Float32Array.from([0.5, 1, 1.2, 1.5]), Math.log10(16));
    assert.equal(s.mid, Math.log10(16));
    const n = heatScale(Float32Array.from({ length: 40 }, (_, i) => -3 + i / 40));
    assert.equal(n.mid, null);
    assert.ok(n.lo > -3 && n.hi < -2);
    const flat = heatScale(Float32Array.from([1, 1, 1]));
    assert.ok(flat.hi - flat.lo >= 0.1 - 1e-12, 'a flat map still has a scale');
    assert.deepEqual(heatScale(new Float32Array(0), 0), {
      lo: -1,
      mid: 0,
      hi: 1,
      clippedLow: false,
      clippedHigh: false,
    });
    assert.equal(quantile([1, 2, 3, 4, 5], 0.5), 3);
  });

  it('ticks the colour bar at powers of ten, with 2 and 5 between when few fit, the balanced value always', () => {
    assert.deepEqual(logTicks(-3, 2), [-3, -2, -1, 0, 1, 2]);
    const narrow = logTicks(-Math.log10(2), Math.log10(4), [0]);
    assert.deepEqual(
      narrow.map((t) => Number((10 ** t).toPrecision(3))),
      [0.5, 1, 2],
    );
    assert.ok(logTicks(-6, 6, [Math.log10(16)]).includes(Math.log10(16)), 'λ stays among thinned ticks');
    assert.ok(logTicks(-6, 6).length <= 7);
  });
});

describe('chart axes', () => {
  it('ticks steps at whole numbers only', () => {
    assert.ok(INT_INCRS.every((i) => Number.isInteger(i) && i >= 1));
    assert.deepEqual(INT_INCRS.slice(0, 6), [1, 2, 5, 10, 20, 50]);
  });

  it('writes one axis one way: all plain or all in exponent form, shared decimals on a linear axis', () => {
    assert.deepEqual(formatTicks([0, 0.5, 1, 1.5]), ['0.0', '0.5', '1.0', '1.5']);
    assert.deepEqual(formatTicks([1e-4, 1e-3, 1e-2], true), ['1e-4', '1e-3', '1e-2']);
    assert.deepEqual(formatTicks([0.001, 0.01, 0.1, 1], true), ['0.001', '0.01', '0.1', '1']);
    assert.deepEqual(formatTicks([2e-5, 5e-5, 1e-4], true), ['2e-5', '5e-5', '1e-4']);
    assert.deepEqual(formatTicks([50000, 100000, 150000]), ['5e4', '1e5', '1.5e5']);
    assert.deepEqual(formatTicks([null, 10, 20]), ['', '10', '20']);
    for (const axis of [
      [1e-4, 1e-3, 1e-2, 1e-1],
      [30, 50, 100],
      [0.25, 0.5, 0.75],
    ]) {
      const labels = formatTicks(axis, true);
      const forms = new Set(labels.map((l) => (l.includes('e') ? 'exp' : 'plain')));
      assert.equal(forms.size, 1, `${labels}`);
    }
  });

  it('ticks a log axis at 1-2-5, and a narrow one (perplexity 28…104) still gets three labels', () => {
    assert.deepEqual(logSplits(1e-4, 1e-1), [1e-4, 1e-3, 1e-2, 1e-1]);
    assert.deepEqual(logSplits(28, 104), [30, 50, 100]);
    assert.ok(logSplits(1.1, 1.9).length >= 1);
    assert.deepEqual(paddedRange([1, null, 3, NaN]), [0.9, 3.1]);
    assert.equal(paddedRange([null]), null);
  });

  it('shares one step domain, zoom and cursor between the charts of a page', () => {
    assert.deepEqual(stepDomain(Float64Array.from([1, 2, 60]), Float64Array.from([0, 20, 40])), [0, 60]);
    assert.deepEqual(stepDomain(Float64Array.from([5])), [4, 6]);
    assert.equal(stepDomain(new Float64Array(0)), null);
    const sync = new StepSync();
    const [a, b] = [{}, {}];
    const seen: [unknown, number | null][] = [];
    sync.onCursor((step, from) => from !== b && seen.push(['b', step]));
    sync.onCursor((step, from) => from !== a && seen.push(['a', step]));
    sync.setCursor(12, a);
    sync.setCursor(12, a); // no news
    sync.setCursor(null, b);
    assert.deepEqual(seen, [
      ['b', 12],
      ['a', null],
    ]);
    let zooms = 0;
    sync.onZoom(() => zooms++);
    sync.setZoom([10, 20]);
    assert.deepEqual([sync.zoom, zooms], [[10, 20], 1]);
  });
});

describe('compare smoothing', () => {
  it('draws each raw curve beside its EMA, over its own points only', () => {
    const c = {
      x: Float64Array.from([1, 2, 3, 4]),
      n: 4,
      ys: [Float64Array.from([1, NaN, 3, 5]), Float64Array.from([2, 2, 2, 2])],
    };
    const s = withSmoothing(c, 0.5);
    assert.equal(s.ys.length, 4);
    assert.equal(s.ys[0], c.ys[0], 'the raw curve stays');
    assert.ok(Number.isNaN(s.ys[1][1]), 'a gap stays a gap');
    assert.ok(s.ys[1][3] > 3 && s.ys[1][3] < 5, `smoothed ${s.ys[1][3]}`);
    assert.deepEqual(Array.from(s.ys[3]), [2, 2, 2, 2], 'a flat curve stays flat (debiased)');
    assert.equal(withSmoothing(c, 0), c, 'no smoothing: the raw curves alone');
  });
});
