#!/usr/bin/env bash
# Runs every workload with bitslab and its peers via LD_PRELOAD, interleaved
# (A B C D E, then E D C B A turned by one, ...), records wall time, CPU time and peak RSS, then
# reports medians and ratios to the best peer (bench/report.py).
#   bench/run.sh [--quick] BUILD_DIR OUT_DIR
# The allocators: bench/allocators.sh (BENCH_VARIANTS, BENCH_ALLOCATORS).
set -euo pipefail
quick=0
if [ "${1:-}" = "--quick" ]; then quick=1; shift; fi
build=$(cd "${1:-build}" && pwd); out=${2:-$build/bench-results}
mkdir -p "$out"
. "$(dirname "$0")/allocators.sh"  # PRELOAD, VARENV, ALLOCATORS (BENCH_VARIANTS, BENCH_ALLOCATORS)
T=${BENCH_THREADS:-2}

# name | full arguments | quick arguments  (each full run takes about 0.5-3 s with glibc;
# the last four, from issue 15, about 0.3-1 s with bitslab)
WORKLOADS=(
  "collatz_list|collatz_list 1000000 $T|collatz_list 100000 $T"
  "collatz_vec|collatz_vec 1000000 $T|collatz_vec 100000 $T"
  "larson|larson $T 500 1000 20000|larson $T 10 1000 2000"
  "xmalloc|xmalloc $T 4000000|xmalloc $T 200000"
  "cache_scratch|cache_scratch passive $T 10000 20000 8|cache_scratch passive $T 100 1000 8"
  "cache_thrash|cache_scratch active $T 10000 20000 8|cache_scratch active $T 100 1000 8"
  "mstress|mstress $T 150 40000|mstress $T 4 5000"
  "shortlived|shortlived 60000000 64|shortlived 2000000 64"
  "realloc_growth|realloc_growth $T 20000 8388608|realloc_growth $T 20 1048576"
  "large_blocks|large_blocks $T 4000|large_blocks $T 100"
  "thread_churn|thread_churn $T 5000|thread_churn $T 500"
  "crossfree4|crossfree 4 40000 64|crossfree 4 2000 64"
  "crossfree16|crossfree 16 10000 64|crossfree 16 500 64"
  "batchpool|batchpool $T $T 50000 64|batchpool $T $T 1000 64"
  "server|server $T 400 1000 40000|server $T 10 1000 1000"
  "smallbatch|smallbatch 40000000|smallbatch 400000"
)
# server_sized frees with free_sized, which glibc has only from 2.43 (and
# jemalloc, tcmalloc and mimalloc's Debian builds not at all): it runs only if
# every allocator of the run provides it.
sized_ok=1
for a in "${ALLOCATORS[@]}"; do
  env LD_PRELOAD="${PRELOAD[$a]}" ${VARENV[$a]:-} "$build/bench/server" --has-free-sized || { sized_ok=0; break; }
done
if [ $sized_ok -eq 1 ]; then WORKLOADS+=("server_sized|server $T 400 1000 40000 sized|server $T 10 1000 1000 sized")
else echo "bench: server_sized skipped: $a has no free_sized (glibc has it from 2.43)" >&2; fi
# BENCH_WORKLOADS="name ..." runs only those workloads (default: all).
if [ -n "${BENCH_WORKLOADS:-}" ]; then
  picked=()
  for w in "${WORKLOADS[@]}"; do
    for want in $BENCH_WORKLOADS; do [ "${w%%|*}" = "$want" ] && picked+=("$w"); done
  done
  [ ${#picked[@]} -eq 0 ] && { echo "BENCH_WORKLOADS names no workload: $BENCH_WORKLOADS" >&2; exit 1; }
  WORKLOADS=("${picked[@]}")
fi
reps=${BENCH_REPS:-5}
[ $quick -eq 1 ] && reps=1
# A run is stopped (SIGTERM, then SIGKILL 5 s later) after this many seconds
# and recorded at the cap,
# marked capped: on a loaded machine a peer's realloc_growth took 501 s where
# it took 43 s the day before, and such runs only bound a ratio bitslab is
# never compared with (the best peer's time is far below it).
cap=${BENCH_CAP_S:-30}

results=$out/results.tsv
printf "rep\tworkload\tallocator\twall_s\tuser_s\tsys_s\tmaxrss_kb\tcapped\n" > "$results"
for ((rep = 1; rep <= reps; rep++)); do
  wi=0
  for w in "${WORKLOADS[@]}"; do
    IFS='|' read -r name full quick_args <<< "$w"
    args=$full; [ $quick -eq 1 ] && args=$quick_args
    # The allocators' order turns by one for each workload and repetition,
    # and runs backwards in even repetitions: no allocator always runs first,
    # or always right after the same one, while the machine's load changes.
    # Neighbours in ALLOCATORS (bitslab and bitslab-unchecked) stay
    # neighbours but for one turn in n.
    n=${#ALLOCATORS[@]}; order=()
    for ((i = 0; i < n; i++)); do
      j=$(( (i + rep - 1 + wi) % n )); ((rep % 2 == 0)) && j=$(( (2 * n - 1 - i + rep - 1 + wi) % n ))
      order+=("${ALLOCATORS[j]}")
    done
    wi=$((wi + 1))
    for a in "${order[@]}"; do
      pre=${PRELOAD[$a]}
      if [ -n "$pre" ] && [ ! -e "$pre" ]; then echo "missing $pre" >&2; exit 1; fi
      # Wall time in milliseconds from the clock (/usr/bin/time's %e has only
      # 10 ms steps, too coarse for the shortest workloads); CPU time and peak
      # RSS from /usr/bin/time.
      # timeout runs the program (env execs it with the preload), so time's
      # %M is the program's peak RSS and %x timeout's status: 124 (or 137
      # after the KILL) when the cap stopped it.
      t0=$(date +%s%N)
      m=$( { /usr/bin/time -f "%U %S %M %x" timeout -k 5 "$cap" env LD_PRELOAD="$pre" ${VARENV[$a]:-} \
               "$build/bench/"$args >/dev/null || true; } 2>&1 | tail -1 )
      t1=$(date +%s%N)
      wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
      read -r user sys rss status <<< "$m"
      capped=0
      if [ "$status" = 137 ] || [ "$status" = 124 ]; then
        capped=1; wall=$cap
      elif [ "$status" != 0 ]; then
        echo "bench: $args with $a failed (status $status)" >&2; exit 1
      fi
      printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$rep" "$name" "$a" "$wall" "$user" "$sys" "$rss" "$capped" >> "$results"
    done
  done
  echo "  repetition $rep of $reps done" >&2
done
echo "$results"
