#!/bin/sh
# The entry points agree everywhere: core/entry_points.def (the one list),
# core/bitslab.h (the public header) and what libbitslab.so exports. The
# production libraries hold no heap checker; the checked library exports it.
#   tests/exported_symbols.sh SOURCE_DIR LIBBITSLAB LIBBITSLAB_SECURE LIBBITSLAB_CHECK
src=$1; lib=$2; lib_secure=$3; lib_check=$4
fail=0
bad() { echo "$*"; fail=1; }

# The list, as symbols: API -> name and bitslab_name; GLIBC -> name;
# PREFIXED -> bitslab_name; OTHER -> the symbol as written.
def=$src/core/entry_points.def
listed=$(sed -nE \
  -e 's/^BITSLAB_API\([^,]+, *([A-Za-z0-9_]+),.*/\1\nbitslab_\1/p' \
  -e 's/^BITSLAB_GLIBC\([^,]+, *([A-Za-z0-9_]+),.*/\1/p' \
  -e 's/^BITSLAB_PREFIXED\([^,]+, *([A-Za-z0-9_]+),.*/bitslab_\1/p' \
  -e 's/^BITSLAB_OTHER\(([A-Za-z0-9_]+)\).*/\1/p' "$def" | sort -u)
[ "$(echo "$listed" | wc -l)" -gt 50 ] || bad "could not read the list from $def"

# The header declares exactly the list's bitslab_* functions.
declared=$(grep -oE '\bbitslab_[a-z0-9_]+\(' "$src/core/bitslab.h" | tr -d '(' | sort -u)
listed_prefixed=$(echo "$listed" | grep '^bitslab_')
for s in $listed_prefixed; do
  echo "$declared" | grep -qx "$s" || bad "listed in entry_points.def, not declared in bitslab.h: $s"; done
for s in $declared; do
  echo "$listed_prefixed" | grep -qx "$s" || bad "declared in bitslab.h, missing from entry_points.def: $s"; done

# libbitslab.so exports every listed symbol, and no function the list lacks.
syms=$(nm -D --defined-only "$lib" | awk '$2 == "T" || $2 == "W" || $2 == "i" {print $3}' | sort -u)
for s in $listed; do echo "$syms" | grep -qx "$s" || bad "missing export: $s"; done
for s in $syms; do echo "$listed" | grep -qx "$s" || bad "exported but not in entry_points.def: $s"; done
# Nothing internal leaks out (all bitslab internals are hidden).
leaked=$(nm -D --defined-only "$lib" | awk '{print $3}' | grep -E '^_ZN7bitslab' | head -5)
[ -z "$leaked" ] || bad "internal symbols exported: $leaked"
# A preloaded allocator must not drag a C++ runtime into C programs.
needed=$(readelf -d "$lib" | grep NEEDED | grep -oE '\[[^]]+\]' | tr -d '[]' | tr '\n' ' ')
case "$needed" in
  *libstdc++*|*libgcc_s*) bad "libbitslab.so depends on a C++ runtime: $needed" ;;
esac

# verify/ is in no production library, and in the checked one.
for l in "$lib" "$lib_secure"; do
  if nm "$l" 2>/dev/null | grep -q heap_check || grep -q "heap check at exit" "$l"; then
    bad "$(basename "$l") contains the heap checker"; fi
done
nm -D --defined-only "$lib_check" | awk '{print $3}' | grep -qx bitslab_heap_check \
  || bad "$(basename "$lib_check") does not export bitslab_heap_check"

[ $fail -eq 0 ] && echo "all $(echo "$listed" | wc -l) listed entry points declared and exported, nothing else; needs only: $needed"
exit $fail
