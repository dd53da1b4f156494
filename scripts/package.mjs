// Builds the extension package (.vsix) from the already built dist/ and media/ (`npm run build` first).
//   node scripts/package.mjs [--out FILE] [--stage DIR] [--no-check]
// node_modules is ~500 MB (tfjs's browser bundles, Dawn binaries for 5 platforms), so the package does not ship it:
// a stage folder gets the manifest, the three runtime bundles, media/, schemas/, README and LICENSE, and the runtime
// packages the bundles reach, pruned to what Node loads (each package's Node entry, tfjs-backend-wasm's .wasm files,
// Dawn for this platform only). They go to dist/node_modules, where Node finds them from dist/*.js: vsce
// --no-dependencies skips a top-level node_modules, and its dependency mode would run `npm ls` on the pruned tree.
// Then vsce packages the stage, and the check unpacks the .vsix outside the repo (so nothing resolves from the
// repo's node_modules) and loads tfjs with the wasm backend, yaml and the tokenizers from it alone.
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(ROOT, `${manifest.name}-${manifest.version}.vsix`) },
    stage: { type: 'string', default: path.join(ROOT, '.test-work', 'vsix-stage') },
    'no-check': { type: 'boolean', default: false },
  },
});
const OUT = path.resolve(opts.out);
const STAGE = path.resolve(opts.stage);
const BUNDLES = ['extension.js', 'engine-child.js', 'cli.js']; // demo.js and bench.js are development tools
const t0 = Date.now();

for (const b of BUNDLES) {
  if (!fs.existsSync(path.join(ROOT, 'dist', b))) fail(`dist/${b} is missing: run \`npm run build\` first`);
}
fs.rmSync(STAGE, { recursive: true, force: true });
fs.mkdirSync(path.join(STAGE, 'dist'), { recursive: true });

// ---- the manifest and our own files -------------------------------------------------------------------------------
// No scripts (vsce would run vscode:prepublish), no devDependencies, no bin (bin/ is not shipped).
const { scripts: _s, devDependencies: _d, bin: _b, ...shipped } = manifest;
fs.writeFileSync(path.join(STAGE, 'package.json'), `${JSON.stringify(shipped, null, 2)}\n`);
for (const b of BUNDLES) fs.copyFileSync(path.join(ROOT, 'dist', b), path.join(STAGE, 'dist', b));
for (const dir of ['media', 'schemas'])
  copyTree(path.join(ROOT, dir), path.join(STAGE, dir), (rel) => !rel.endsWith('.map'));
for (const f of ['README.md', 'LICENSE']) fs.copyFileSync(path.join(ROOT, f), path.join(STAGE, f));
fs.writeFileSync(
  path.join(STAGE, '.vscodeignore'),
  '# Everything in this stage ships: scripts/package.mjs put only that here.\n',
);

// ---- the runtime packages -----------------------------------------------------------------------------------------
const NODE_MODULES = path.join(ROOT, 'node_modules');
const builtins = new Set(builtinModules);
const SPECIFIER = /(?:require|Require|import|resolve)\s*\(\s*['"]([^'"\s]+)['"]\s*\)|\bfrom\s*['"]([^'"\s]+)['"]/g;

/** Package names a JavaScript file loads (static and dynamic require/import, require.resolve). */
function packagesNamedIn(file) {
  const names = new Set();
  for (const m of fs.readFileSync(file, 'utf8').matchAll(SPECIFIER)) {
    const spec = m[1] ?? m[2];
    if (/^[./]/.test(spec) || spec.startsWith('node:') || builtins.has(spec.split('/')[0]) || spec === 'vscode')
      continue;
    names.add(
      spec
        .split('/')
        .slice(0, spec.startsWith('@') ? 2 : 1)
        .join('/'),
    );
  }
  return names;
}

/** Node's lookup of a package from a folder inside the repo: nearest node_modules/<name> walking up. */
function resolvePackage(fromDir, name) {
  for (let d = fromDir; d.startsWith(ROOT); d = path.dirname(d)) {
    const dir = path.join(d, 'node_modules', name);
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    if (d === ROOT) break;
  }
  return null; // an optional dependency that did not install (tfjs-node-gpu), or a name in a comment
}

/** Which files of a package Node can load at run time. `rel` uses forward slashes. */
function keepFile(pkg, rel) {
  if (rel === 'package.json' || /^licen[cs]e/i.test(path.basename(rel))) return true;
  if (/\.(map|ts|mts|cts|tsbuildinfo|md|markdown|html|flow)$/i.test(rel)) return false; // .d.ts too
  if (/^(test|tests|__tests__|docs?|examples?|\.github)\//.test(rel) || rel.includes('miniprogram/')) return false;
  if (pkg.name.startsWith('@tensorflow/')) {
    // Node loads each tfjs package's rollup bundle for Node (main); the rest of dist/ is the ES-module tree and
    // browser bundles. tfjs-backend-wasm fetches its .wasm files from dist/ (backend.ts setWasmPaths).
    return rel === path.posix.normalize(pkg.main) || /^dist\/[^/]+\.wasm$/.test(rel);
  }
  if (pkg.name === 'webgpu' && rel.startsWith('dist/')) {
    // Dawn builds for every platform: keep this one's (webgpu/index.js: dist/<platform>-<arch|universal>/dawn.node).
    const here = `${process.platform}-${process.platform === 'darwin' ? 'universal' : process.arch}`;
    return rel.startsWith(`dist/${here}/`);
  }
  if (rel.startsWith('browser/')) return false; // yaml's browser build (its exports send Node to dist/)
  return true;
}

// Walk from the bundles' imports: a package ships if a shipped file of ours or of a shipped package names it.
const shippedPackages = new Map(); // source folder → folder relative to node_modules
const queue = BUNDLES.flatMap((b) => [...packagesNamedIn(path.join(ROOT, 'dist', b))].map((name) => [ROOT, name]));
while (queue.length) {
  const [from, name] = queue.shift();
  const src = resolvePackage(from, name);
  if (!src || shippedPackages.has(src)) continue;
  const rel = path.relative(NODE_MODULES, src);
  shippedPackages.set(src, rel);
  const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8'));
  pkg.main ??= 'index.js';
  const dest = path.join(STAGE, 'dist', 'node_modules', rel);
  copyTree(src, dest, (r) => !r.startsWith('node_modules/') && keepFile(pkg, r));
  for (const file of listFiles(dest)) {
    if (/\.(c|m)?js$/.test(file)) for (const n of packagesNamedIn(path.join(dest, file))) queue.push([src, n]);
  }
}
for (const name of Object.keys(manifest.dependencies)) {
  if (![...shippedPackages.values()].includes(name))
    fail(`dependency ${name} is not reached from dist/ (or not installed): check packagesNamedIn`);
}

// ---- package ------------------------------------------------------------------------------------------------------
fs.rmSync(OUT, { force: true });
fs.mkdirSync(path.dirname(OUT), { recursive: true });
const vsce = path.join(ROOT, 'node_modules', '.bin', 'vsce');
try {
  // Its output is a file tree and warnings about bundling: shown only when it fails.
  execFileSync(vsce, ['package', '--no-dependencies', '--allow-missing-repository', '--out', OUT], {
    cwd: STAGE,
    stdio: 'pipe',
    encoding: 'utf8',
  });
} catch (err) {
  fail(`vsce package failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
}

const entries = execFileSync('unzip', ['-Z1', OUT], { encoding: 'utf8', maxBuffer: 64 << 20 })
  .split('\n')
  .filter(Boolean);
const need = [
  'extension/package.json',
  ...BUNDLES.map((b) => `extension/dist/${b}`),
  'extension/dist/node_modules/@tensorflow/tfjs/package.json',
  'extension/dist/node_modules/@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm',
];
for (const e of need) if (!entries.includes(e)) fail(`${e} is not in ${OUT}`);

if (!opts['no-check']) checkUnpacked();
const mb = (n) => `${(n / 2 ** 20).toFixed(1)} MB`;
const stagedBytes = listFiles(STAGE).reduce((s, f) => s + fs.statSync(path.join(STAGE, f)).size, 0);
console.log(
  `packaged ${path.relative(process.cwd(), OUT) || OUT}: ${mb(fs.statSync(OUT).size)} ` +
    `(${entries.length} files, ${mb(stagedBytes)} unpacked; ${shippedPackages.size} runtime packages) ` +
    `in ${((Date.now() - t0) / 1000).toFixed(1)} s`,
);

// ---- helpers ------------------------------------------------------------------------------------------------------

/** Unpacks the .vsix outside the repo and loads the runtime packages from it alone, as the extension host would. */
function checkUnpacked() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'loraplus-vsix-check-'));
  try {
    execFileSync('unzip', ['-q', OUT, '-d', dir]);
    const child = path.join(dir, 'extension', 'dist', 'engine-child.js');
    const root = JSON.stringify(dir); // as a string literal in the script
    const script = `
      const req = require('node:module').createRequire(${JSON.stringify(child)});
      const tf = req('@tensorflow/tfjs');
      const wasm = req('@tensorflow/tfjs-backend-wasm');
      const wasmDir = require('node:path').dirname(req.resolve('@tensorflow/tfjs-backend-wasm/package.json'));
      if (!wasmDir.startsWith(${root})) throw new Error('tfjs-backend-wasm resolved outside the package: ' + wasmDir);
      wasm.setWasmPaths(wasmDir + '/dist/');
      req('yaml').parse('a: 1');
      req('@huggingface/tokenizers');
      tf.env().set('PROD', true);
      tf.setBackend('wasm').then(async (ok) => {
        if (!ok) throw new Error('the wasm backend did not start');
        const y = await tf.matMul(tf.ones([2, 3]), tf.ones([3, 2])).data();
        if (y[0] !== 3) throw new Error('wrong matmul');
      }).catch((e) => { console.error(e); process.exit(1); });`;
    try {
      execFileSync(process.execPath, ['-e', script], {
        cwd: dir,
        stdio: ['ignore', 'inherit', 'pipe'],
        encoding: 'utf8',
        env: { ...process.env, NODE_PATH: '' },
      });
    } catch (err) {
      fail(
        'the unpacked package cannot load its runtime packages (a file pruned too much?):\n' +
          `${err.stderr || err.message}`,
      );
    }
    const arch = process.platform === 'darwin' ? 'universal' : process.arch;
    const dawn = `extension/dist/node_modules/webgpu/dist/${process.platform}-${arch}/dawn.node`;
    if (!fs.existsSync(path.join(dir, dawn))) fail(`${dawn} is not in the package`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function listFiles(dir, rel = '') {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const r = rel ? `${rel}/${e.name}` : e.name;
    return e.isDirectory() ? listFiles(dir, r) : [r];
  });
}

function copyTree(src, dest, keep) {
  for (const rel of listFiles(src)) {
    if (!keep(rel)) continue;
    fs.mkdirSync(path.dirname(path.join(dest, rel)), { recursive: true });
    fs.copyFileSync(path.join(src, rel), path.join(dest, rel));
  }
}

function fail(message) {
  console.error(`package: ${message}`);
  process.exit(1);
}
