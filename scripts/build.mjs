// One bundler for every output: esbuild bundles our sources. For Node (CLI, engine child process, extension host)
// npm packages stay external (they ship in node_modules, and tfjs's wasm/webgpu backends load their own binaries from
// there at run time); the webviews are bundled whole into media/ (they may load nothing from outside it).
import * as esbuild from 'esbuild';

const node = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
};
const web = {
  bundle: true,
  platform: 'browser',
  target: 'chrome120',
  format: 'iife',
  sourcemap: true,
  minify: true,
  logLevel: 'warning',
  loader: { '.ttf': 'file', '.woff2': 'file' },
};

await Promise.all([
  esbuild.build({
    ...node,
    entryPoints: {
      cli: 'src/cli/main.ts',
      demo: 'src/cli/demo.ts',
      bench: 'bench/bench.ts',
      'engine-child': 'src/cli/child.ts',
    },
    outdir: 'dist',
  }),
  esbuild.build({
    ...node,
    entryPoints: { extension: 'src/vscode/extension.ts' },
    outdir: 'dist',
    external: ['vscode'],
  }),
  esbuild.build({
    ...web,
    entryPoints: {
      dashboard: 'webview/dashboard/main.ts',
      compare: 'webview/compare/main.ts',
      chat: 'webview/chat/main.ts',
      tune: 'webview/tune/main.ts',
    },
    outdir: 'media',
  }),
]);
