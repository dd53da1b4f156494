// `model:` as a Hub id: a model someone used from Python (it is in the Hugging Face cache) trains here at once, with
// no network. validate and train resolve it to the cached snapshot; a model that is not cached is one problem at
// `model` that says how to get it; the adapter names its base by the Hub id, so Python and our merge find it.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { checkConfigFile, requireCheckedConfig } from '../../../src/engine/checks/config';
import { locateBase } from '../../../src/engine/runs/adapter-dirs';
import { train } from '../../../src/engine/train/train';
import { runCli } from '../../helpers/cli';
import { cacheRepo, filesOf } from '../../helpers/hub-cache';
import { SST2, STORIES, tempDir, useBackend } from '../../helpers/shared';

const COMMIT = 'a'.repeat(40);

describe('model: a Hub id from the Hugging Face cache', () => {
  const saved = process.env.HF_HUB_CACHE;
  let snapshot = '';
  before(async () => {
    await useBackend();
    const cache = tempDir();
    process.env.HF_HUB_CACHE = cache;
    snapshot = cacheRepo(cache, 'karpathy/stories260k', COMMIT, filesOf(STORIES)).snapshot;
  });
  after(() => (saved === undefined ? delete process.env.HF_HUB_CACHE : (process.env.HF_HUB_CACHE = saved)));

  function writeConfig(model: string, extra: Record<string, unknown> = {}): string {
    const dir = tempDir();
    const file = path.join(dir, 'hub.lora.yaml');
    fs.writeFileSync(
      file,
      stringify({
        model,
        device: 'wasm',
        output_dir: 'runs',
        data: { train: path.join(SST2, 'dev.tsv'), text_field: 'sentence', max_length: 16, max_train_samples: 16 },
        training: { batch_size: 4, max_steps: 2, learning_rate: 1e-3 },
        ...extra,
      }),
    );
    return file;
  }

  it('validates and trains; the adapter names its base by the Hub id, which merge finds in the cache', async () => {
    const file = writeConfig('karpathy/stories260k');
    const { problems } = checkConfigFile(file);
    assert.deepEqual(
      problems.filter((p) => p.severity === 'error'),
      [],
    );
    const config = requireCheckedConfig(file);
    assert.equal(config.model, snapshot);
    const r = await train(config, () => {});
    const adapterConfig = JSON.parse(fs.readFileSync(path.join(r.finalAdapter!, 'adapter_config.json'), 'utf8'));
    assert.equal(adapterConfig.base_model_name_or_path, 'karpathy/stories260k');
    assert.deepEqual(locateBase(r.finalAdapter!), { named: 'karpathy/stories260k', dir: snapshot });
  });

  it('a revision pins the snapshot; a model or revision not in the cache is one problem at model, saying how to get it', () => {
    assert.equal(requireCheckedConfig(writeConfig(`karpathy/stories260k@${COMMIT}`)).model, snapshot);
    for (const [model, code] of [
      ['karpathy/not-there', 'hub/not-cached'],
      ['karpathy/stories260k@v2', 'hub/revision-not-cached'],
    ]) {
      const { problems } = checkConfigFile(writeConfig(model));
      const errors = problems.filter((p) => p.severity === 'error');
      assert.equal(errors.length, 1, JSON.stringify(errors));
      assert.equal(errors[0].code, code);
      assert.deepEqual(errors[0].path, ['model']);
      assert.match(
        errors[0].hint ?? '',
        /loraplus download karpathy\/stories260k|loraplus download karpathy\/not-there/,
      );
    }
  });

  it('loraplus info takes a Hub id', async () => {
    const r = await runCli(['info', 'karpathy/stories260k']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /llama/);
  });
});
