#!/usr/bin/env bash
# Memory held with 1, 100, 1,000 and 10,000 threads alive at once, each
# having allocated and freed (bench/live_threads.c), per allocator: the
# resident memory's growth, and for bitslab the small bytes its bitmaps
# count as handed out (its front caches, plus blocks pending on remote-free
# stacks). The "idle" column: 10,000 threads that allocate nothing (their
# stacks and the thread library's blocks, the same for every allocator).
# Medians of BENCH_REPS runs (default 3), each in a fresh process; prints
# two Markdown tables.
#   bench/live_threads.sh [BUILD_DIR]
# The allocators: bench/allocators.sh (BENCH_VARIANTS, BENCH_ALLOCATORS).
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/allocators.sh"
reps=${BENCH_REPS:-3}
COUNTS=(1 100 1000 10000 idle)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for ((rep = 1; rep <= reps; rep++)); do
  for n in "${COUNTS[@]}"; do
    args=$n; [ "$n" = idle ] && args="10000 64 idle"
    for a in "${ALLOCATORS[@]}"; do
      line=$(env LD_PRELOAD="${PRELOAD[$a]}" ${VARENV[$a]:-} "$build/bench/live_threads" $args)
      echo "$a $n $line" >> "$out"
    done
  done
done
python3 - "$out" "${ALLOCATORS[@]}" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    a, n, rest = line.split(" ", 2)
    rss = int(re.search(r"rss_growth_kib=(-?\d+)", rest).group(1))
    cached = int(re.search(r"cached_kib=(-?\d+)", rest).group(1))
    rows.setdefault((a, n), []).append((rss, cached))
allocs, counts = sys.argv[2:], ["1", "100", "1000", "10000", "idle"]
head = "| allocator | 1 thread | 100 | 1,000 | 10,000 | 10,000 idle |\n|---|---:|---:|---:|---:|---:|"
def med(a, n, i): return statistics.median(r[i] for r in rows[(a, n)])
def mib(kib): return f"{kib / 1024:.1f}"
print("Resident memory growth (MiB) while the threads are alive:\n")
print(head)
for a in allocs:
    print(f"| {a} | " + " | ".join(mib(med(a, n, 0)) for n in counts) + " |")
bitslabs = [a for a in allocs if med(a, "1", 1) >= 0]
if bitslabs:
    print("\nbitslab: small bytes in use beyond the start (MiB; front caches + pending remote frees + the thread library's blocks, which the idle column shows alone):\n")
    print(head)
    for a in bitslabs:
        print(f"| {a} | " + " | ".join(mib(med(a, n, 1)) for n in counts) + " |")
PY
