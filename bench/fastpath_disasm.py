#!/usr/bin/env python3
"""Instructions on the fast paths of malloc and free, counted in the disassembly.

callgrind cannot count the per-CPU front end: valgrind has no rseq, so under
it the allocator runs the per-thread bins (bench/fastpath_instructions.sh
counts those). This script reads libbitslab.so's code instead
(objdump -d --no-show-raw-insn) and walks each function from its entry:

- a conditional branch is not taken (the fast path is laid out as
  fall-through), except the one on g_cpu_front, which is walked both ways:
  its fall-through is the per-CPU path, its taken target the per-thread path;
- an unconditional jmp is followed;
- a direct call is walked into (the same rules, to the callee's ret), and its
  instructions count, then the walk goes on after the call;
- the walk ends at a ret, which it must reach within MAX_STEPS instructions.

Each per-CPU walk must pass through exactly one rseq commit (a 32-bit store to
0x10(...), the stack header's current) and each per-thread walk through none:
that is how the script knows it walked the paths it means to.

usage: fastpath_disasm.py LIB                      print the table
       fastpath_disasm.py LIB --golden FILE        also compare with FILE:
           fail (exit 1) if a count is above its golden value; a note if below
"""
import re
import subprocess
import sys

MAX_STEPS = 80
FUNCTIONS = ("malloc", "free")
FRONT_ENDS = ("per-cpu", "per-thread")
REG32 = r"%(?:e[abcd]x|esi|edi|ebp|esp|r(?:8|9|1[0-5])d)"
COMMIT = re.compile(r"^mov[l]?\s+" + REG32 + r",0x10\(")
COND_JUMP = re.compile(r"^j(?!mp)[a-z]+\s+([0-9a-f]+)")
JUMP = re.compile(r"^jmp\s+([0-9a-f]+)")
CALL = re.compile(r"^call\s+([0-9a-f]+)")


def disassemble(lib):
    """Address -> [instruction, address of the next one, objdump's comment]; symbol -> address."""
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", lib], check=True, capture_output=True,
                         text=True).stdout
    code, entry, prev = {}, {}, None
    for line in out.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            entry[m.group(2)] = int(m.group(1), 16)
            continue
        m = re.match(r"^\s+([0-9a-f]+):\s+(.*\S)\s*$", line)
        if not m:
            prev = None  # a gap between sections
            continue
        addr = int(m.group(1), 16)
        # The instruction, and objdump's comment (the symbol a RIP-relative operand names).
        text, _, note = m.group(2).partition("#")
        code[addr] = [re.sub(r"\s+", " ", text).strip(), None, note]
        if prev is not None:
            code[prev][1] = addr
        prev = addr
    return code, entry


def walk(code, start, front=None):
    """Instructions from start to the ret of the fast path of `front` (None: a
    called function, which has no branch on g_cpu_front); (count, commits)."""
    addr, steps, commits, seen_front_load, front_taken = start, 0, 0, False, False
    while True:
        if addr not in code:
            raise SystemExit(f"walk left the code at {addr:#x}")
        text, nxt, note = code[addr]
        steps += 1
        if steps > MAX_STEPS:
            raise SystemExit(f"no ret within {MAX_STEPS} instructions from {start:#x} ({front or 'a callee'})")
        if "g_cpu_frontE>" in note:
            seen_front_load = True
        if COMMIT.match(text):
            commits += 1
        if text.startswith("ret"):
            if front is not None and not front_taken:
                raise SystemExit(f"the walk from {start:#x} met no branch on g_cpu_front")
            return steps, commits
        m = JUMP.match(text)
        if m:
            addr = int(m.group(1), 16)
            continue
        m = CALL.match(text)
        if m:
            n, c = walk(code, int(m.group(1), 16))
            steps += n
            commits += c
            addr = nxt
            continue
        m = COND_JUMP.match(text)
        if m and front is not None and seen_front_load and not front_taken:
            # The first conditional branch after the load of g_cpu_front is the front end's.
            front_taken = True
            addr = nxt if front == "per-cpu" else int(m.group(1), 16)
            continue
        addr = nxt


def counts(lib):
    code, entry = disassemble(lib)
    table = {}
    for fn in FUNCTIONS:
        if fn not in entry:
            raise SystemExit(f"{lib} has no symbol {fn}")
        for front in FRONT_ENDS:
            n, commits = walk(code, entry[fn], front)
            want = 1 if front == "per-cpu" else 0
            if commits != want:
                raise SystemExit(f"{fn}, {front}: the walk passed {commits} rseq commit stores, not {want}")
            table[(front, fn)] = n
    for front in FRONT_ENDS:
        table[(front, "pair")] = table[(front, "malloc")] + table[(front, "free")]
    return table


def print_table(table):
    print(f"{'front end':<12} {'function':<8} {'instructions':>12}")
    for front in FRONT_ENDS:
        for fn in FUNCTIONS + ("pair",):
            print(f"{front:<12} {fn:<8} {table[(front, fn)]:>12}")


def read_golden(path):
    golden = {}
    for line in open(path):
        line = line.split("#")[0].split()
        if len(line) == 3:
            golden[(line[0], line[1])] = int(line[2])
    return golden


def main():
    args = sys.argv[1:]
    if len(args) not in (1, 3) or (len(args) == 3 and args[1] != "--golden"):
        raise SystemExit(__doc__)
    table = counts(args[0])
    print_table(table)
    if len(args) == 1:
        return 0
    golden, failed = read_golden(args[2]), False
    for key, n in table.items():
        if key not in golden:
            print(f"FAIL: {key[0]} {key[1]} has no golden value in {args[2]}")
            failed = True
        elif n > golden[key]:
            print(f"FAIL: {key[0]} {key[1]}: {n} instructions, more than the golden {golden[key]}")
            failed = True
        elif n < golden[key]:
            print(f"NOTE: {key[0]} {key[1]}: {n} instructions, fewer than the golden {golden[key]}: "
                  f"lower the value in {args[2]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
