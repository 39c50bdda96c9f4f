#!/usr/bin/env bash
# Signs the example zone with a key on a real PKCS#11 device and checks the
# result with ldns-verify-zone and hwsigner verify. Skips (exit 0) when no
# device is configured.
#
#   HWSIGNER_HW_PKCS11_MODULE  module path (e.g. /usr/lib/x86_64-linux-gnu/opensc-pkcs11.so)
#   HWSIGNER_HW_PKCS11_PIN     user PIN (read from the environment, never argv)
#   HWSIGNER_HW_PKCS11_TOKEN   token selector (serial:S, label:L or slot:N)
#   HWSIGNER_HW_PKCS11_LABEL   key label (default hwsigner-hwtest; generated
#                              as P-256 when absent — this writes to the token)
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
skip_unless HWSIGNER_HW_PKCS11_MODULE "PKCS#11 device"
: "${HWSIGNER_HW_PKCS11_PIN:?set the user PIN in HWSIGNER_HW_PKCS11_PIN}"
: "${HWSIGNER_HW_PKCS11_TOKEN:?set HWSIGNER_HW_PKCS11_TOKEN (see hwsigner tokens list)}"
LABEL=${HWSIGNER_HW_PKCS11_LABEL:-hwsigner-hwtest}
prepare

"$HW" tokens list --module "$HWSIGNER_HW_PKCS11_MODULE" --pin-env HWSIGNER_HW_PKCS11_PIN | tee "$W/tokens.txt"
if ! grep -q "label '$LABEL'" "$W/tokens.txt"; then
  "$HW" keys generate --backend pkcs11 --module "$HWSIGNER_HW_PKCS11_MODULE" --token "$HWSIGNER_HW_PKCS11_TOKEN" \
    --pin-env HWSIGNER_HW_PKCS11_PIN --zone example.com. --role csk --algorithm 13 --label "$LABEL"
fi
cat >"$W/hw.toml" <<TOML
[[pkcs11]]
name = "hw"
module = "$HWSIGNER_HW_PKCS11_MODULE"
tokens = ["$HWSIGNER_HW_PKCS11_TOKEN"]
pin_env = "HWSIGNER_HW_PKCS11_PIN"
watchdog = "30s"

[[key]]
zone = "example.com."
role = "csk"
store = "hw"
label = "$LABEL"
TOML
"$HW" sign --config "$W/hw.toml" --zone example.com. --output "$W/signed.zone" "$ROOT/examples/example.com.zone"
ldns-verify-zone "$W/signed.zone"
"$HW" verify --zone example.com. "$W/signed.zone"
echo "PASS: signed and verified with $LABEL on $HWSIGNER_HW_PKCS11_TOKEN"
