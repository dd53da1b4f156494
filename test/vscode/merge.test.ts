// "LoRA+: Merge Adapter into Model" under a scripted `vscode` stub, running the real engine process (a
// dist/engine-child.js shim that loads src/ through tsx): the palette's pick, a Python adapter whose base is a Hub id, a
// refused merge written anyway, and the untrusted-workspace refusal.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { STORIES, tempDir } from '../helpers/shared';
import { llamaAdapter, saved } from '../engine/merge/fixtures';
import { installMergeStub, script } from './merge-stub';

installMergeStub();
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { mergeAdapter } = require('../../src/vscode/merge') as typeof import('../../src/vscode/merge');

/** An extension folder whose dist/engine-child.js runs src/cli/child.ts (the engine process) through tsx. */
function extensionWithEngine(): string {
  const dir = tempDir();
  fs.mkdirSync(path.join(dir, 'dist'));
  const tsx = require.resolve('tsx/cjs');
  const child = path.resolve(__dirname, '..', '..', 'src', 'cli', 'child.ts');
  fs.writeFileSync(
    path.join(dir, 'dist', 'engine-child.js'),
    `require(${JSON.stringify(tsx)});\nrequire(${JSON.stringify(child)});\n`,
  );
  return dir;
}

const EXT = extensionWithEngine();

function studio(runs: unknown[] = []) {
  const log: string[] = [];
  const s = {
    context: { extensionPath: EXT },
    output: { appendLine: (l: string) => void log.push(l), show() {} },
    tree: { allRuns: () => runs, refresh() {} },
  };
  return { s: s as unknown as Parameters<typeof mergeAdapter>[0], log };
}

function reset(): void {
  Object.assign(script, {
    trusted: true,
    quickPick: [],
    openDialog: [],
    inputBox: [],
    answer: [],
    shown: [],
    commands: [],
    progress: [],
  });
}

describe('Merge Adapter into Model (VS Code)', () => {
  it("from the palette: picks a run's final adapter, proposes <run>/merged, reports the check and opens the README", async () => {
    reset();
    const run = tempDir();
    fs.writeFileSync(path.join(run, 'config.yaml'), `model: ${STORIES}\ntask: causal-lm\n`);
    fs.cpSync(saved(llamaAdapter(STORIES, 31)), path.join(run, 'final'), { recursive: true });
    const { s, log } = studio([{ name: 'run-a', dir: run, finalAdapter: path.join(run, 'final'), checkpoints: [] }]);
    let proposed: string | undefined;
    script.quickPick.push((items) => {
      assert.deepEqual(
        items.map((i) => i.label),
        ['run-a', '$(folder-opened) Browse…'],
      );
      return items[0];
    });
    script.inputBox.push((value) => (proposed = value));
    script.answer.push('Open README');
    await mergeAdapter(s);
    assert.equal(proposed, path.join(run, 'merged'));
    const done = script.shown.at(-1)!;
    assert.equal(done.kind, 'info', JSON.stringify(script.shown));
    // The toast names the run and the output folder's path (its name alone, "merged", says nothing).
    const where = `merged ${path.basename(run)} into ${path.join(run, 'merged')} · `;
    assert.ok(done.text.includes(where), done.text);
    assert.match(done.text, /· max \|Δlogits\| \S+ vs base \+ adapter \(check passed\)/);
    assert.deepEqual(done.actions, ['Reveal', 'Open README']);
    assert.equal((script.commands[0][1] as { fsPath: string }).fsPath, path.join(run, 'merged', 'README.md'));
    assert.ok(script.progress.some((p) => /^check: .*passed/.test(p)));
    assert.ok(log.some((l) => l.startsWith('wrote ')));
  });

  it('Browse… to a Python adapter that names a Hub id: asks for the base folder, then merges', async () => {
    reset();
    const adapter = saved(llamaAdapter('karpathy/stories260k', 32));
    const out = path.join(tempDir(), 'merged');
    script.quickPick.push((items) => items.find((i) => i.browse));
    script.openDialog.push(adapter, STORIES);
    script.inputBox.push(() => out);
    await mergeAdapter(studio().s);
    assert.equal(script.shown.at(-1)!.kind, 'info', JSON.stringify(script.shown));
    assert.ok(fs.existsSync(path.join(out, 'model.safetensors')));
  });

  it('a refused merge (NaN) shows the reason and offers to write it anyway', async () => {
    reset();
    const bad = llamaAdapter(STORIES, 33);
    (bad.lora.get('model.layers.0.self_attn.q_proj')!.A.data as Float32Array)[0] = Infinity;
    const adapter = saved(bad);
    const out = path.join(tempDir(), 'merged');
    script.inputBox.push((_v, validate) => {
      assert.match(validate(STORIES) ?? '', /not an earlier merge/);
      return out;
    });
    script.answer.push('Write Anyway');
    await mergeAdapter(studio().s, adapter);
    assert.equal(script.shown[0].kind, 'error');
    assert.match(script.shown[0].text, /merge check failed: NaN\/Inf in model\.layers\.0\.self_attn\.q_proj/);
    assert.ok(script.shown[0].actions.includes('Write Anyway'));
    assert.equal(script.shown[1].kind, 'warning');
    assert.match(script.shown[1].text, /MERGE_CHECK_FAILED/);
    assert.ok(fs.existsSync(path.join(out, 'merge_info.json')));
  });

  it('refuses in an untrusted workspace', async () => {
    reset();
    script.trusted = false;
    await mergeAdapter(studio().s, saved(llamaAdapter(STORIES, 34)));
    assert.equal(script.shown.length, 1);
    assert.match(script.shown[0].text, /untrusted workspace/);
    assert.deepEqual(script.shown[0].actions, ['Manage Workspace Trust']);
  });
});
