#!/usr/bin/env bash
# Install the Debian packages the test services need, once. Safe to run repeatedly:
# it only calls apt-get when something is missing.
set -euo pipefail

# command -> Debian package
declare -A wanted=(
  [pkg-config]=pkg-config   # cgo finds libflux through pkg-config when influxd is built
  [gcc]=gcc                 # cgo (sqlite, libflux) for the influxd build
  [openssl]=openssl         # self-signed certificates for the SMTP STARTTLS tests
  [node]=nodejs             # the Flux language server (@influxdata/flux-lsp-node)
  [npm]=npm
)

missing=()
for cmd in "${!wanted[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${wanted[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
  echo "[deps] missing Debian packages: ${missing[*]}" >&2
  echo "[deps] install them with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
echo "[deps] installing Debian packages: ${missing[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
