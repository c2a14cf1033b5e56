// Compile-time constants of bitslab, and the attributes that mark hot and cold code.
#pragma once
#include <cstddef>
#include <cstdint>

#define BITSLAB_HOT inline __attribute__((always_inline))
#define BITSLAB_COLD __attribute__((noinline, cold))
#define BITSLAB_LIKELY(x) __builtin_expect(!!(x), 1)
#define BITSLAB_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define BITSLAB_EXPORT extern "C" __attribute__((visibility("default")))
// On extern declarations of globals the fast paths read: lets the compiler
// address them PC-relative instead of through the GOT.
#define BITSLAB_INTERNAL __attribute__((visibility("hidden")))

namespace bitslab {

// A slab is one chunk: 64 KiB, aligned to 64 KiB. The page map has one entry per chunk.
inline constexpr unsigned kChunkShift = 16;
inline constexpr size_t kChunkSize = size_t{1} << kChunkShift;
inline constexpr size_t kSlabSize = kChunkSize;

// Slabs are mapped from the OS a region at a time.
inline constexpr unsigned kSlabsPerRegion = 64;  // 4 MiB of slab memory

// The fast paths' misuse checks (the slot test and the free-mark compares,
// docs/MISUSE.md) are always on, except in libbitslab-unchecked.so: a build
// that only the benchmarks make (ci/run bench, bench/cost.sh), to measure in
// the same run what the checks cost. It keeps the marks' stores (the slow
// paths' checks read them) and also skips the mark compare of a bin's pop,
// which the per-thread slow path shares. It is never installed or offered.
#ifdef BITSLAB_UNCHECKED_FOR_BENCH
#ifdef BITSLAB_SECURE
#error "BITSLAB_UNCHECKED_FOR_BENCH measures the default build's checks: not with BITSLAB_SECURE"
#endif
inline constexpr bool kFastPathChecks = false;
#else
inline constexpr bool kFastPathChecks = true;
#endif

// Every block is at least 16-byte aligned (glibc's guarantee on x86-64).
inline constexpr size_t kMinAlign = 16;

// Cache line size: blocks whose size is a multiple of it share no line.
inline constexpr size_t kCacheLine = 64;

// Largest small size; above it a block comes straight from the OS.
inline constexpr size_t kMaxSmallSize = 16384;

// Per-thread caches. Their bins' limits are paid from a per-thread budget:
// kThreadCacheBaseBytes that every thread has, plus grants of
// kThreadCacheGrant bytes from a process-wide pool of kCacheGrantPoolBytes,
// up to kThreadCacheMaxBytes in all; grants go back to the pool when a
// thread rebalances or exits. The foreign batch (below) is paid from the same
// budget. So one busy thread may cache up to 1 MiB, and N live threads
// together at most N x 64 KiB + 32 MiB, bins and batches included.
inline constexpr size_t kThreadCacheBaseBytes = 64 * 1024;
inline constexpr size_t kThreadCacheGrant = 64 * 1024;
inline constexpr size_t kThreadCacheMaxBytes = 1024 * 1024;
inline constexpr size_t kCacheGrantPoolBytes = size_t{32} << 20;
// The most bytes and blocks one bin may hold.
inline constexpr size_t kBinMaxBytes = 64 * 1024;
inline constexpr uint32_t kBinMaxBlocks = 2048;

// Freed blocks of other heaps wait in a per-thread batch of at most this many
// blocks and bytes (and no more than the thread's unspent cache budget)
// before going back to their owners.
inline constexpr uint32_t kForeignBatchBlocks = 512;
inline constexpr uint32_t kForeignBatchBytes = 64 * 1024;

// A heap returns its empty slabs of a class to the global pool once it holds
// more than this many of them (it keeps these few to avoid ping-pong).
inline constexpr unsigned kEmptySlabsKept = 1;

// Upper bound on CPU ids we size tables for (ids beyond it are folded).
inline constexpr unsigned kMaxHeaps = 1024;

}  // namespace bitslab
