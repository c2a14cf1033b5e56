#!/bin/bash
# Instructions per malloc/free pair, allocator only, counted exactly by callgrind.
# Collection is switched on only inside malloc and free (--toggle-collect), and
# two runs with N and 2N iterations are subtracted so start-up cost cancels.
# bitslab's purger is off (BITSLAB_BACKGROUND_PURGE=0; other allocators ignore
# it): its passes take back the bins of a thread that made no slow path for a
# pass, so with it on the count depended on how many passes fell into the
# run, which depends on the machine's load (`batch`: 67 a pair on a quiet
# machine, 78 to 118 during a CI run; with it off, 67.000 every time).
# usage: fastpath_instructions.sh FASTPATH_BINARY NAME=PRELOAD [NAME=PRELOAD...]
#        (an empty PRELOAD means the system allocator, glibc)
set -eu
fastpath="$1"; shift
count() {  # preload mode n -> Ir inside malloc/free, or nothing if the program failed under valgrind
  local out rc=0; out=$(mktemp)
  valgrind --tool=callgrind --callgrind-out-file="$out" \
    --toggle-collect=malloc --toggle-collect=free --toggle-collect=__libc_malloc --toggle-collect=__libc_free \
    --trace-children=yes env BITSLAB_BACKGROUND_PURGE=0 LD_PRELOAD="$1" "$fastpath" "$2" "$3" > /dev/null 2>&1 || rc=$?
  [ $rc -eq 0 ] && callgrind_annotate "$out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1; exit}'
  rm -f "$out"
}
printf "%-10s %12s %12s\n" allocator "pair(16B)" "batch(64B)"
for spec in "$@"; do
  name="${spec%%=*}"; preload="${spec#*=}"
  row="$name"
  for mode in pair batch; do
    a=$(count "$preload" $mode 1000000); b=$(count "$preload" $mode 2000000)
    # Rounded, not truncated: 66,999,999 instructions in a million pairs are 67 a pair.
    if [ -n "$a" ] && [ -n "$b" ]; then row="$row $(( (b - a + 500000) / 1000000 ))"; else row="$row n/a"; failed=1; fi
  done
  printf "%-10s %12s %12s\n" $row
done
# snmalloc reserves its whole page map up front, more address space than valgrind gives.
[ -z "${failed:-}" ] || echo "n/a: the program did not run under valgrind with that allocator"

