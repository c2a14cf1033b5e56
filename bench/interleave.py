#!/usr/bin/env python3
"""Interleaved A/B timing of preloaded libraries on the bench workloads.

  python3 bench/interleave.py ROUNDS "name=LIB name=LIB ..." "WORKLOAD ARGS" ...

Each round runs every workload with every library in turn (LD_PRELOAD=LIB;
an empty LIB is glibc). The order of the libraries rotates by one each round,
so a change in the machine's load slower than a round hits all of them alike
and none always runs first. Prints, per workload and library, the median and
minimum wall time (time.perf_counter around the whole process) over the
rounds, and their ratios to the first library's. A run that exits with an
error is left out and counted ("failed N"). Workloads are the programs in
BUILD/bench (BUILD from $BENCH_BUILD, default ./build). For quick comparisons
of a change against its parent; bench/run.sh makes the full report."""
import os
import statistics
import subprocess
import sys
import time


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    libs = []
    for spec in sys.argv[2].split():
        if "=" not in spec:
            sys.exit("not name=LIB: " + spec)
        name, lib = spec.split("=", 1)
        if lib and not os.path.isfile(lib):  # ld.so would ignore it silently
            sys.exit("no such library: " + lib)
        libs.append((name, os.path.abspath(lib) if lib else ""))
    workloads = sys.argv[3:]
    build = os.environ.get("BENCH_BUILD", "build")
    times, failed = {}, {}
    for r in range(rounds):
        order = libs[r % len(libs):] + libs[:r % len(libs)]
        for w in workloads:
            argv = w.split()
            argv[0] = os.path.join(build, "bench", argv[0])
            for name, lib in order:
                env = dict(os.environ, LD_PRELOAD=lib)
                start = time.perf_counter()
                rc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
                elapsed = time.perf_counter() - start
                if rc != 0:
                    failed[(w, name)] = failed.get((w, name), 0) + 1
                else:
                    times.setdefault((w, name), []).append(elapsed)
    for w in workloads:
        base = times.get((w, libs[0][0]))
        cells = []
        for name, _ in libs:
            t = times.get((w, name))
            cell = name
            if t and base:
                cell += " med %.4f (x%.3f) min %.4f (x%.3f)" % (
                    statistics.median(t), statistics.median(t) / statistics.median(base), min(t), min(t) / min(base))
            if failed.get((w, name)):
                cell += " failed %d" % failed[(w, name)]
            cells.append(cell)
        print("%-32s %s" % (w, "  ".join(cells)))


if __name__ == "__main__":
    main()
