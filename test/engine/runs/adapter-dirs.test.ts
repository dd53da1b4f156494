// What a merge starts from, as the explorer's "Merge Adapter" and the CLI find it: run → final/ or the newest
// checkpoint, the base model the adapter names, and the default output folder.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { defaultMergeOut, locateBase, resolveAdapterDir } from '../../../src/engine/runs/adapter-dirs';
import { STORIES, tempDir } from '../../helpers/shared';
import { llamaAdapter, saved } from '../merge/fixtures';

function run(withFinal: boolean, steps: number[], model = STORIES): string {
  const dir = tempDir();
  fs.writeFileSync(path.join(dir, 'config.yaml'), `model: ${model}\ntask: causal-lm\n`);
  const adapter = saved(llamaAdapter('', 1));
  if (withFinal) fs.cpSync(adapter, path.join(dir, 'final'), { recursive: true });
  for (const s of steps) {
    const ck = path.join(dir, 'checkpoints', `step-${s}`);
    fs.cpSync(adapter, ck, { recursive: true });
    fs.writeFileSync(path.join(ck, 'trainer_state.json'), '{}');
  }
  return dir;
}

describe('merge targets', () => {
  it('a run folder means its final adapter, else its newest complete checkpoint; adapters and checkpoints as given', () => {
    const finished = run(true, [5, 10]);
    assert.equal(resolveAdapterDir(finished), path.join(finished, 'final'));
    const stopped = run(false, [5, 20, 10]);
    assert.equal(resolveAdapterDir(stopped), path.join(stopped, 'checkpoints', 'step-20'));
    assert.equal(
      resolveAdapterDir(path.join(stopped, 'checkpoints', 'step-5')),
      path.join(stopped, 'checkpoints', 'step-5'),
    );
    assert.throws(() => resolveAdapterDir(path.join(STORIES, 'model.safetensors')), /bare safetensors file/);
  });

  it('the output defaults to <run>/merged, or beside a loose adapter folder', () => {
    const r = run(false, [3]);
    assert.equal(defaultMergeOut(path.join(r, 'checkpoints', 'step-3')), path.join(r, 'merged'));
    assert.equal(defaultMergeOut(r), path.join(r, 'merged'));
    const loose = saved(llamaAdapter(STORIES, 2));
    assert.equal(defaultMergeOut(loose), `${loose}-merged`);
  });

  it("the base model: the adapter's base_model_name_or_path, else the run's model; a Hub id is found nowhere", () => {
    assert.deepEqual(locateBase(saved(llamaAdapter(STORIES, 3))), { named: STORIES, dir: STORIES });
    const r = run(true, []); // its adapter names no base
    assert.deepEqual(locateBase(path.join(r, 'final')), { named: STORIES, dir: STORIES });
    assert.deepEqual(locateBase(saved(llamaAdapter('karpathy/stories260k', 4))), {
      named: 'karpathy/stories260k',
      dir: null,
    });
  });
});
