// Slab regions: slab memory comes from the OS a region (kSlabsPerRegion
// slabs, 4 MiB) at a time, from the arena if possible and from plain mmap
// otherwise. The region's descriptors are a block of consecutive entries of
// the slab table (core/slab_table.h), which is never unmapped, as the pools'
// algorithm requires, and keeps metadata away from user data.
//
// A region's slabs are carved one at a time, when a heap needs a slab and the
// pools have none: a descriptor is constructed (its page touched) only then,
// so a small program does not pay for 64 descriptors (48 KiB) it never uses.
// Regions are never unmapped; the list of them is what the statistics and
// the heap checker walk (for_each_slab).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/config.h"
#include "core/slab.h"

namespace bitslab {

struct Region {
    Region* next = nullptr;  // all regions, newest first (never removed)
    uintptr_t base = 0;
    uint32_t first_index = 0;  // slab i's descriptor is the table's entry first_index + i
    // Slabs claimed for carving so far (may run past kSlabsPerRegion: those
    // claims failed). Slots below min(carved, kSlabsPerRegion) are constructed.
    // Claimed with relaxed fetch_adds (region.cpp), read with acquire below.
    std::atomic<uint32_t> carved{0};

    Slab* slab(unsigned i) const { return SlabIndex::node(first_index + i); }
    unsigned carved_count() const {
        // acquire, though no release pairs with it (the count is claimed by a
        // relaxed fetch_add before its descriptor is built): the walkers that
        // read it run while no other thread changes the heap, so what they
        // read was published by the program's own synchronization with them.
        uint32_t n = carved.load(std::memory_order_acquire);
        return n < kSlabsPerRegion ? n : kSlabsPerRegion;
    }
};

// A slab no one has used, held by the caller: the next one of the region
// being carved, or else the first one of a newly mapped region (which becomes
// the region being carved; the uncarved rest of the one it replaces goes to
// the clean pool). Null when the OS gives no memory.
Slab* region_carve_slab();

// The newest region (the list runs through Region::next); null before any.
Region* region_newest();
// Regions mapped so far.
size_t region_count();

// Calls visit(Slab&) for every slab carved so far, region by region, until
// it returns false. Racy by nature: its callers (statistics, the heap
// checker) read a consistent heap only when no other thread changes it.
template <class Visit>
void for_each_slab(Visit&& visit) {
    for (Region* r = region_newest(); r; r = r->next)
        for (unsigned i = 0, n = r->carved_count(); i < n; ++i)
            if (!visit(*r->slab(i))) return;
}

}  // namespace bitslab
