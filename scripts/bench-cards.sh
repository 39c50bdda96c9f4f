#!/usr/bin/env bash
# bench-cards.sh - the signing pool over emulated SmartCard-HSMs that model a
# real card's speed (RSA-2048 600 ms, P-256 170 ms per signature, the Nitrokey
# HSM FAQ's figures): one card against four cards holding clones of the key,
# and the signing time of a 500-delegation zone over four cards. Prints
# signatures per second; asserts nothing.
#
# Needs pcscd + vsmartcard-vpcd + opensc (scripts/pcscd-vpcd.sh starts pcscd),
# and `cargo build --release --workspace`. Takes about four minutes.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
T=${CARGO_TARGET_DIR:-$ROOT/target}/release
HW=$T/hwsigner; EMU=$T/sc-hsm-emu
[ -x "$EMU" ] || cargo build --release --quiet --workspace --manifest-path "$ROOT/Cargo.toml"
"$ROOT/scripts/pcscd-vpcd.sh" start
W=$(mktemp -d); PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$W"; }
trap cleanup EXIT
SO=3537363231383830; PIN=648219
for i in 1 2 3 4; do
  "$EMU" --port $((35962 + i)) --serial "DEEM2000$i" --state "$W/card$i.json" --rsa-sign-ms 600 --ec-sign-ms 170 &
  PIDS+=($!)
done
# Wait until all four answer: a reader may still show a previous emulator's
# card for a moment, and an APDU sent to it then fails.
for _ in $(seq 100); do
  [ "$("$HW" ceremony list --json 2>/dev/null | grep -o '"serial": *"DEEM2000[1-4]"' | sort -u | wc -l)" -eq 4 ] && break
  sleep 0.1
done
echo "== preparing four cards with one DKEK (one share) and two cloned keys"
printf 'bench-share\nbench-share\n' | "$HW" ceremony dkek-share create "$W/share.pbe" >/dev/null 2>&1
for i in 1 2 3 4; do
  printf '%s\n%s\n%s\n' $SO $PIN $PIN | "$HW" ceremony init -r "serial:DEEM2000$i" --dkek-shares 1 >/dev/null 2>&1
  printf 'bench-share\n' | "$HW" ceremony dkek-share import "$W/share.pbe" -r "serial:DEEM2000$i" >/dev/null 2>&1
done
for k in "p256 13" "rsa 8"; do
  set -- $k
  printf '%s\n' $PIN | "$HW" ceremony keygen -r serial:DEEM20001 --zone bench. --role csk -a "$2" --label "$1" >/dev/null 2>&1
  printf '%s\n%s\n%s\n%s\n' $PIN $PIN $PIN $PIN | "$HW" ceremony clone --from serial:DEEM20001 --to serial:DEEM20002 --to serial:DEEM20003 --to serial:DEEM20004 --key "$1" >/dev/null 2>&1
done

config() { # label cards...
  local label=$1; shift
  local list=""; for s in "$@"; do list="$list\"serial:$s\", "; done
  cat >"$W/c.toml" <<TOML
[[pkcs11]]
name = "cards"
module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
tokens = [${list%, }]
pin_env = "CARD_PIN"
[[key]]
zone = "bench."
role = "csk"
store = "cards"
label = "$label"
TOML
}
rate() { # zone-size label cards...
  local n=$1 label=$2; shift 2
  "$ROOT/scripts/genzone.sh" "$n" bench. >"$W/z"
  config "$label" "$@"
  CARD_PIN=$PIN "$HW" sign --json --zone bench. --config "$W/c.toml" --output "$W/o" "$W/z" 2>/dev/null |
    python3 -c 'import json,sys; s=json.load(sys.stdin); k=s["keys"][0]; print("%d %.2f %.2f" % (k["signatures"], k["sign_seconds"], s["seconds_total"]))'
}
for k in "p256 P-256 40 160" "rsa RSA-2048 12 48"; do
  set -- $k
  read -r s1 t1 _ < <(rate "$3" "$1" DEEM20001)
  read -r s4 t4 _ < <(rate "$4" "$1" DEEM20001 DEEM20002 DEEM20003 DEEM20004)
  r1=$(awk -v s="$s1" -v t="$t1" 'BEGIN{printf "%.2f", s/t}'); r4=$(awk -v s="$s4" -v t="$t4" 'BEGIN{printf "%.2f", s/t}')
  echo "$2: one card $r1 sig/s ($s1 in ${t1}s), four cards $r4 sig/s ($s4 in ${t4}s) = $(awk -v a="$r4" -v b="$r1" 'BEGIN{printf "%.0f", 100*a/(4*b)}')% of 4 x one card"
done
read -r s t total < <(rate 500 p256 DEEM20001 DEEM20002 DEEM20003 DEEM20004)
echo "500-delegation zone, P-256, four cards: $s signatures, signing ${t}s, whole run ${total}s"
