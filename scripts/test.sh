#!/usr/bin/env bash
# The whole test suite, on a fresh Debian 12 machine: installs the Debian
# packages the tests use (validators, SoftHSM2, OpenSC, pcscd + vpcd), starts
# pcscd with four virtual readers, builds, runs unit and integration tests (validators
# included), then signs the shared zone corpus and checks every zone with
# ldns-verify-zone, dnssec-verify and kzonecheck.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

PACKAGES=(ldnsutils bind9-utils knot-dnssecutils libssl-dev pkg-config time softhsm2 opensc pcscd vsmartcard-vpcd libpcsclite-dev libtss2-dev swtpm swtpm-tools tpm2-tools tpm2-abrmd libtss2-tcti-tabrmd0 libtpm2-pkcs11-1 libtpm2-pkcs11-tools dbus)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

echo "== cargo build (release, with the fault-injecting PKCS#11 module the pool tests load)"
cargo build --release --workspace 2>&1
# The shared zone corpus: $HWSIGNER_CORPUS, else beside the project
# (../shared/corpus), else the workplace's copy; the Rust tests use it too.
CORPUS=""
for c in "${HWSIGNER_CORPUS:-}" "$ROOT/../shared/corpus" /work/shared/corpus; do
  if [ -n "$c" ] && [ -x "$c/check.sh" ]; then CORPUS=$(cd "$c" && pwd); break; fi
done
if [ -z "$CORPUS" ]; then
  echo "zone corpus not found (looked at \$HWSIGNER_CORPUS, $ROOT/../shared/corpus, /work/shared/corpus); set HWSIGNER_CORPUS" >&2
  exit 1
fi
export HWSIGNER_CORPUS=$CORPUS

echo "== a build without the PKCS#11 and smart-card stores (the home-gateway set) still compiles"
cargo check --release --no-default-features --features tpm 2>&1

echo "== pcscd with four vpcd readers for the SmartCard-HSM emulator"
"$ROOT/scripts/pcscd-vpcd.sh" start
echo "== cargo test (release)"
cargo test --release 2>&1

BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/hwsigner"
echo "== zone corpus: every good zone with NSEC and NSEC3 opt-out, three validators; bad zones refused"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
set +e
"$CORPUS/check.sh" -q -b -k "$out" \
  "$BIN sign --quiet --zone {origin} -K {work}/keys --create-keys 13 \$( [ {mode} = nsec3 ] && echo --opt-out ) --output {out} {in}" \
  | tee "$out/corpus.txt"
rc=${PIPESTATUS[0]}
set -e
if ! grep -q "bad zones: [0-9]* refused, 0 accepted" "$out/corpus.txt"; then
  echo "a malformed corpus zone was accepted" >&2
  rc=1
fi
exit "$rc"
