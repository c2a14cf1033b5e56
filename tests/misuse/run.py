#!/usr/bin/env python3
"""The death-test suite: runs each misuse program (tests/misuse/*.c, *.cpp) as
a child process with bitslab preloaded and checks how it ends.

  run.py BIN_DIR LIBBITSLAB LIBBITSLAB_SECURE LIBBITSLAB_CHECK LIBBITSLAB_SECURE_CHECK

For each program, library variant and BITSLAB_ON_ERROR mode:
  abort  (default)  killed by SIGABRT; stderr is exactly the expected line
  report            exits 0 and prints "survived" (the heap still works);
                    the first stderr line is the expected one, and the heap
                    checker at exit (BITSLAB_CHECK_AT_EXIT=1) finds no broken
                    invariant: run with the variant's checked library (the
                    same allocator plus verify/), since the production
                    libraries hold no checker
  ignore            exits 0, "survived", and nothing from bitslab on stderr
The expected line comes from the program itself ("expect: ..." on stdout),
which knows the pointer it misuses.
"""
import os
import signal
import subprocess
import sys

# Programs whose misuse the default build detects; the others only the
# hardened build (libbitslab-secure.so) detects.
HARDENED_ONLY = {"write_after_free", "overflow_next_slot"}
PROGRAMS = [
    "double_free_small", "double_free_large", "double_free_remote", "double_free_delayed",
    "invalid_free_stack", "invalid_free_static", "invalid_free_interior", "invalid_free_misaligned",
    "invalid_free_interior_large", "free_sized_mismatch", "free_aligned_sized_mismatch",
    "sized_delete_mismatch", "realloc_after_free", "write_after_free", "overflow_next_slot",
    "handed_out_twice", "remote_link_overwritten",
]


def run(binary, lib, mode, check_at_exit=False):
    env = dict(os.environ)
    env["LD_PRELOAD"] = lib
    env.pop("BITSLAB_ON_ERROR", None)
    if mode != "abort":
        env["BITSLAB_ON_ERROR"] = mode
    if check_at_exit:
        env["BITSLAB_CHECK_AT_EXIT"] = "1"
    # No drain of the CPU's stacks behind the program's back (misuse.h);
    # the one program that needs the purger keeps it.
    if not binary.endswith("remote_link_overwritten"):
        env["BITSLAB_BACKGROUND_PURGE"] = "0"
    p = subprocess.run([binary], env=env, capture_output=True, text=True, timeout=120)
    expected = [l[len("expect: "):] for l in p.stdout.splitlines() if l.startswith("expect: ")]
    return p.returncode, p.stdout, p.stderr, expected[0] if expected else None


def check(name, binary, lib, mode):
    """Returns None if the outcome is right, else what went wrong."""
    rc, out, err, expected = run(binary, lib, mode, check_at_exit=(mode == "report"))
    if expected is None:
        return f"no expected line on stdout (rc {rc}): {out.strip()[-200:]}"
    lines = err.splitlines()
    fault_lines = [l for l in lines if l.startswith("bitslab: ") and "heap check at exit" not in l]
    if mode == "abort":
        if rc != -signal.SIGABRT:
            return f"expected SIGABRT, got rc {rc}; stderr: {err.strip()[-300:]}"
        if lines != [expected]:
            return f"stderr is not exactly the expected line:\n      expected: {expected}\n      got:      {err.strip()}"
        return None
    if rc != 0 or "survived" not in out:
        return f"expected exit 0 and 'survived', got rc {rc}; stdout: {out.strip()[-200:]}; stderr: {err.strip()[-300:]}"
    if mode == "report":
        if not fault_lines or fault_lines[0] != expected:
            return f"first fault line is not the expected one:\n      expected: {expected}\n      got:      {fault_lines[:2]}"
        if "bitslab: heap check at exit: ok" not in err:
            return f"heap check at exit did not pass: {err.strip()[-300:]}"
        return None
    if fault_lines:
        return f"ignore mode printed: {fault_lines[0]}"
    return None


def main():
    bin_dir, lib, lib_secure, lib_check, lib_secure_check = sys.argv[1:6]
    checked = {lib: lib_check, lib_secure: lib_secure_check}
    failures = 0
    print(f"{'misuse':30} {'build':9} {'abort':8} {'report':8} {'ignore':8}")
    for name in PROGRAMS:
        binary = os.path.join(bin_dir, "misuse_" + name)
        for variant, library in (("default", lib), ("hardened", lib_secure)):
            if variant == "default" and name in HARDENED_ONLY:
                print(f"{name:30} {variant:9} {'not detected (hardened build only)':26}")
                continue
            cells = []
            for mode in ("abort", "report", "ignore"):
                problem = check(name, binary, checked[library] if mode == "report" else library, mode)
                cells.append("ok" if problem is None else "FAIL")
                if problem:
                    failures += 1
                    print(f"FAIL {name} [{variant}, {mode}]: {problem}")
            print(f"{name:30} {variant:9} {cells[0]:8} {cells[1]:8} {cells[2]:8}")
    print(f"death tests: {'all passed' if failures == 0 else f'{failures} failed'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
