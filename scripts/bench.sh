#!/usr/bin/env bash
# bench.sh - sign TLD-like zones with hwsigner's software key store and, in the
# same run, with ldns-signzone, dnssec-signzone and kzonesign on the same zone
# with the same keys (one set of BIND key files, imported into Knot's KASP).
# Prints signatures per second, wall time and peak memory for each, and the
# bare rate of the signing primitive on both cores (openssl speed).
#
# Like is compared with like: hwsigner (host verification on) against
# dnssec-signzone as it runs by default (it verifies the signed zone);
# hwsigner --no-verify against every peer's fastest setting
# (dnssec-signzone -P -n 2, ldns-signzone, kzonesign with two signing threads).
#
# Usage: scripts/bench.sh [--sizes 10000,100000] [--big 1000000] [--skip-slow] [--keep DIR]
#   --sizes   delegation counts for the full matrix (ECDSA P-256 and RSA-2048,
#             NSEC and NSEC3 opt-out); default 10000,100000
#   --big     delegation count for the large row (ECDSA P-256, NSEC3 opt-out);
#             default 1000000; 0 to skip
#   --skip-slow  leave ldns-signzone and default dnssec-signzone out of the big row
#   --no-pool    skip the signing-pool benchmark (cargo bench --bench pool:
#                SoftHSM2 pool against a bare C_Sign loop, cards modelled at
#                50 ms with 1/2/4/8 tokens, one of four hanging, and the big
#                zone signed through two SoftHSM2 tokens)
#   --no-tpm     skip the TPM benchmark (cargo bench --bench tpm, swtpm)
#   --no-cards   skip scripts/bench-cards.sh (emulated SmartCard-HSMs at real
#                cards' speed through pcscd and OpenSC; about four minutes)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SIZES=10000,100000; BIG=1000000; SKIP_SLOW=0; KEEP=""; POOL=1; TPM=1; CARDS=1
while [ $# -gt 0 ]; do
  case "$1" in
    --sizes) SIZES=$2; shift 2;;
    --big) BIG=$2; shift 2;;
    --skip-slow) SKIP_SLOW=1; shift;;
    --keep) KEEP=$2; shift 2;;
    --no-pool) POOL=0; shift;;
    --no-tpm) TPM=0; shift;;
    --no-cards) CARDS=0; shift;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done

need=()
for t in ldns-signzone:ldnsutils dnssec-signzone:bind9-utils kzonesign:knot-dnssecutils keymgr:knot /usr/bin/time:time openssl:openssl softhsm2-util:softhsm2 swtpm:swtpm pcscd:pcscd sc-hsm-tool:opensc; do
  command -v "${t%%:*}" >/dev/null 2>&1 || need+=("${t##*:}")
done
[ -f /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || need+=(vsmartcard-vpcd)
for p in libssl-dev libpcsclite-dev libtss2-dev pkg-config; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need[@]}" >/dev/null
fi

cargo build --release --quiet --workspace --manifest-path "$ROOT/Cargo.toml"
HW=${CARGO_TARGET_DIR:-$ROOT/target}/release/hwsigner
if [ -n "$KEEP" ]; then mkdir -p "$KEEP"; W=$(cd "$KEEP" && pwd); else W=$(mktemp -d); trap 'rm -rf "$W"' EXIT; fi
ORIGIN=tld.

echo "== bare signing primitive (openssl speed, one process per core)"
openssl speed -seconds 3 -multi 2 ecdsap256 rsa2048 2>/dev/null | grep -E '^ *(rsa 2048|256 bits ecdsa)' | \
  awk '/rsa/ {printf "RSA-2048:    %8.0f signatures/s on 2 cores\n", $6} /ecdsa/ {printf "ECDSA P-256: %8.0f signatures/s on 2 cores\n", $7}'
echo

RESULTS="$W/results.tsv"
printf 'delegations\talgorithm\tdenial\tsigner\tsignatures\twall_s\tsigs_per_s\tpeak_MB\n' >"$RESULTS"

count_rrsig() { awk '{for (i = 2; i <= 5 && i <= NF; i++) if ($i == "RRSIG") { n++; break }} END {print n + 0}' "$1"; }

measure() { # label size alg mode outfile cmd...
  local label=$1 size=$2 alg=$3 mode=$4 out=$5; shift 5
  local tf="$W/time.txt"
  if ! /usr/bin/time -f '%e %M' -o "$tf" "$@" >"$W/run.log" 2>&1; then
    printf '%s\t%s\t%s\t%s\tFAILED\t-\t-\t-\n' "$size" "$alg" "$mode" "$label" >>"$RESULTS"
    echo "  $label FAILED: $(tail -2 "$W/run.log" | tr '\n' ' ')"; return 0
  fi
  read -r wall kb <"$tf"
  local sigs; sigs=$(count_rrsig "$out")
  local rate; rate=$(awk -v s="$sigs" -v w="$wall" 'BEGIN {printf "%.0f", (w > 0 ? s / w : 0)}')
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$size" "$alg" "$mode" "$label" "$sigs" "$wall" "$rate" "$((kb / 1024))" >>"$RESULTS"
  printf '  %-34s %9s sigs %8ss %9s sigs/s %6s MB\n' "$label" "$sigs" "$wall" "$rate" "$((kb / 1024))"
  rm -f "$out"
}

knot_setup() { # dir keydir alg mode
  local d=$1 keys=$2 alg=$3 mode=$4 kalg nsec3=off optout=off
  [ "$alg" = 13 ] && kalg=ecdsap256sha256 || kalg=rsasha256
  [ "$mode" = optout ] && { nsec3=on; optout=on; }
  mkdir -p "$d/kasp" "$d/out"
  cat >"$d/knot.conf" <<CONF
database:
  storage: $d
  kasp-db: $d/kasp
policy:
  - id: bench
    manual: on
    algorithm: $kalg
    nsec3: $nsec3
    nsec3-opt-out: $optout
    nsec3-iterations: 0
    nsec3-salt-length: 0
    signing-threads: 2
    rrsig-lifetime: 14d
    rrsig-refresh: 5d
zone:
  - domain: $ORIGIN
    storage: $d
    file: zone
    dnssec-signing: on
    dnssec-policy: bench
CONF
  for k in "$keys"/K*.key; do keymgr -c "$d/knot.conf" "$ORIGIN" import-bind "${k%.key}" >/dev/null; done
}

run_case() { # size alg mode
  local size=$1 alg=$2 mode=$3 slow_ok=$4
  local zone="$W/zone.$size" keys="$W/keys-$alg" hwmode=() n3=() ldns=()
  [ -f "$zone" ] || "$ROOT/scripts/genzone.sh" "$size" "$ORIGIN" >"$zone"
  if [ ! -d "$keys" ]; then
    "$HW" keys generate --zone "$ORIGIN" --algorithm "$alg" --role ksk -K "$keys" >/dev/null 2>&1
    "$HW" keys generate --zone "$ORIGIN" --algorithm "$alg" --role zsk -K "$keys" >/dev/null 2>&1
  fi
  local kfiles=(); for k in "$keys"/K*.key; do kfiles+=("${k%.key}"); done
  # dnssec-signzone finds the keys itself (-S, smart signing, from -K).
  if [ "$mode" = optout ]; then hwmode=(--opt-out); n3=(-3 - -H 0 -A); ldns=(-n -t 0 -s "" -p); fi
  local name; [ "$alg" = 13 ] && name="ECDSA P-256" || name="RSA-2048"
  echo "== $size delegations, $name, ${mode^^}"
  measure "hwsigner (verify on)" "$size" "$alg" "$mode" "$W/o1" "$HW" sign --quiet --zone "$ORIGIN" -K "$keys" "${hwmode[@]}" --output "$W/o1" "$zone"
  if [ "$slow_ok" = 1 ]; then
    measure "dnssec-signzone (default, verifies)" "$size" "$alg" "$mode" "$W/o2" dnssec-signzone -q -d "$W" -S -o "$ORIGIN" -K "$keys" -O full -f "$W/o2" "${n3[@]}" "$zone"
  fi
  measure "hwsigner --no-verify" "$size" "$alg" "$mode" "$W/o3" "$HW" sign --quiet --no-verify --zone "$ORIGIN" -K "$keys" "${hwmode[@]}" --output "$W/o3" "$zone"
  measure "dnssec-signzone -P -n 2" "$size" "$alg" "$mode" "$W/o4" dnssec-signzone -q -d "$W" -S -P -n 2 -o "$ORIGIN" -K "$keys" -O full -f "$W/o4" "${n3[@]}" "$zone"
  if [ "$slow_ok" = 1 ]; then
    measure "ldns-signzone" "$size" "$alg" "$mode" "$zone.signed" ldns-signzone "${ldns[@]}" -f "$zone.signed" "$zone" "${kfiles[@]}"
  fi
  local kd="$W/knot-$size-$alg-$mode"; rm -rf "$kd"; knot_setup "$kd" "$keys" "$alg" "$mode"; cp "$zone" "$kd/zone"
  measure "kzonesign (2 signing threads)" "$size" "$alg" "$mode" "$kd/out/zone" kzonesign -c "$kd/knot.conf" -o "$kd/out" "$ORIGIN"
  rm -rf "$kd"
}

IFS=, read -r -a sizes <<<"$SIZES"
for size in "${sizes[@]}"; do
  for alg in 13 8; do
    for mode in nsec optout; do run_case "$size" "$alg" "$mode" 1; done
  done
done
if [ "$BIG" != 0 ]; then
  run_case "$BIG" 13 optout "$((1 - SKIP_SLOW))"
fi
echo
echo "results: $RESULTS"
column -t -s $'\t' "$RESULTS"
if [ "$POOL" = 1 ]; then
  echo
  big_zone="$W/zone.$BIG"
  [ "$BIG" != 0 ] && [ ! -f "$big_zone" ] && "$ROOT/scripts/genzone.sh" "$BIG" "$ORIGIN" >"$big_zone"
  if [ "$BIG" != 0 ]; then export POOL_BENCH_ZONE="$big_zone" POOL_BENCH_ORIGIN="$ORIGIN"; fi
  cargo bench --quiet --bench pool --manifest-path "$ROOT/Cargo.toml" 2>&1 | grep -v '^ *\(Compiling\|Finished\|Running\)'
fi
if [ "$TPM" = 1 ]; then
  echo
  cargo bench --quiet --bench tpm --manifest-path "$ROOT/Cargo.toml" 2>&1 | grep -v '^ *\(Compiling\|Finished\|Running\)'
fi
if [ "$CARDS" = 1 ]; then
  echo
  "$ROOT/scripts/bench-cards.sh"
fi
