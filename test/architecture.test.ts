// Imports run one way: cli → engine → models, adapters, config, protocol; models → adapters, protocol; adapters and
// config → protocol; protocol → nothing. Only src/vscode may import `vscode`, and the extension host loads only the
// engine's rooms without TensorFlow.js (runs, checks, data, hub): training, merge, compare and downloads run in the
// engine process.
// webview/ is browser code: it imports webview/, src/protocol and npm packages (bundled into media/), never node:
// modules or vscode.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';

const SRC = path.resolve(__dirname, '..', 'src');
const ALLOWED: Record<string, string[]> = {
  protocol: ['protocol'],
  adapters: ['adapters', 'protocol'],
  config: ['config', 'protocol'],
  models: ['models', 'adapters', 'protocol'],
  engine: ['engine', 'models', 'adapters', 'config', 'protocol'],
  cli: ['cli', 'engine', 'models', 'adapters', 'config', 'protocol'],
  vscode: ['vscode', 'engine', 'models', 'adapters', 'config', 'protocol'],
};

function sources(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
    );
}

/** The engine's rooms the extension host may load: none of them reaches TensorFlow.js. */
const HOST_ROOMS = ['runs', 'checks', 'data', 'hub'];
const NATIVE = /^(@tensorflow\/|webgpu$)/;

/** The value imports of a file (`import type` and `export type` are erased by the bundler and load nothing). */
function valueImports(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(
    /(?:^|\n)\s*(import|export)\s+(type\s)?[^'"]*?from\s+['"]([^'"]+)['"]|(?:^|\n)\s*import\s+['"]([^'"]+)['"]|(?:import|require)\(['"]([^'"]+)['"]\)/g,
  )) {
    if (m[2]) continue;
    out.push(m[3] ?? m[4] ?? m[5]);
  }
  return out;
}

function resolveTs(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec);
  for (const f of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(f)) return f;
  return null;
}

describe('architecture', () => {
  it('the extension host loads no TensorFlow.js: src/vscode reaches only the engine rooms in HOST_ROOMS', () => {
    const problems: string[] = [];
    const seen = new Set<string>();
    const visit = (file: string, via: string[]): void => {
      if (seen.has(file)) return;
      seen.add(file);
      const rel = path.relative(SRC, file);
      const [layer, room] = rel.split(path.sep);
      if (layer === 'engine' && !HOST_ROOMS.includes(room))
        problems.push(`${[...via, rel].join(' → ')}: engine/${room} is not a host room`);
      for (const spec of valueImports(file)) {
        if (NATIVE.test(spec)) problems.push(`${[...via, rel].join(' → ')} imports ${spec}`);
        if (!spec.startsWith('.')) continue;
        const target = resolveTs(file, spec);
        if (target) visit(target, [...via, rel]);
      }
    };
    for (const file of sources(path.join(SRC, 'vscode'))) visit(file, []);
    assert.deepEqual(problems, []);
    assert.ok(seen.has(path.join(SRC, 'engine', 'runs', 'summary.ts')), 'the walk reaches the run folders room');
  });

  it('imports between src/ layers run one way, and only src/vscode imports vscode', () => {
    const problems: string[] = [];
    for (const file of sources(SRC)) {
      const layer = path.relative(SRC, file).split(path.sep)[0];
      if (!(layer in ALLOWED)) continue; // top-level files (extension.ts) may import anything
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(['"]([^'"]+)['"]\)/g)) {
        const spec = m[1] ?? m[2];
        if (spec === 'vscode' && layer !== 'vscode') problems.push(`${path.relative(SRC, file)} imports vscode`);
        if (!spec.startsWith('.')) continue;
        const target = path.relative(SRC, path.resolve(path.dirname(file), spec)).split(path.sep)[0];
        if (!ALLOWED[layer].includes(target))
          problems.push(`${path.relative(SRC, file)} (${layer}) imports ${spec} (${target})`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('webview/ imports only webview/, src/protocol and browser packages', () => {
    const WEBVIEW = path.resolve(__dirname, '..', 'webview');
    const problems: string[] = [];
    for (const file of sources(WEBVIEW)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(
        /(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\s+['"]([^'"]+)['"]|import\(['"]([^'"]+)['"]\)/g,
      )) {
        const spec = m[1] ?? m[2] ?? m[3];
        const rel = path.relative(WEBVIEW, file);
        if (spec === 'vscode' || spec.startsWith('node:')) problems.push(`${rel} imports ${spec}`);
        if (!spec.startsWith('.')) continue;
        const target = path.resolve(path.dirname(file), spec);
        const inWebview = !path.relative(WEBVIEW, target).startsWith('..');
        const inProtocol = !path.relative(path.join(SRC, 'protocol'), target).startsWith('..');
        if (!inWebview && !inProtocol) problems.push(`${rel} imports ${spec}`);
      }
    }
    assert.deepEqual(problems, []);
  });
});
