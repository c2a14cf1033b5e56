#!/bin/sh
# Links a C program with -static against libbitslab.a and runs it.
set -e
lib="$1"; src="$2"; out="$3/static_program"
cc -O2 -static -o "$out" "$src" "$lib" -lstdc++ -lpthread
"$out" | grep -qx "static ok"
echo "static program linked and ran with bitslab"
