#!/usr/bin/env bash
# Ceremony and signing against a real SmartCard-HSM / Nitrokey HSM 2, to check
# the emulator's fidelity on hardware. Skips (exit 0) unless configured.
# THIS GENERATES A KEY ON THE CARD (it does not initialise or wipe it).
#
#   HWSIGNER_HW_SCHSM_SERIAL  the card's serial (hwsigner ceremony list shows it)
#   HWSIGNER_HW_SCHSM_PIN     its user PIN (given to hwsigner on standard input)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
skip_unless HWSIGNER_HW_SCHSM_SERIAL "SmartCard-HSM"
: "${HWSIGNER_HW_SCHSM_PIN:?set the user PIN in HWSIGNER_HW_SCHSM_PIN}"
prepare
LABEL=hwtest-$(date +%s)
"$HW" ceremony list
printf '%s\n' "$HWSIGNER_HW_SCHSM_PIN" | "$HW" ceremony keygen --reader "serial:$HWSIGNER_HW_SCHSM_SERIAL" \
  --zone example.com. --role csk --algorithm 13 --label "$LABEL"
cat >"$W/hw.toml" <<TOML
[[pkcs11]]
name = "card"
module = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"
tokens = ["serial:$HWSIGNER_HW_SCHSM_SERIAL"]
pin_env = "HWSIGNER_HW_SCHSM_PIN"
watchdog = "30s"

[[key]]
zone = "example.com."
role = "csk"
store = "card"
label = "$LABEL"
TOML
"$HW" sign --config "$W/hw.toml" --zone example.com. --output "$W/signed.zone" "$ROOT/examples/example.com.zone"
ldns-verify-zone "$W/signed.zone"
printf '%s\n%s\n' "$LABEL" "$HWSIGNER_HW_SCHSM_PIN" | "$HW" ceremony delete --reader "serial:$HWSIGNER_HW_SCHSM_SERIAL" --key "$LABEL"
echo "PASS: key generated on card $HWSIGNER_HW_SCHSM_SERIAL, zone signed through OpenSC and verified, key deleted"
