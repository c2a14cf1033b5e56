// Statistics: a snapshot of the heap, taken by walking the slab descriptors
// (no counter on any fast path), plus a few slow-path counters (remote
// frees, OS mappings, purged bytes). Printed as text or JSON
// (bitslab_stats_print; at exit with BITSLAB_SHOW_STATS=1 or =json), and
// behind glibc's malloc_stats, mallinfo2 and malloc_info.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/size_class.h"

namespace bitslab {

struct ClassStats {
    uint64_t slabs = 0;        // slabs of this class owned by the heap
    uint64_t used_blocks = 0;  // slots not free in their bitmaps: live, or cached by a thread
    uint64_t free_blocks = 0;  // free slots in those slabs
};

struct HeapStats {
    ClassStats cls[kNumClasses + 1];
    uint64_t remote_frees = 0;
};

struct Stats {
    uint32_t num_heaps = 0;
    HeapStats* heaps = nullptr;  // the caller's array of num_heaps entries, or null for totals only
    uint64_t regions = 0;        // 4 MiB slab regions mapped
    uint64_t slabs_carved = 0;
    uint64_t slabs_pooled_dirty = 0;
    uint64_t slabs_pooled_clean = 0;
    uint64_t small_used_bytes = 0;  // Σ used_blocks × slot size
    uint64_t small_free_bytes = 0;  // Σ free_blocks × slot size
    uint64_t large_blocks = 0, large_bytes = 0, large_pinned_bytes = 0, large_cached_bytes = 0;
    uint64_t os_mapped_bytes = 0, os_map_calls = 0, purged_bytes = 0;
};

// Fills `out` (whose heaps array, if any, has room for out.num_heaps on
// entry) from a walk of the heap. Racy by nature: a
// consistent picture only when no other thread allocates.
void stats_snapshot(Stats& out);

// Writes the statistics to `fd` as text (json false) or one JSON object.
void stats_print(int fd, bool json);

}  // namespace bitslab
