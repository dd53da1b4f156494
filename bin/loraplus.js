#!/usr/bin/env node
// The `loraplus` command: the CLI bundle built by `npm run build`.
require('../dist/cli.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
