// The editor and the New Config wizard see the models of the Hugging Face cache: `model:` completes to their Hub
// ids, a config naming one gets that model's modules and hover, and the wizard offers them and writes the id.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkConfigText } from '../../../src/engine/checks/config';
import { configTemplate } from '../../../src/config/template';
import { cachedModelChoices, planConfig } from '../../../src/vscode/editor/new-config-plan';
import { hoverAt, suggestionsAt } from '../../../src/vscode/editor/suggest';
import { cacheRepo, filesOf } from '../../helpers/hub-cache';
import { SHARED, SST2, STORIES, tempDir } from '../../helpers/shared';

describe('the Hugging Face cache in the editor', () => {
  const saved = process.env.HF_HUB_CACHE;
  before(() => {
    const cache = tempDir();
    process.env.HF_HUB_CACHE = cache;
    cacheRepo(cache, 'karpathy/stories260k', 'b'.repeat(40), filesOf(STORIES));
    cacheRepo(cache, 'someone/tiny-bert', 'c'.repeat(40), filesOf(path.join(SHARED, 'models', 'tiny-random-bert')));
  });
  after(() => (saved === undefined ? delete process.env.HF_HUB_CACHE : (process.env.HF_HUB_CACHE = saved)));

  it('model: completes to the cached Hub ids with their model type', () => {
    const text = 'model: kar';
    const items = suggestionsAt(text, text.length, tempDir());
    const hub = items.find((s) => s.label === 'karpathy/stories260k');
    assert.ok(hub, JSON.stringify(items.map((s) => s.label)));
    assert.equal(hub.detail, 'llama · Hugging Face cache');
    assert.equal(hub.insertText, 'karpathy/stories260k');
    assert.ok(!items.some((s) => s.label === 'someone/tiny-bert'), 'only what matches the typed text');
  });

  it('a config naming a cached model gets its module names and its hover', () => {
    const text = `model: karpathy/stories260k\nlora:\n  target_modules: [|]\n`;
    const at = text.indexOf('|');
    const items = suggestionsAt(text.replace('|', ''), at, tempDir());
    assert.ok(
      items.some((s) => s.label === 'q_proj'),
      JSON.stringify(items.map((s) => s.label)),
    );
    const hover = hoverAt(text.replace('|', ''), 2, tempDir());
    assert.match(hover?.markdown ?? '', /llama/);
  });

  it('the New Config wizard offers cached models and writes their Hub id; the config validates', () => {
    const choices = cachedModelChoices();
    assert.deepEqual(
      choices.map((c) => c.name),
      ['karpathy/stories260k', 'someone/tiny-bert'],
    );
    const dir = tempDir();
    const plan = planConfig(dir, choices[0], 'causal-lm', {
      train: path.join(SST2, 'dev.tsv'),
      eval: null,
      evalFraction: 0.1,
      textField: 'sentence',
    });
    const text = configTemplate(plan);
    assert.match(text, /^model: karpathy\/stories260k +#/m);
    const errors = checkConfigText(text, dir).problems.filter((p) => p.severity === 'error');
    assert.deepEqual(errors, []);
  });
});
