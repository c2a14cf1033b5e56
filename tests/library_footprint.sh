#!/bin/sh
# docs/TUNING.md: every process that loads libbitslab.so holds up to 112 KB
# of its file. The bound is on the pages the library's loadable segments span
# (ld.so maps each from its first page to its last; fault-around makes a
# touched segment resident whole): it fails if the library grows past it. The
# resident pages of the library's mappings in a process that used it are
# shown beside it, and must be there (the library was loaded) and within it.
#   tests/library_footprint.sh LIBBITSLAB
[ -r "$1" ] || { echo "no library: $1"; exit 1; }
lib=$(realpath "$1"); limit_kb=112

# Each LOAD segment's file pages, from readelf's hex offset and file size.
spanned_kb=$(readelf -lW "$lib" | python3 -c '
import sys
pages = 0
for line in sys.stdin:
    f = line.split()
    if f and f[0] == "LOAD":
        off, filesz = int(f[1], 16), int(f[4], 16)
        if filesz: pages += (off + filesz + 4095) // 4096 - off // 4096
print(pages * 4)')
echo "loadable segments: $spanned_kb KB of the file (limit $limit_kb)"

resident_kb=$(LD_PRELOAD="$lib" python3 - "$(basename "$lib")" <<'PY'
import sys
name = sys.argv[1]
keep = []
for i in range(200000):  # sizes up to 20,000 B (CPython takes those up to 512 B from its own arenas)
    keep.append(bytearray(i % 20000 + 1))
    if len(keep) > 1000: keep = keep[500:]
rss, mine = 0, False
for line in open("/proc/self/smaps"):
    fields = line.split()
    if "-" in fields[0] and len(fields) >= 5:  # a mapping's first line
        mine = len(fields) >= 6 and fields[-1].endswith("/" + name)
    elif mine and fields[0] == "Rss:":
        rss += int(fields[1])
print(rss)
PY
)
echo "resident in a process that used it: $resident_kb KB"
fail=0
[ -n "$spanned_kb" ] && [ "$spanned_kb" -gt 0 ] && [ "$spanned_kb" -le "$limit_kb" ] ||
  { echo "FAIL: the file spans $spanned_kb KB"; fail=1; }
[ -n "$resident_kb" ] && [ "$resident_kb" -gt 0 ] || { echo "FAIL: the library was not loaded"; fail=1; }
[ -n "$resident_kb" ] && [ "$resident_kb" -le "$limit_kb" ] || { echo "FAIL: $resident_kb KB of it resident"; fail=1; }
[ $fail -eq 0 ] && echo "library footprint ok"
exit $fail
