// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx).
// Pass file or folder names to run a subset: `node scripts/run-tests.mjs test/adapters`.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function collect(p) {
  if (statSync(p).isFile()) return p.endsWith('.test.ts') ? [p] : [];
  return readdirSync(p).sort().flatMap((n) => collect(join(p, n)));
}
const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test'];
const files = roots.flatMap(collect).filter((f) => !f.includes(`${'e2e'}/`) || process.env.LORAPLUS_E2E === '1');
// Two test files run at once, one per core: the wasm backend runs one thread each unless the caller says otherwise
// (by default it would start one per core in each, oversubscribing the machine).
const env = { ...process.env, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' };
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-concurrency=2', ...files], { stdio: 'inherit', env });
process.exit(r.status ?? 1);
