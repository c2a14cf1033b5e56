// Restartable sequences (rseq), through the C library's registration.
//
// glibc >= 2.35 registers an rseq area for every thread it starts and exports
// where it is (`__rseq_offset` from the thread pointer) and how big
// (`__rseq_size`, 0 when it did not register: an old kernel,
// GLIBC_TUNABLES=glibc.pthread.rseq=0, valgrind). A process has one area per
// thread, so a library must never register its own: the registration that
// came second would fail, or, done first, would take it from glibc.
//
// The area holds the CPU the thread runs on (`cpu_id`, written by the kernel
// before the thread returns to user space on a new CPU) and `rseq_cs`, a
// pointer to the descriptor of the critical section the thread is in. A
// critical section is a run of instructions [start, post_commit) that ends in
// one store, the commit. If the thread is preempted, migrated or signalled
// while its instruction pointer is inside the run, the kernel moves it to the
// section's abort handler instead of resuming it there: the section either
// ran whole on one CPU, with no other thread of that CPU in between, or did
// not commit at all. The abort handler must follow 4 bytes that hold the
// signature glibc registered with (x86-64: 0x53053053).
//
// This header gives the pieces every critical section needs: the area, the
// signature, and the remote fence (membarrier) that aborts the sections
// running on one CPU. The sections themselves are inline assembly next to the
// data they change (lockfree/percpu_slots.h). x86-64 only; elsewhere
// `available()` is false and clients use their other path.
#pragma once
#include <cstddef>
#include <cstdint>

#include <sys/syscall.h>

extern "C" {
// Weak: a C library without them (glibc < 2.35, musl) leaves them null.
extern const ptrdiff_t __rseq_offset __attribute__((weak));
extern const unsigned int __rseq_size __attribute__((weak));
}

namespace lockfree::rseq {

// The kernel ABI's struct rseq, as far as clients read it.
struct Area {
    uint32_t cpu_id_start;
    uint32_t cpu_id;       // the current CPU; >= 0xfffffffe while unregistered
    uint64_t rseq_cs;      // the current critical section's descriptor, or 0
    uint32_t flags;
};

// The kernel ABI's struct rseq_cs (32-byte aligned).
struct Descriptor {
    uint32_t version;
    uint32_t flags;
    uint64_t start_ip;
    uint64_t post_commit_offset;
    uint64_t abort_ip;
};

inline constexpr uint32_t kSignature = 0x53053053;  // glibc's RSEQ_SIG on x86-64
// What cpu_id holds in a thread the kernel has no registration for
// (RSEQ_CPU_ID_UNINITIALIZED). A thread the C library did not create (a raw
// clone) must set it in its own copy of the area before anything reads it.
inline constexpr uint32_t kCpuIdUnregistered = 0xffffffffu;

// Whether the C library registered rseq for its threads. Decided at start-up
// and the same for every thread; a thread whose own registration failed
// reads cpu_id >= 0xfffffffe, which matches no CPU's region.
inline bool available() {
#if defined(__x86_64__)
    return &__rseq_size != nullptr && __rseq_size >= 20;
#else
    return false;
#endif
}

// The calling thread's area (only when available()).
inline Area* area() {
    return reinterpret_cast<Area*>(static_cast<char*>(__builtin_thread_pointer()) + __rseq_offset);
}

// The offset handed to the critical sections, which address the area as
// %fs:offset. Read once by the client into a variable of its own (a load of
// __rseq_offset goes through the GOT; a hidden copy is one RIP-relative load).
inline ptrdiff_t area_offset() { return __rseq_offset; }

// ---- Remote fence ----------------------------------------------------------
// After fence_cpu(cpu) returns, no critical section that was running (or
// preempted inside its run) on that CPU when the call began can still commit:
// the kernel has aborted each one, and a section that starts later reads
// memory as it is after every store the caller made before the call.
// A raw system call (no libc, no errno): callable from threads the C library
// does not know.
inline long raw_membarrier(long cmd, long flags, long cpu) {
#if defined(__x86_64__)
    long ret;
    register long r10 __asm__("r10") = 0;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(static_cast<long>(SYS_membarrier)), "D"(cmd), "S"(flags), "d"(cpu), "r"(r10)
                     : "rcx", "r11", "memory");
    return ret;
#else
    (void)cmd; (void)flags; (void)cpu;
    return -38;  // ENOSYS
#endif
}

inline constexpr long kMembarrierRseqFence = 1 << 7;     // MEMBARRIER_CMD_PRIVATE_EXPEDITED_RSEQ
inline constexpr long kMembarrierRseqRegister = 1 << 8;  // MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ
inline constexpr long kMembarrierFlagCpu = 1;            // MEMBARRIER_CMD_FLAG_CPU

// Once per process, before the first fence_cpu; false if the kernel lacks it
// (then a client must not rely on remote fences).
inline bool register_fences() { return raw_membarrier(kMembarrierRseqRegister, 0, 0) == 0; }

inline bool fence_cpu(unsigned cpu) {
    return raw_membarrier(kMembarrierRseqFence, kMembarrierFlagCpu, static_cast<long>(cpu)) == 0;
}

}  // namespace lockfree::rseq
