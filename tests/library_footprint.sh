#!/bin/sh
# docs/TUNING.md: every process that loads libbitslab.so holds up to 112 KB
# of its file. Measured two ways, each of which fails if the library grows:
# the pages its loadable segments span (readelf), and the resident pages of
# its mappings in a process that made 200,000 allocations of every small
# and some large size (/proc/self/smaps, read at the end of that process).
#   tests/library_footprint.sh LIBBITSLAB
[ -r "$1" ] || { echo "no library: $1"; exit 1; }
lib=$(realpath "$1"); limit_kb=112

spanned_kb=$(readelf -lW "$lib" | awk '$1 == "LOAD" {
    off = strtonum($2); filesz = strtonum($5)
    if (filesz > 0) pages += int((off + filesz + 4095) / 4096) - int(off / 4096) }
  END { print pages * 4 }')
echo "loadable segments: $spanned_kb KB of the file (limit $limit_kb)"

resident_kb=$(LD_PRELOAD="$lib" python3 - "$(basename "$lib")" <<'PY'
import sys
name = sys.argv[1]
keep = []
for i in range(200000):  # every small size (up to 16 KiB) and some large ones
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
[ "$spanned_kb" -gt 0 ] && [ "$spanned_kb" -le "$limit_kb" ] || { echo "FAIL: the file spans $spanned_kb KB"; fail=1; }
[ -n "$resident_kb" ] && [ "$resident_kb" -gt 0 ] || { echo "FAIL: the library was not loaded"; fail=1; }
[ -n "$resident_kb" ] && [ "$resident_kb" -le "$limit_kb" ] || { echo "FAIL: $resident_kb KB of it resident"; fail=1; }
[ $fail -eq 0 ] && echo "library footprint ok"
exit $fail
