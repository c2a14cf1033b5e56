#!/usr/bin/env python3
"""Interleaved A/B timing of preloaded libraries on the bench workloads.

  python3 bench/interleave.py ROUNDS "name=LIB name=LIB ..." "WORKLOAD ARGS" ...

Each round runs every workload with every library in turn (LD_PRELOAD=LIB;
an empty LIB is glibc), so a change in the machine's load hits all of them
alike. Prints, per workload and library, the median and minimum wall time
(time.perf_counter around the whole process) over the rounds, and their
ratios to the first library. Workloads are the programs in BUILD/bench
(BUILD from $BENCH_BUILD, default ./build). For quick comparisons of a change
against its parent; bench/run.sh makes the full report."""
import os
import statistics
import subprocess
import sys
import time

def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    libs = [v.split("=", 1) for v in sys.argv[2].split()]
    workloads = sys.argv[3:]
    build = os.environ.get("BENCH_BUILD", "build")
    times = {}
    for _ in range(rounds):
        for w in workloads:
            argv = w.split()
            argv[0] = os.path.join(build, "bench", argv[0])
            for name, lib in libs:
                env = dict(os.environ, LD_PRELOAD=lib)
                start = time.perf_counter()
                subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                times.setdefault((w, name), []).append(time.perf_counter() - start)
    for w in workloads:
        base = times[(w, libs[0][0])]
        cells = []
        for name, _ in libs:
            t = times[(w, name)]
            cells.append("%s med %.4f (x%.3f) min %.4f (x%.3f)" % (
                name, statistics.median(t), statistics.median(t) / statistics.median(base), min(t), min(t) / min(base)))
        print("%-32s %s" % (w, "  ".join(cells)))

if __name__ == "__main__":
    main()
