// package.json's `contributes` against the code it names: the command table, the run explorer's ids and
// contextValues, the handlers commands.ts registers. A mismatch here is a menu entry that does nothing, a command
// missing from the palette, or a view that never fills, none of which the compiler sees.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { CATEGORY, COMMAND_TITLES, CONTEXT, RUNS_VIEW, VIEW_CONTAINER } from '../../src/vscode/command-table';

const ROOT = path.resolve(__dirname, '..', '..');
const SRC = path.join(ROOT, 'src', 'vscode');

interface MenuEntry {
  command: string;
  when?: string;
  group?: string;
}
interface Manifest {
  main: string;
  activationEvents: string[];
  capabilities: { untrustedWorkspaces: { supported: boolean | 'limited'; description?: string } };
  contributes: {
    commands: { command: string; title: string; category?: string; icon?: string }[];
    viewsContainers: { activitybar: { id: string; title: string; icon: string }[] };
    views: Record<string, { id: string; name: string }[]>;
    viewsWelcome: { view: string; contents: string }[];
    menus: Record<string, MenuEntry[]>;
    configuration: { properties: Record<string, { default?: unknown }> };
  };
}

const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Manifest;
const ids = Object.keys(COMMAND_TITLES);
const contexts: string[] = Object.values(CONTEXT);
const menuEntries = Object.entries(pkg.contributes.menus).flatMap(([menu, entries]) =>
  entries.map((e) => ({ menu, ...e })),
);

/** The `viewItem` tests of a when clause: `viewItem == x` (exact) and `viewItem =~ /re/` (regex). */
function viewItemTests(when: string): { op: '==' | '=~'; value: string }[] {
  return [...when.matchAll(/viewItem\s*(==|=~)\s*(\/(?:\\.|[^/])+\/|[\w.-]+)/g)].map((m) => ({
    op: m[1] as '==' | '=~',
    value: m[2],
  }));
}

function matches(test: { op: '==' | '=~'; value: string }, context: string): boolean {
  return test.op === '==' ? test.value === context : new RegExp(test.value.slice(1, -1)).test(context);
}

describe('package.json contributes', () => {
  it('lists exactly the command table: ids, titles, category "LoRA+"', () => {
    const listed = pkg.contributes.commands;
    assert.deepEqual(listed.map((c) => c.command).sort(), [...ids].sort());
    for (const c of listed) {
      assert.equal(c.title, COMMAND_TITLES[c.command as keyof typeof COMMAND_TITLES], c.command);
      assert.equal(c.category, CATEGORY, c.command);
      assert.ok(!c.icon || /^\$\([a-z-]+\)$/.test(c.icon), `${c.command}: icon ${c.icon} is not a $(codicon)`);
    }
  });

  it('has the palette titles the e2e tests type (ui-contract)', () => {
    const palette = new Set(pkg.contributes.commands.map((c) => `${c.category}: ${c.title}`));
    for (const title of [
      'New Training Config',
      'Start Training',
      'Stop Training',
      'Resume Training',
      'Open Log',
      'Open Dashboard',
      'Merge Adapter into Model',
      'Compare Checkpoints',
    ]) {
      assert.ok(palette.has(`LoRA+: ${title}`), title);
    }
  });

  it('every command a menu, a welcome view or the code names exists', () => {
    for (const e of menuEntries) assert.ok(ids.includes(e.command), `${e.menu}: ${e.command}`);
    const links = pkg.contributes.viewsWelcome.flatMap((w) =>
      [...w.contents.matchAll(/\(command:([\w.]+)/g)].map((m) => m[1]),
    );
    assert.ok(links.length > 0);
    for (const id of links) assert.ok(ids.includes(id), `viewsWelcome: ${id}`);
    // Commands the extension's own code runs or attaches to items (executeCommand, TreeItem.command, status bar).
    for (const file of fs.readdirSync(SRC).filter((f) => f.endsWith('.ts'))) {
      const text = fs.readFileSync(path.join(SRC, file), 'utf8');
      for (const m of text.matchAll(/(?:executeCommand\(|command:\s*)'(loraplus\.[\w.]+)'/g))
        assert.ok(ids.includes(m[1]), `${file}: ${m[1]}`);
    }
  });

  it("menus match on the tree's contextValues, and each kind of tree item has actions", () => {
    const tests = menuEntries.flatMap((e) =>
      e.when ? viewItemTests(e.when).map((t) => ({ ...t, command: e.command })) : [],
    );
    assert.ok(tests.length > 0);
    for (const t of tests)
      assert.ok(
        contexts.some((c) => matches(t, c)),
        `${t.command}: viewItem ${t.op} ${t.value} matches no CONTEXT value`,
      );
    for (const c of contexts)
      assert.ok(
        tests.some((t) => matches(t, c)),
        `no menu entry for ${c}`,
      );
    const actionsOf = (c: string) => new Set(tests.filter((t) => matches(t, c)).map((t) => t.command));
    assert.ok(
      actionsOf(CONTEXT.runRunning).has('loraplus.stopTraining') &&
        !actionsOf(CONTEXT.runRunning).has('loraplus.deleteRun'),
    );
    assert.ok(
      actionsOf(CONTEXT.runIdle).has('loraplus.resumeTraining') && actionsOf(CONTEXT.runIdle).has('loraplus.deleteRun'),
    );
    assert.ok(
      !actionsOf(CONTEXT.runFinished).has('loraplus.resumeTraining') &&
        actionsOf(CONTEXT.runFinished).has('loraplus.deleteRun'),
    );
    assert.ok(
      actionsOf(CONTEXT.checkpoint).has('loraplus.mergeAdapter') &&
        actionsOf(CONTEXT.adapter).has('loraplus.mergeAdapter'),
    );
  });

  it('the run explorer: container "LoRA+" with its icon, view "Runs", a welcome with New Training Config', () => {
    const container = pkg.contributes.viewsContainers.activitybar.find((c) => c.id === VIEW_CONTAINER);
    assert.ok(container);
    assert.equal(container.title, 'LoRA+');
    assert.ok(fs.existsSync(path.join(ROOT, container.icon)), container.icon);
    assert.deepEqual(
      pkg.contributes.views[VIEW_CONTAINER].map((v) => [v.id, v.name]),
      [[RUNS_VIEW, 'Runs']],
    );
    const welcome = pkg.contributes.viewsWelcome.find((w) => w.view === RUNS_VIEW);
    assert.ok(welcome?.contents.includes('[New Training Config](command:loraplus.newConfig)'));
    for (const e of menuEntries) {
      for (const m of (e.when ?? '').matchAll(/\bview\s*==\s*([\w.]+)/g))
        assert.equal(m[1], RUNS_VIEW, `${e.menu}: ${e.command}`);
    }
    assert.equal(
      typeof pkg.contributes.configuration.properties['loraplus.runs.exclude']?.default,
      'string',
      'the tree reads loraplus.runs.exclude',
    );
  });

  it('main is the bundle, the workspace trust is limited, runs activate the extension', () => {
    assert.equal(path.normalize(pkg.main), path.normalize('dist/extension.js'));
    assert.equal(pkg.capabilities.untrustedWorkspaces.supported, 'limited');
    assert.ok(pkg.capabilities.untrustedWorkspaces.description);
    assert.ok(pkg.activationEvents.includes('workspaceContains:**/metrics.jsonl'));
  });
});

describe('the extension source', () => {
  it('commands.ts gives every command of the table a handler and registers the whole table', () => {
    const text = fs.readFileSync(path.join(SRC, 'commands.ts'), 'utf8');
    const table = /export const HANDLERS[^=]*=\s*\{([\s\S]*?)\n\};/.exec(text);
    assert.ok(table, 'HANDLERS table not found');
    const keys = [...table[1].matchAll(/^\s{2}'(loraplus\.[\w.]+)':/gm)].map((m) => m[1]);
    assert.deepEqual([...keys].sort(), [...ids].sort());
    assert.match(text, /Object\.entries\(HANDLERS\)[\s\S]*registerCommand\(/);
  });

  it('activate() only wires services: extension.ts stays short', () => {
    const lines = fs.readFileSync(path.join(SRC, 'extension.ts'), 'utf8').trimEnd().split('\n');
    assert.ok(lines.length <= 40, `extension.ts has ${lines.length} lines`);
  });
});
