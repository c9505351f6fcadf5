#!/bin/bash
# verify-sha512.sh FILE SUMS [PINNED]: FILE's SHA-512 must equal the one in SUMS (Apache's
# .sha512: `gpg --print-md SHA512` output, "NAME: HEX HEX ..." over several lines, or
# sha512sum's "HEX  NAME") and, when given, PINNED. Exit 1 naming both values otherwise.
set -euo pipefail
file=$1
sums=$2
pinned=${3:-}

if grep -q ':' "$sums"; then
	published=$(sed 's/^[^:]*://' "$sums" | tr -d ' \t\r\n')
else
	published=$(awk 'NR == 1 { print $1 }' "$sums")
fi
published=$(printf '%s' "$published" | tr 'A-F' 'a-f')
actual=$(sha512sum "$file" | cut -d' ' -f1)

if [ "${#published}" -ne 128 ] || [ "$actual" != "$published" ]; then
	echo "verify-sha512: $file has SHA-512 $actual; $sums says '$published'" >&2
	exit 1
fi
if [ -n "$pinned" ] && [ "$actual" != "$(printf '%s' "$pinned" | tr 'A-F' 'a-f')" ]; then
	echo "verify-sha512: $file has SHA-512 $actual; kafka_sha512 pins $pinned" >&2
	exit 1
fi
