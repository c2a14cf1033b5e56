#!/usr/bin/env python3
"""Medians of a bench/run.sh results file for whatever allocators and variants
it holds (bench/report.py wants the five default ones): wall time, CPU time
(user + system) and peak RSS per workload, as Markdown tables, in the order
the allocators ran, with each one's ratio to the first.
   compare.py RESULTS_TSV"""
import csv, statistics, sys

rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
work = list(dict.fromkeys(r["workload"] for r in rows))
allocs = list(dict.fromkeys(r["allocator"] for r in rows))

def med(w, a, f):
    return statistics.median(f(r) for r in rows if r["workload"] == w and r["allocator"] == a)

metrics = [("Wall time (s)", lambda r: float(r["wall_s"]), "{:.3f}"),
           ("CPU time, user + system (s)", lambda r: float(r["user_s"]) + float(r["sys_s"]), "{:.2f}"),
           ("Peak RSS (MiB)", lambda r: int(r["maxrss_kb"]) / 1024, "{:.1f}")]
reps = len({r["rep"] for r in rows})
for title, f, fmt in metrics:
    print(f"{title}, median of {reps}; in brackets, the ratio to {allocs[0]}:\n")
    print("| workload | " + " | ".join(allocs) + " |")
    print("|---|" + "---:|" * len(allocs))
    for w in work:
        base = med(w, allocs[0], f)
        cells = [fmt.format(med(w, a, f)) + ("" if a == allocs[0] or not base else f" ({med(w, a, f) / base:.2f})")
                 for a in allocs]
        print(f"| {w} | " + " | ".join(cells) + " |")
    print()
