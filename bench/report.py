#!/usr/bin/env python3
"""Summarizes bench/run.sh results: medians per workload and allocator, ratios
of bitslab to the best peer (lower is better), geometric means, and optionally
a Markdown report and a gnuplot chart.
   report.py RESULTS_TSV [--markdown OUT.md --chart OUT.png --command CMD --instructions FILE --disasm FILE]"""
import argparse, math, os, statistics, subprocess, sys
from collections import defaultdict

# Every allocator ci/run bench runs; a run may lack one (snmalloc, if its
# build failed): the report then says so and compares with the others.
EXPECTED = ["glibc", "bitslab", "jemalloc", "tcmalloc", "mimalloc", "snmalloc"]
ALLOCATORS = list(EXPECTED)
PEERS = [a for a in ALLOCATORS if a != "bitslab"]
VERSIONS = {"glibc": "glibc 2.36", "jemalloc": "jemalloc 5.3.0", "tcmalloc": "tcmalloc-minimal 2.10",
            "mimalloc": "mimalloc 2.0.9",
            "snmalloc": "snmalloc 0.7.5-1-gf70eb826 (built from source with clang 14, as mimalloc-bench does)"}

# The benchmarks' build without the fast paths' misuse checks (core/config.h,
# kFastPathChecks): not a peer; when the run has it, the report adds what the
# checks cost, measured in the same run.
UNCHECKED = "bitslab-unchecked"

def use_allocators(rows):
    """Narrows ALLOCATORS and PEERS to those in the results; returns the missing ones."""
    present = {a for _, a in rows}
    ALLOCATORS[:] = [a for a in EXPECTED if a in present]
    PEERS[:] = [a for a in ALLOCATORS if a != "bitslab"]
    return [a for a in EXPECTED if a not in present]

# (workload, allocator) whose median wall time is a run stopped at the cap
# (bench/run.sh, BENCH_CAP_S): the time shown is a lower bound.
CAPPED = set()

def load(path):
    rows = defaultdict(list)
    capped = defaultdict(int)
    with open(path) as f:
        next(f)
        for line in f:
            fields = line.rstrip("\n").split("\t")
            rep, w, a, wall, user, sys_, rss = fields[:7]
            rows[(w, a)].append((float(wall), float(user) + float(sys_), int(rss)))
            capped[(w, a)] += len(fields) > 7 and fields[7] == "1"
    # The median is a capped run when at least half of the runs were.
    CAPPED.update(k for k, n in capped.items() if 2 * n >= len(rows[k]))
    return rows

def fmt_time(w, a, t):
    return ("≥" if (w, a) in CAPPED else "") + f"{t:.3f}"

def geomean(xs):
    xs = [x for x in xs if x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")

def summarize(rows):
    workloads = list(dict.fromkeys(w for w, _ in rows))
    med = {}
    for (w, a), runs in rows.items():
        med[(w, a)] = tuple(statistics.median(r[i] for r in runs) for i in range(3))
    table = []
    for w in workloads:
        best_time = min(med[(w, p)][0] for p in PEERS)
        best_rss = min(med[(w, p)][2] for p in PEERS)
        best_peer = min(PEERS, key=lambda p: med[(w, p)][0])
        b = med[(w, "bitslab")]
        table.append(dict(workload=w, times={a: med[(w, a)][0] for a in ALLOCATORS},
                          cpu={a: med[(w, a)][1] for a in ALLOCATORS},
                          rss={a: med[(w, a)][2] for a in ALLOCATORS},
                          time_ratio=b[0] / best_time if best_time else float("nan"),
                          rss_ratio=b[2] / best_rss if best_rss else float("nan"), best_peer=best_peer))
    return table

def checks_cost(rows, table):
    """Per workload: bitslab's and the unchecked build's median times, their
    ratio, and the unchecked build's ratio to the best peer; None if the run
    has no unchecked build."""
    if not any(a == UNCHECKED for _, a in rows):
        return None
    out = []
    for r in table:
        w = r["workload"]
        runs = rows.get((w, UNCHECKED))
        if not runs:  # a run stopped before this workload's unchecked runs
            continue
        u = statistics.median(x[0] for x in runs)
        best = min(r["times"][p] for p in PEERS)
        out.append(dict(workload=w, bitslab=r["times"]["bitslab"], unchecked=u,
                        cost=r["times"]["bitslab"] / u if u else float("nan"),
                        unchecked_ratio=u / best if best else float("nan")))
    return out

def checks_text(cost):
    return (f"misuse checks (same run): bitslab / bitslab-unchecked, geometric mean {geomean([c['cost'] for c in cost]):.2f}; "
            f"bitslab-unchecked / best peer {geomean([c['unchecked_ratio'] for c in cost]):.2f}")

def checks_markdown(cost):
    md = ["| workload | bitslab | bitslab-unchecked | bitslab ÷ unchecked | unchecked ÷ best peer |",
          "|---|---:|---:|---:|---:|"]
    for c in cost:
        md.append(f"| {c['workload']} | {fmt_time(c['workload'], 'bitslab', c['bitslab'])} | "
                  f"{fmt_time(c['workload'], UNCHECKED, c['unchecked'])} | {c['cost']:.2f} | {c['unchecked_ratio']:.2f} |")
    md.append(f"| **geometric mean** | | | **{geomean([c['cost'] for c in cost]):.2f}** | "
              f"**{geomean([c['unchecked_ratio'] for c in cost]):.2f}** |")
    return md

def text_table(table):
    out = []
    head = f"{'workload':<15}" + "".join(f"{a:>10}" for a in ALLOCATORS) + f"{'vs best':>9}{'best peer':>11}{'RSS vs best':>12}"
    out.append(head)
    for r in table:
        out.append(f"{r['workload']:<15}" + "".join(f"{fmt_time(r['workload'], a, r['times'][a]):>10}" for a in ALLOCATORS)
                   + f"{r['time_ratio']:>9.2f}{r['best_peer']:>11}{r['rss_ratio']:>12.2f}")
    out.append(f"geometric mean of bitslab / best peer: time {geomean([r['time_ratio'] for r in table]):.2f}, "
               f"peak RSS {geomean([r['rss_ratio'] for r in table]):.2f}")
    return "\n".join(out)

def markdown(table, command, instructions, chart):
    md = ["| workload | " + " | ".join(ALLOCATORS) + " | bitslab / best peer | best peer | peak RSS: bitslab / best peer |",
          "|---|" + "---:|" * len(ALLOCATORS) + "---:|---|---:|"]
    for r in table:
        cells = [fmt_time(r['workload'], a, r['times'][a]) for a in ALLOCATORS]
        md.append(f"| {r['workload']} | " + " | ".join(cells) + f" | **{r['time_ratio']:.2f}** | {r['best_peer']} | {r['rss_ratio']:.2f} |")
    md.append("| **geometric mean** |" + " |" * len(ALLOCATORS) + f" **{geomean([r['time_ratio'] for r in table]):.2f}** | | **{geomean([r['rss_ratio'] for r in table]):.2f}** |")
    rss = ["| workload | " + " | ".join(ALLOCATORS) + " |", "|---|" + "---:|" * len(ALLOCATORS)]
    for r in table:
        rss.append(f"| {r['workload']} | " + " | ".join(f"{r['rss'][a] / 1024:.1f}" for a in ALLOCATORS) + " |")
    return md, rss

def chart(table, path):
    data = path + ".dat"
    with open(data, "w") as f:
        f.write("workload " + " ".join(ALLOCATORS) + "\n")
        for r in table:
            best = min(r["times"][p] for p in PEERS)
            f.write(r["workload"] + " " + " ".join(f"{r['times'][a] / best:.3f}" for a in ALLOCATORS) + "\n")
    script = f"""set terminal pngcairo size 1200,560 font ',10' noenhanced
set output '{path}'
set title 'Wall time relative to the best peer (lower is better; log scale), median of runs, 2 threads'
set logscale y
set yrange [0.1:*]
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set xtics rotate by -30
set ylabel 'time / best peer'
set grid ytics
set key top left
plot for [i=2:{len(ALLOCATORS) + 1}] '{data}' using i:xtic(1) title columnheader(i)
"""
    subprocess.run(["gnuplot"], input=script.encode(), check=True)
    os.remove(data)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--markdown")
    ap.add_argument("--chart")
    ap.add_argument("--command", default="ci/run bench")
    ap.add_argument("--instructions")
    ap.add_argument("--disasm")  # bench/fastpath_disasm.py's table
    ap.add_argument("--timed")  # bench/fastpath_time.sh's table
    ap.add_argument("--date", default="")
    args = ap.parse_args()
    rows = load(args.results)
    missing = use_allocators(rows)
    missing_note = (f"NOT IN THIS RUN: {', '.join(missing)} (bench printed why); the ratios compare with the others."
                    if missing else "")
    if missing_note:
        print(missing_note)
    table = summarize(rows)
    print(text_table(table))
    cost = checks_cost(rows, table)
    if cost:
        print(checks_text(cost))
    if args.chart:
        chart(table, args.chart)
    if args.markdown:
        md, rss = markdown(table, args.command, args.instructions, args.chart)
        instr = open(args.instructions).read().strip() if args.instructions else "(not measured)"
        disasm = open(args.disasm).read().strip() if args.disasm else "(not measured)"
        timed = open(args.timed).read().strip() if args.timed else "(not measured)"
        checks_section = ("""## What the misuse checks cost (same run)

`bitslab-unchecked` is `libbitslab-unchecked.so`: this tree built with `BITSLAB_UNCHECKED_FOR_BENCH` (core/config.h, `kFastPathChecks`). Its `malloc` and `free` fast paths skip the slot test and the free-mark compares (docs/MISUSE.md); a bin's pop, shared with the per-thread slow path, skips its mark compare too. It keeps everything else: the marks' stores (the slow paths' checks read them), the sized frees' size check, and a compare of the class-map entry that the slot test's tables otherwise make for free. So the first ratio is a lower bound on what the fast paths' checks cost bitslab, and the second is where bitslab would stand without them. It is a measurement build, never installed or offered, and ran interleaved with the others above, next to bitslab.

""" + chr(10).join(checks_markdown(cost)) + chr(10)) if cost else ""
        capped_note = ("\n≥: most runs were stopped at the cap (`BENCH_CAP_S`, bench/run.sh), so the time is a lower bound.\n"
                       if CAPPED else "")
        with open(args.markdown, "w") as f:
            f.write(f"""# Benchmarks

Latest full run: {args.date}, on this project's machine (2 cores, shared and noisy).
Reproduce with `{args.command}`.

Every workload runs with each allocator through `LD_PRELOAD`. Runs are interleaved ({', '.join(ALLOCATORS + ([UNCHECKED] if cost else []))}; bench/run.sh turns the order for each workload and repetition, and reverses it every other repetition), and the figures are medians of the repetitions.

Peer versions: {', '.join(VERSIONS[a] for a in PEERS)}; the others are Debian 12 packages.
{missing_note}

## Wall time (s)

Lower is better. Ratios below 1 mean bitslab is faster than the best peer.

{chr(10).join(md)}
{capped_note}
![time relative to the best peer](benchmarks.png)

## Peak RSS (MiB)

{chr(10).join(rss)}

{checks_section}
## Fast path: instructions per malloc/free pair (callgrind, allocator only)

Exact and repeatable. Collection is on only inside `malloc` and `free`, runs of N and 2N iterations are subtracted, and bitslab's purger is off, whose passes would otherwise add refills that depend on the machine's load (`bench/fastpath_instructions.sh`).

```
{instr}
```

## Fast path: instructions of each front end (disassembly)

valgrind has no rseq, so under callgrind bitslab runs its per-thread front end: the table above counts that one. `bench/fastpath_disasm.py` counts both front ends in `libbitslab.so`'s code (and, second, in `libbitslab-unchecked.so`'s) (`objdump -d`): it walks `malloc` and `free` from their entry, through the fall-through of every conditional branch (the fast path is laid out that way), every `jmp` and into every direct `call` (the per-thread path is a function of its own), to a `ret` (at most 80 instructions), except the branch on `g_cpu_front`, whose fall-through is the per-CPU path and whose target is the per-thread path. Each per-CPU walk must pass exactly one rseq commit (the 32-bit store of the stack's `current`), each per-thread walk none. Static counts of the path a hit takes, not a measurement. The per-thread free counted is the usual one, onto a bin that holds blocks; callgrind's `fastpath pair` frees onto the bin its malloc just emptied, a path a little shorter. The ctest `fastpath_golden` (gcc release build) fails if a count grows above `bench/fastpath_golden.txt`.

```
{disasm}
```

## Fast path: nanoseconds per pair (timed)

`bench/fastpath_time.sh`: a `malloc(16)`/`free` pair, pinned to one CPU, with 1 block live and with 200 (200 mallocs, then 200 frees), thread CPU time, the least of 5 interleaved rounds. `bitslab` runs its per-CPU front end, `bitslab-bins` its per-thread one (`BITSLAB_PER_CPU=0`), and `bitslab-unchecked` the per-CPU one without the misuse checks (the section above).

```
{timed}
```
""")
            findings = os.path.join(os.path.dirname(os.path.abspath(__file__)), "findings.md")
            if os.path.exists(findings):
                f.write("\n" + open(findings).read())

if __name__ == "__main__":
    main()
