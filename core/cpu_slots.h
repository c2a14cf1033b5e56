// The per-CPU front end's storage: for each CPU (the heap of the same
// number) and each size class, a stack of free blocks in a per-CPU region,
// changed only in restartable sequences (lockfree/percpu_slots.h). It is on
// when the C library registered rseq for its threads (glibc >= 2.35), the
// kernel has membarrier's rseq fence (which the purger needs to drain a
// CPU's stacks), BITSLAB_PER_CPU is not 0, and ThreadSanitizer is not
// watching (it cannot see the exclusion rseq gives). Otherwise the
// per-thread bins of thread_cache.h are the front end. Decided once, when the
// globals are made, before any block exists.
//
// Slot class c (1..kNumClasses) holds blocks of size class c of the CPU's
// heap (or of a class cacheable anywhere); slot class 0 (kForeignSlots)
// holds freed blocks of other heaps of at most kForeignMaxSize bytes, which
// go home in one batch when it is full (cpu_cache.cpp).
//
// Memory bound: a CPU's stacks hold at most kCpuCacheBytes (the sum over
// classes of capacity x class size, plus the foreign stack's at most
// kForeignSlotCount x kForeignMaxSize), so all of them at most possible CPUs
// x that, whatever the number of threads. A thread holds nothing of its own.
#pragma once
#include <cstddef>
#include <cstdint>

#include <atomic>

#include "core/config.h"
#include "core/size_class.h"
#include "lockfree/percpu_slots.h"
#include "lockfree/sanitizer.h"

namespace bitslab {

inline constexpr unsigned kForeignSlots = 0;              // slot class of the foreign stack
inline constexpr uint16_t kForeignSlotCount = 256;
inline constexpr size_t kForeignMaxSize = 512;            // larger foreign blocks go home at once
// A class's stack holds at most this many bytes of blocks (2,048 of 16 B:
// with 1,024, a thread that cycles through 1,600 small blocks at a time sent
// half of them through the slabs' bitmaps and back on every round, 2.6x the
// time per block: docs/BENCHMARKS.md).
inline constexpr size_t kCpuClassBytes = 32 * 1024;
inline constexpr unsigned kCpuRegionShift = 17;           // 128 KiB per CPU, reserved; touched as used

// Blocks a CPU's stack of class cls may hold.
constexpr uint16_t cpu_class_capacity(unsigned cls) {
    size_t n = kCpuClassBytes / kClassSize[cls];
    return static_cast<uint16_t>(n < 2 ? 2 : n);
}

// The words of a region the layout takes (lockfree::PerCpuSlots::words_needed).
constexpr size_t cpu_region_words() {
    size_t words = lockfree::PerCpuSlots::kHeaderWord +
                   ((kNumClasses + 1) * sizeof(lockfree::PerCpuSlots::Header) + 7) / 8 + 1 + kForeignSlotCount;
    for (unsigned c = 1; c <= kNumClasses; ++c) words += 1 + size_t{cpu_class_capacity(c)};
    return words;
}
static_assert(cpu_region_words() <= (size_t{1} << kCpuRegionShift) / 8 && cpu_region_words() <= 65535,
              "the per-CPU layout must fit its region (or the front end falls back to per-thread bins)");

// Bytes one CPU's stacks may hold in all (the bound the docs state).
constexpr size_t cpu_cache_max_bytes() {
    size_t bytes = size_t{kForeignSlotCount} * kForeignMaxSize;
    for (unsigned c = 1; c <= kNumClasses; ++c) bytes += size_t{cpu_class_capacity(c)} * kClassSize[c];
    return bytes;
}

// Turned on (once, never off) by the thread that lays out the regions, with
// release after the layout; read with acquire (a plain load on x86-64).
extern std::atomic<bool> g_cpu_front BITSLAB_INTERNAL;
extern lockfree::PerCpuSlots g_cpu_slots BITSLAB_INTERNAL;

BITSLAB_HOT bool cpu_front_on() {
    // acquire: pairs with the release that turned it on; g_cpu_slots is laid out.
#if defined(__x86_64__) && !defined(__ILP32__) && !defined(LOCKFREE_SANITIZED)
    // The same acquire load as one compare with memory: on x86-64 a plain
    // load has acquire order, and the "memory" clobber keeps the compiler
    // from moving a later access above it. GCC would load the atomic into a
    // register and test it there, one instruction more on every malloc and
    // free. A flag output, not an asm goto: GCC 12's code hoisting (in code
    // optimized for size) can move a load both branches share to just before
    // an asm goto, above the compare, clobber or not.
    bool off;
    asm volatile("cmpb $0, %[front]" : "=@ccz"(off) : [front] "m"(g_cpu_front) : "memory");
    return !off;
#else
    return g_cpu_front.load(std::memory_order_acquire);
#endif
}

// Decides the front end and, if per-CPU, maps and lays out the regions for
// `num_cpus` CPUs. The globals' maker calls it before publishing them; of
// racing makers one does the work and the others go on without waiting
// (their threads may then start on the per-thread bins: a thread whose bins
// hold blocks when the per-CPU front end comes on keeps them until it exits
// or malloc_trim, safely). Raw system calls only (mmap, membarrier).
void cpu_slots_init(unsigned num_cpus);

// Why the front end is what it is (BITSLAB_VERBOSE prints it): set once by
// cpu_slots_init, before g_cpu_front.
enum class FrontEndChoice : int {
    kUndecided,
    kPerCpu,          // on
    kOffByOption,     // BITSLAB_PER_CPU=0
    kNoRseq,          // glibc registered no rseq area (or not x86-64)
    kNoFence,         // membarrier's rseq fence could not be registered
    kNoMemory,        // the regions could not be mapped
    kThreadSanitizer, // TSan cannot see the exclusion rseq gives
};
FrontEndChoice front_end_choice();
const char* front_end_choice_text(FrontEndChoice choice);

// Blocks and bytes in every CPU's stacks now (statistics; a snapshot).
void cpu_slots_census(size_t& blocks, size_t& bytes);

}  // namespace bitslab
