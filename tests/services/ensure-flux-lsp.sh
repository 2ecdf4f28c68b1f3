#!/usr/bin/env bash
# Install the Flux language server packaged for Node (@influxdata/flux-lsp-node) once,
# into ${GRIDGUARD_CACHE:-$HOME/.cache/gridguard}/flux-lsp/<version>/, and print the
# package directory as the last line of stdout. Safe to run repeatedly: npm is only
# called when that version is not installed yet. Messages go to stderr.
#
# The version is pinned (the published ones: `npm view @influxdata/flux-lsp-node
# versions`); 0.8.40 is the latest and the one whose diagnostics the tests expect.
# `FLUX_LSP_VERSION` overrides it for trying another release.
set -euo pipefail

version="${FLUX_LSP_VERSION:-0.8.40}"
cache="${GRIDGUARD_CACHE:-$HOME/.cache/gridguard}"
prefix="$cache/flux-lsp/$version"
pkg="$prefix/node_modules/@influxdata/flux-lsp-node"

if [ -f "$pkg/package.json" ] && grep -q "\"version\": \"$version\"" "$pkg/package.json"; then
  echo "$pkg"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "[flux-lsp] npm not found: install Node.js >= 18 and npm (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi

echo "[flux-lsp] installing @influxdata/flux-lsp-node@$version into $prefix" >&2
mkdir -p "$prefix"
# A private package.json keeps npm from walking up into an unrelated project.
[ -f "$prefix/package.json" ] || printf '{"name":"gridguard-flux-lsp","private":true}\n' >"$prefix/package.json"
npm install --prefix "$prefix" --no-audit --no-fund --save-exact \
  "@influxdata/flux-lsp-node@$version" >&2

if [ ! -f "$pkg/package.json" ]; then
  echo "[flux-lsp] npm finished but $pkg/package.json is missing" >&2
  exit 1
fi
echo "$pkg"
