#!/usr/bin/env bash
# The cost of bitslab's misuse checks: the same workloads as bench/run.sh with
#   baseline  libbitslab-unchecked.so of this tree (the fast paths without
#             their checks: core/config.h, kFastPathChecks)
#   default   libbitslab.so of this tree (the checks on every free and malloc)
#   hardened  libbitslab-secure.so of this tree
# interleaved in one run, medians of BENCH_REPS (default 5) repetitions, and
# the ratios default/baseline and hardened/baseline (time and peak RSS), plus
# callgrind's instructions per malloc/free pair for each (valgrind has no
# rseq: the per-thread front end) and the disassembly's counts for both.
#   bench/cost.sh [BUILD_DIR]
set -euo pipefail
build=$(cd "${1:-build}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
cmake --build "$build" -j "$(nproc)" --target bitslab bitslab_secure bitslab_unchecked >/dev/null
baseline=$build/libbitslab-unchecked.so
out=$build/cost-results
echo "== instructions per malloc/free pair, per front end (disassembly)"
for lib in "$baseline" "$build/libbitslab.so"; do echo "$(basename "$lib"):"; python3 "$root/bench/fastpath_disasm.py" "$lib"; done
echo
BENCH_VARIANTS="baseline=$baseline default=$build/libbitslab.so hardened=$build/libbitslab-secure.so" \
BENCH_ALLOCATORS="baseline default hardened" "$root/bench/run.sh" "$build" "$out" >/dev/null
echo "== instructions per malloc/free pair (callgrind)"
"$root/bench/fastpath_instructions.sh" "$build/bench/fastpath" "baseline=$baseline" \
  "default=$build/libbitslab.so" "hardened=$build/libbitslab-secure.so"
echo
echo "== wall time and peak RSS, medians of ${BENCH_REPS:-5} (ratios to the baseline)"
python3 - "$out/results.tsv" <<'PY'
import csv, statistics, sys, math
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
work = []
for r in rows:
    if r["workload"] not in work: work.append(r["workload"])
def med(w, a, key):
    return statistics.median(float(r[key]) for r in rows if r["workload"] == w and r["allocator"] == a)
print(f"| workload | baseline s | default s | hardened s | default/baseline | hardened/baseline | RSS default/baseline | RSS hardened/baseline |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
g = {"d": [], "h": [], "rd": [], "rh": []}
for w in work:
    b, d, h = (med(w, a, "wall_s") for a in ("baseline", "default", "hardened"))
    rb, rd, rh = (med(w, a, "maxrss_kb") for a in ("baseline", "default", "hardened"))
    g["d"].append(d / b); g["h"].append(h / b); g["rd"].append(rd / rb); g["rh"].append(rh / rb)
    print(f"| {w} | {b:.3f} | {d:.3f} | {h:.3f} | {d/b:.2f} | {h/b:.2f} | {rd/rb:.2f} | {rh/rb:.2f} |")
gm = lambda xs: math.exp(sum(map(math.log, xs)) / len(xs))
print(f"| **geometric mean** | | | | **{gm(g['d']):.2f}** | **{gm(g['h']):.2f}** | **{gm(g['rd']):.2f}** | **{gm(g['rh']):.2f}** |")
PY
