#include "core/slab_table.h"

#include <sys/mman.h>

namespace bitslab {

// Published by one acq_rel CAS (table_word); SlabIndex reads it relaxed (slab.h says why).
std::atomic<uintptr_t> g_slab_table{0};

// Blocks handed out (or claimed past the end: those claims failed). 64 bits:
// failed claims keep counting and must never wrap to a used block.
// relaxed: a partition counter (see slab_table_take_region).
static std::atomic<uint64_t> g_next_block{1};  // block 0 holds index 0

// Smallest reservation worth having: 15 regions (60 MiB of slabs).
static constexpr size_t kMinBlocks = 16;
// When the OS refuses the full size, the table keeps this fraction of the
// largest size it did grant, leaving the rest of the address space to slabs.
// A descriptor is 1/85 of its slab, and the size granted while halving is
// over half of the address space that was free, so 1/32 of it describes
// more slab memory than could be mapped (85/64 of what was free, at least).
static constexpr size_t kShareWhenLimited = 32;
static_assert((kSlabTableMaxBlocks & (kSlabTableMaxBlocks - 1)) == 0 && (kMinBlocks & (kMinBlocks - 1)) == 0);

// The table's word, reserving it on first use; 0 if the OS refuses (tried
// again next time: a limit may ease once memory is freed).
static uintptr_t table_word() {
    // acquire: pairs with the CAS that published the reservation.
    uintptr_t word = g_slab_table.load(std::memory_order_acquire);
    if (word) return word;
    // PROT_NONE + MAP_NORESERVE: address space only, nothing is committed.
    // Take the largest range the OS allows (RLIMIT_AS limits it).
    size_t blocks = kSlabTableMaxBlocks;
    void* raw = MAP_FAILED;
    for (; blocks >= kMinBlocks; blocks /= 2) {
        raw = mmap(nullptr, blocks * kSlabTableBlockBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (raw != MAP_FAILED) break;
    }
    if (raw == MAP_FAILED) return 0;
    if (blocks < kSlabTableMaxBlocks) {  // address space is limited: keep a share, give the rest back
        size_t keep = blocks / kShareWhenLimited > kMinBlocks ? blocks / kShareWhenLimited : kMinBlocks;
        if (keep < blocks) munmap(static_cast<char*>(raw) + keep * kSlabTableBlockBytes, (blocks - keep) * kSlabTableBlockBytes);
        blocks = keep;
    }
    auto start = reinterpret_cast<uintptr_t>(raw);
    word = start | static_cast<uintptr_t>(__builtin_ctzll(blocks));
    uintptr_t winner = 0;
    // acq_rel: one reservation wins; a loser gives its own back and uses the
    // winner's (acquire). No thread waits for another.
    if (!g_slab_table.compare_exchange_strong(winner, word, std::memory_order_acq_rel, std::memory_order_acquire)) {
        munmap(raw, blocks * kSlabTableBlockBytes);
        word = winner;
    }
    return word;
}

size_t slab_table_slabs() {
    // relaxed: a bound for walks over lists, not a count anything relies on.
    return static_cast<size_t>(g_next_block.load(std::memory_order_relaxed)) * kSlabsPerRegion;
}

uint32_t slab_table_take_region() {
    uintptr_t word = table_word();
    if (!word) return 0;
    uint64_t blocks = uint64_t{1} << (word & kSlabTableSizeBits);
    // relaxed: the counter only partitions the table; the caller publishes
    // the region (and so its descriptors) with release.
    uint64_t block = g_next_block.fetch_add(1, std::memory_order_relaxed);
    if (block >= blocks) return 0;  // full
    void* descriptors = reinterpret_cast<void*>((word & ~kSlabTableSizeBits) + block * kSlabTableBlockBytes);
    // Committed but untouched: a page becomes resident when a slab on it is carved.
    if (mprotect(descriptors, kSlabTableBlockBytes, PROT_READ | PROT_WRITE) != 0) return 0;  // the block is lost
    return static_cast<uint32_t>(block * kSlabsPerRegion);
}

}  // namespace bitslab
