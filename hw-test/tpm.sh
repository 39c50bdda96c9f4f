#!/usr/bin/env bash
# Signs the example zone with a CSK made inside this machine's real TPM, then
# checks it. Skips (exit 0) unless HWSIGNER_HW_TPM_TCTI is set (for example
# device:/dev/tpmrm0). The key blobs go to a temporary directory and are
# discarded: the key itself cannot be removed from a TPM, only forgotten.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
skip_unless HWSIGNER_HW_TPM_TCTI "TPM"
prepare
"$HW" tpm info --tcti "$HWSIGNER_HW_TPM_TCTI"
for alg in 13 8; do
  "$HW" keys generate --backend tpm --tcti "$HWSIGNER_HW_TPM_TCTI" --zone example.com. --role csk -a $alg -K "$W/keys$alg"
  time "$HW" sign --tcti "$HWSIGNER_HW_TPM_TCTI" --zone example.com. -K "$W/keys$alg" --output "$W/signed$alg.zone" "$ROOT/examples/example.com.zone"
  ldns-verify-zone "$W/signed$alg.zone"
done
echo "PASS: ECDSA and RSA keys in the TPM at $HWSIGNER_HW_TPM_TCTI signed and verified"
