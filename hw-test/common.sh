# Sourced by the hw-test scripts: the skip rule, the binary under test and a
# scratch directory removed on exit.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# skip_unless VAR WHAT: without VAR set there is no such device here, which
# is not a failure (exit 0 with a SKIP line).
skip_unless() {
  if [ -z "${!1:-}" ]; then
    echo "SKIP: $1 is not set (no $2 configured)"
    exit 0
  fi
}

# prepare: the release binary (built if missing) in $HW, a scratch directory in $W.
prepare() {
  HW="${CARGO_TARGET_DIR:-$ROOT/target}/release/hwsigner"
  [ -x "$HW" ] || cargo build --release --manifest-path "$ROOT/Cargo.toml"
  W=$(mktemp -d); trap 'rm -rf "$W"' EXIT
}
