#include "core/region.h"

#include <new>

#include "core/arena.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/pool.h"
#include "core/slab_table.h"

namespace bitslab {

// All regions, newest first: push-only, published with release.
static std::atomic<Region*> g_regions{nullptr};
// The region whose slabs are being carved (release/acquire, see map_region).
static std::atomic<Region*> g_carving{nullptr};

Region* region_newest() {
    // acquire: pairs with the push's release; the region's fields are complete.
    return g_regions.load(std::memory_order_acquire);
}

size_t region_count() {
    size_t n = 0;
    for (Region* r = region_newest(); r; r = r->next) ++n;
    return n;
}

// Constructs slab i of region r, held by the caller.
static Slab* construct_slab(Region* r, unsigned i) {
    Slab* s = new (r->slab(i)) Slab();
    s->base = r->base + i * kSlabSize;
    slab_mark_held(s);
    return s;
}

// Carves the next slab of the region being carved; nullptr when it has none left.
static Slab* carve_next() {
    // acquire: pairs with the exchange (acq_rel) that installed the region.
    Region* r = g_carving.load(std::memory_order_acquire);
    if (!r) return nullptr;
    // relaxed: the counter only hands out distinct indices; each descriptor
    // is constructed by the one thread that got its index.
    uint32_t i = r->carved.fetch_add(1, std::memory_order_relaxed);
    return i < kSlabsPerRegion ? construct_slab(r, i) : nullptr;
}

// Maps a new region and carves its first slab for the caller; the region
// becomes the one being carved.
static Slab* map_region() {
#ifdef BITSLAB_SECURE
    // Hardened: one inaccessible chunk after every region, so a linear
    // overflow off a region's last slab faults instead of reaching the next.
    constexpr size_t kGuard = kChunkSize;
#else
    constexpr size_t kGuard = 0;
#endif
    void* memory = arena_take(kSlabSize * kSlabsPerRegion + kGuard);
    if (!memory) memory = os::map_committed_aligned(kSlabSize * kSlabsPerRegion + kGuard, kSlabSize);
    if (!memory) return nullptr;
    if (kGuard) os::protect_none(static_cast<char*>(memory) + kSlabSize * kSlabsPerRegion, kGuard);
    auto base = reinterpret_cast<uintptr_t>(memory);
    void* meta = os::map_metadata(sizeof(Region));
    uint32_t first_index = 0;
    if (!meta || !page_map_reserve(base, kSlabSize * kSlabsPerRegion) ||
        (first_index = slab_table_take_region()) == 0) {
        if (meta) os::unmap(meta, sizeof(Region));
        os::unmap(memory, kSlabSize * kSlabsPerRegion + kGuard);
        return nullptr;
    }
    auto* region = new (meta) Region;
    region->base = base;
    region->first_index = first_index;  // its descriptors' pages stay untouched until carved
    // relaxed: the region is still ours alone; the pushes below publish it.
    region->carved.store(1, std::memory_order_relaxed);  // slab 0 is ours
    Slab* first = construct_slab(region, 0);
    // Publish on the region list (push-only, so no ABA: a plain CAS). release
    // publishes the region to the walkers; relaxed reads of the head, since
    // only the CAS's own comparison depends on it.
    Region* head = g_regions.load(std::memory_order_relaxed);
    do region->next = head;
    while (!g_regions.compare_exchange_weak(head, region, std::memory_order_release, std::memory_order_relaxed));
    // Become the region being carved. If another thread installed a fresh
    // region meanwhile, the older one's uncarved slabs would be stranded:
    // whichever region loses the exchange gives its rest to the pool.
    // acq_rel: release publishes our region to carvers; acquire lets us
    // construct the previous region's remaining slabs.
    Region* previous = g_carving.exchange(region, std::memory_order_acq_rel);
    if (previous) {
        for (;;) {
            // relaxed: as in carve_next, the counter only hands out indices.
            uint32_t i = previous->carved.fetch_add(1, std::memory_order_relaxed);
            if (i >= kSlabsPerRegion) break;
            Slab* untouched = construct_slab(previous, i);
            untouched->purged = true;  // never used: no resident page to give back
            pool_put(kPoolClean, untouched);
        }
    }
    return first;
}

Slab* region_carve_slab() {
    Slab* s = carve_next();
    return s ? s : map_region();
}

}  // namespace bitslab
