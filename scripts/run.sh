#!/usr/bin/env bash
# Builds and runs hwsigner on a fresh Debian 12 machine: installs the C
# libraries the build links against (OpenSSL, PC/SC lite, tpm2-tss) when they
# are missing, then `cargo run --release -- ARGS`.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
need=()
for p in libssl-dev pkg-config libpcsclite-dev libtss2-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "installing build dependencies: ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq "${need[@]}" >/dev/null
fi
exec cargo run --quiet --release --manifest-path "$ROOT/Cargo.toml" -- "$@"
