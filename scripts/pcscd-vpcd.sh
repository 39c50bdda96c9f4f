#!/usr/bin/env bash
# Starts pcscd with four vsmartcard vpcd readers for the SmartCard-HSM
# emulator: "Virtual PCD 00 00/00 01" on ports 35963/35964 and
# "Virtual PCD B 00 00/00 01" on 35965/35966. The second reader stanza needs
# its own copy of the driver: ifd-vpcd keeps its sockets in a static array
# indexed by slot, and pcscd reuses a loaded library.
#
# pcscd runs without --auto-exit (the Debian unit's default would stop it after
# 60 idle seconds and drop the virtual cards). vpcd listens on 0.0.0.0: never
# install vsmartcard-vpcd on a ceremony machine.
#
# Usage: scripts/pcscd-vpcd.sh start|stop
set -euo pipefail
DRV=/usr/lib/pcsc/drivers/serial
case "${1:-start}" in
  start)
    if [ ! -f "$DRV/libifdvpcd.so" ]; then
      echo "vsmartcard-vpcd is not installed (apt-get install pcscd vsmartcard-vpcd)" >&2; exit 1
    fi
    # Replace the copy by rename, never in place: a running pcscd has it mapped.
    if ! cmp -s "$DRV/libifdvpcd.so" "$DRV/libifdvpcd-b.so"; then
      cp "$DRV/libifdvpcd.so" "$DRV/libifdvpcd-b.so.new" && mv -f "$DRV/libifdvpcd-b.so.new" "$DRV/libifdvpcd-b.so"
    fi
    cat >/etc/reader.conf.d/vpcd-b <<CONF
FRIENDLYNAME "Virtual PCD B"
DEVICENAME   /dev/null:0x8C7D
LIBPATH      $DRV/libifdvpcd-b.so
CHANNELID    0x8C7D
CONF
    if pgrep -x pcscd >/dev/null; then
      if [ -f /run/hwsigner-pcscd.ok ]; then exit 0; fi
      pkill -x pcscd || true; sleep 0.5
    fi
    systemctl stop pcscd.socket pcscd.service >/dev/null 2>&1 || true
    nohup pcscd --foreground >/tmp/hwsigner-pcscd.log 2>&1 &
    for _ in $(seq 50); do
      if ss -ltn 2>/dev/null | grep -q ':35966 ' || netstat -ltn 2>/dev/null | grep -q ':35966 '; then break; fi
      sleep 0.1
    done
    touch /run/hwsigner-pcscd.ok
    ;;
  stop)
    pkill -x pcscd || true
    rm -f /run/hwsigner-pcscd.ok
    ;;
esac
