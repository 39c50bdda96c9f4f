#!/usr/bin/env bash
# genzone.sh N [ORIGIN] - a deterministic TLD-like zone on stdout: N delegations
# (two out-of-zone NS each), every 20th with a DS, plus apex records and glue
# for the apex name servers. The same N always gives the same bytes.
set -euo pipefail
n=${1:?usage: genzone.sh DELEGATIONS [ORIGIN]}
origin=${2:-tld.}
awk -v n="$n" -v origin="$origin" 'BEGIN {
  printf "$ORIGIN %s\n$TTL 86400\n", origin
  print "@ IN SOA ns1.nic hostmaster.nic 2026112401 1800 900 604800 3600"
  print "@ IN NS ns1.nic\n@ IN NS ns2.nic\nns1.nic IN A 192.0.2.1\nns2.nic IN A 192.0.2.2\nnic IN A 192.0.2.80"
  for (i = 0; i < n; i++) {
    p = i % 97
    printf "dom%d IN NS ns1.provider%d.net.\ndom%d IN NS ns2.provider%d.net.\n", i, p, i, p
    if (i % 20 == 0) printf "dom%d IN DS %d 13 2 %08X%056d\n", i, i % 65536, i, 0
  }
}'
