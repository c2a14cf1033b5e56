// Tests: run the calling thread on one CPU, or on every online CPU again.
#pragma once
#include <sched.h>
#include <sys/sysinfo.h>

// False if the CPU is not in the allowed set (a narrow cpuset).
inline bool pin_to(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return sched_setaffinity(0, sizeof set, &set) == 0;
}

inline void unpin_all() {
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c = 0; c < get_nprocs(); ++c) CPU_SET(c, &set);
    sched_setaffinity(0, sizeof set, &set);
}
