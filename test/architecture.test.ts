// Imports run one way: engine → models, adapters, config, protocol; models → adapters, protocol; adapters and
// config → protocol; protocol → nothing. Only src/vscode may import `vscode`. webview/ is browser code: it imports
// webview/, src/protocol and npm packages (bundled into media/), never node: modules or vscode.
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
  vscode: ['vscode', 'engine', 'models', 'adapters', 'config', 'protocol'],
};

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : []));
}

describe('architecture', () => {
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
        if (!ALLOWED[layer].includes(target)) problems.push(`${path.relative(SRC, file)} (${layer}) imports ${spec} (${target})`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it('webview/ imports only webview/, src/protocol and browser packages', () => {
    const WEBVIEW = path.resolve(__dirname, '..', 'webview');
    const problems: string[] = [];
    for (const file of sources(WEBVIEW)) {
      const text = fs.readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\s+['"]([^'"]+)['"]|import\(['"]([^'"]+)['"]\)/g)) {
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
