#!/usr/bin/env bash
# Coverage-guided fuzzing of hwsigner's parsers (not part of the test command).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]      # default: 60 s for each of every target
#   FUZZ_RUNS=10000000 scripts/fuzz.sh 3600 zone_lexer   # stop after N executions (or SECONDS)
#
# Targets (fuzz/fuzz_targets/): zone_lexer, zone_reader (reader + builder + writer round
# trip), rdata_text (presentation RDATA incl. SVCB), rdata_wire (wire checker/formatter),
# tlv (BER-TLV, CV requests), apdu (emulator's APDU parser vs the host's encoder),
# pool_frames (worker pipe frames, requests, replies), dkek_blob (wrapped key blobs), pbe
# (sc-hsm-tool share files).
#
# Engine: cargo-fuzz with libFuzzer, in process (the fastest engine for Rust). cargo-fuzz
# needs nightly-only -Z flags; this machine has only the stable toolchain, so the script
# sets RUSTC_BOOTSTRAP=1, which lets stable rustc accept them. Targets are built without
# AddressSanitizer (`-s none`: the code is safe Rust, and OpenSSL's C is not instrumented
# anyway) but with debug assertions and overflow checks, so an overflow is a crash.
#
# Seeds are written fresh on every run into fuzz/seeds/TARGET by `fuzz/examples/seeds.rs`
# from the shared zone corpus ($HWSIGNER_CORPUS, else ../shared/corpus, else
# /work/shared/corpus, as scripts/test.sh finds it) and from hwsigner's own encoders. What
# the fuzzer learns is kept in fuzz/corpus/TARGET between runs; crashing inputs go to
# fuzz/artifacts/TARGET/. Both are ignored by git: a crash found becomes a regression test
# (tests/fuzz_regressions.rs or the module's unit tests) holding the input.
#
# Fuzzers run one at a time, on one core, under `nice -n 19`: the machine is shared.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ALL=(zone_lexer zone_reader rdata_text rdata_wire tlv apdu pool_frames dkek_blob pbe)
SECS=${1:-60}
[ $# -gt 0 ] && shift
TARGETS=("$@")
[ ${#TARGETS[@]} -eq 0 ] && TARGETS=("${ALL[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL[*]} " == *" $t "* ]] || { echo "unknown fuzz target $t (known: ${ALL[*]})" >&2; exit 2; }
done

CORPUS=""
for c in "${HWSIGNER_CORPUS:-}" "$ROOT/../shared/corpus" /work/shared/corpus; do
  if [ -n "$c" ] && [ -d "$c/good" ]; then CORPUS=$(cd "$c" && pwd); break; fi
done
if [ -z "$CORPUS" ]; then
  echo "zone corpus not found (looked at \$HWSIGNER_CORPUS, $ROOT/../shared/corpus, /work/shared/corpus); set HWSIGNER_CORPUS" >&2
  exit 1
fi

if ! command -v cargo-fuzz >/dev/null; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
# The builder sorts with rayon: one thread, like the one core the fuzzer gets.
export RAYON_NUM_THREADS=1

echo "== seeds from $CORPUS"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
nice -n 19 cargo build --quiet --release --manifest-path fuzz/Cargo.toml --example seeds --target-dir "$TARGET_DIR"
rm -rf fuzz/seeds
"$TARGET_DIR/release/examples/seeds" fuzz/seeds "$CORPUS"

max_len() {
  case "$1" in
    zone_lexer | zone_reader) echo 4096 ;;
    dkek_blob) echo 2048 ;;
    *) echo 4096 ;;
  esac
}

LOGS=$(mktemp -d)
trap 'rm -rf "$LOGS"' EXIT
echo "== build ${TARGETS[*]}"
nice -n 19 cargo fuzz build -s none
for t in "${TARGETS[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  args=(-max_total_time="$SECS" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="fuzz/artifacts/$t/")
  [ -n "${FUZZ_RUNS:-}" ] && args+=(-runs="$FUZZ_RUNS")
  echo "== fuzz $t for ${SECS}s${FUZZ_RUNS:+ or $FUZZ_RUNS runs}"
  touch "$LOGS/$t.stamp"
  set +e
  nice -n 19 cargo fuzz run -s none "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- "${args[@]}" >"$LOGS/$t.log" 2>&1
  echo $? >"$LOGS/$t.rc"
  set -e
  grep -E "^(==[0-9]+== ERROR|thread .* panicked|SUMMARY|Done )" "$LOGS/$t.log" | head -5 || true
done

echo
echo "== results"
printf '%-12s %12s %9s %7s %7s %7s %8s  %s\n' target execs exec/s edges features corpus crashes artifacts
status=0
for t in "${TARGETS[@]}"; do
  log=$LOGS/$t.log
  final() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  last=$(grep -E '^#[0-9]+' "$log" | tail -1)
  edges=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  # Crashes, timeouts and out-of-memory inputs written by this run.
  found=$(find "fuzz/artifacts/$t" -type f -newer "$LOGS/$t.stamp" | sort)
  n=$(grep -c . <<<"$found" || true)
  rc=$(cat "$LOGS/$t.rc")
  if [ "$rc" != 0 ]; then status=1; fi
  printf '%-12s %12s %9s %7s %7s %7s %8s  %s\n' "$t" "$(final number_of_executed_units)" "$(final average_exec_per_sec)" \
    "${edges:--}" "${ft:--}" "${corp:--}" "$n" "$(tr '\n' ' ' <<<"$found")"
done
[ "$status" = 0 ] || echo "a fuzzer stopped on a finding: see the artifacts above (reproduce with: RUSTC_BOOTSTRAP=1 cargo fuzz run -s none TARGET FILE)" >&2
exit "$status"
