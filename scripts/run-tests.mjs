// Runs every test/**/*.test.ts with node's test runner (TypeScript through tsx).
// Pass file or folder names to run a subset: `node scripts/run-tests.mjs test/adapters`.
// The end-to-end tests (test/e2e: the packaged extension in code-server + Chromium) run after the others, one file at
// a time, only with LORAPLUS_E2E=1 (CI sets it; `bash test/e2e/setup.sh` installs code-server first): they take a
// few minutes and start a VS Code server and a browser, which would slow everyone's `npm test` on a shared machine.
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

function collect(p) {
  if (statSync(p).isFile()) return p.endsWith('.test.ts') ? [p] : [];
  return readdirSync(p)
    .sort()
    .flatMap((n) => collect(join(p, n)));
}
const roots = process.argv.slice(2).length ? process.argv.slice(2) : ['test'];
const files = roots.flatMap(collect);
const isE2e = (f) => f.split(/[\\/]/).includes('e2e');
const unit = files.filter((f) => !isE2e(f));
const e2e = files.filter(isE2e);
// Two test files run at once, one per core: the wasm backend runs one thread each unless the caller says otherwise
// (by default it would start one per core in each, oversubscribing the machine).
const env = { ...process.env, LORAPLUS_WASM_THREADS: process.env.LORAPLUS_WASM_THREADS ?? '1' };
const nodeTest = (list, concurrency, extra = []) =>
  spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${concurrency}`, ...extra, ...list],
    { stdio: 'inherit', env },
  ).status ?? 1;

let status = unit.length ? nodeTest(unit, 2) : 0;

if (e2e.length && process.env.LORAPLUS_E2E !== '1') {
  console.log(
    `e2e: skipped ${e2e.length} end-to-end test file(s) (set LORAPLUS_E2E=1 to run them: ` +
      'bash test/e2e/setup.sh, then LORAPLUS_E2E=1 node scripts/run-tests.mjs test/e2e)',
  );
} else if (e2e.length) {
  // The e2e tests install the extension package: build it from the current sources first.
  const artifacts = join('.test-work', 'e2e', 'artifacts');
  rmSync(artifacts, { recursive: true, force: true });
  const step = (what, args) => {
    const r = spawnSync(process.execPath, args, { stdio: 'inherit', env });
    if (r.status !== 0) console.error(`e2e: ${what} failed`);
    return r.status === 0;
  };
  const ready =
    step('build', ['scripts/build.mjs']) &&
    step('packaging', ['scripts/package.mjs', '--out', join('.test-work', 'e2e', 'loraplus-studio.vsix')]);
  const e2eStatus = ready ? nodeTest(e2e, 1, ['--test-timeout=600000']) : 1;
  console.log(`e2e: screenshots and code-server logs in ${join(process.cwd(), artifacts)}${sep}`);
  status ||= e2eStatus;
}
process.exit(status);
