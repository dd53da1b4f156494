// One bundler for every output: esbuild bundles our sources; npm packages stay external (they ship in node_modules,
// and tfjs's wasm/webgpu backends load their own binaries from there at run time).
import * as esbuild from 'esbuild';

const node = { bundle: true, platform: 'node', target: 'node20', format: 'cjs', packages: 'external', sourcemap: true, logLevel: 'warning' };

await Promise.all([
  esbuild.build({ ...node, entryPoints: { cli: 'src/engine/cli.ts', demo: 'src/engine/demo.ts', bench: 'bench/bench.ts' }, outdir: 'dist' }),
]);
