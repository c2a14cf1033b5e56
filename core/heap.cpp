#include "core/heap.h"

#include <errno.h>
#include <string.h>

#include <new>

#include "core/arena.h"
#include "core/fault.h"
#include "core/purge.h"
#include "core/os.h"
#include "core/page_map.h"

namespace bitslab {

std::atomic<Globals*> g_globals{nullptr};
static __thread int t_fake_cpu __attribute__((tls_model("initial-exec"))) = -1;

void set_fake_cpu(int cpu) { t_fake_cpu = cpu; }

Globals* globals_slow() {
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (g) return g;
    unsigned n = os::possible_cpus();
    if (n > kMaxHeaps) n = kMaxHeaps;
    size_t heaps_offset = (sizeof(Globals) + alignof(Heap) - 1) & ~(alignof(Heap) - 1);
    size_t bytes = heaps_offset + sizeof(Heap) * n;
    void* mem = os::map_metadata(bytes);
    if (!mem) { errno = ENOMEM; return nullptr; }
    free_mark_init();  // before any block exists
    auto* fresh = new (mem) Globals();
    fresh->num_heaps = n;
    fresh->heaps = reinterpret_cast<Heap*>(static_cast<char*>(mem) + heaps_offset);
    for (unsigned i = 0; i < n; ++i) {
        Heap* h = new (&fresh->heaps[i]) Heap();
        h->index = i;
        h->class_map = arena_class_map_create();
    }
    // acq_rel: release publishes the constructed heaps; acquire on failure
    // so we can use the winner's.
    if (g_globals.compare_exchange_strong(g, fresh, std::memory_order_acq_rel, std::memory_order_acquire))
        return fresh;
    for (unsigned i = 0; i < n; ++i)
        if (fresh->heaps[i].class_map) os::unmap(fresh->heaps[i].class_map, kArenaChunks * sizeof(ClassMap));
    os::unmap(mem, bytes);
    return g;
}

Heap& heap_at(uint32_t index) {
    return g_globals.load(std::memory_order_acquire)->heaps[index];
}

Heap& current_heap(Globals* g) {
    int cpu = t_fake_cpu >= 0 ? t_fake_cpu : os::current_cpu();
    // Ids can exceed the possible count (containers, odd numbering): fold them.
    return g->heaps[static_cast<unsigned>(cpu) % g->num_heaps];
}

void heap_map_slab(uintptr_t base, uint32_t owner, unsigned cls) {
    Globals* g = g_globals.load(std::memory_order_acquire);
    bool anywhere = cls != 0 && class_cacheable_anywhere(cls);
    for (uint32_t i = 0; i < g->num_heaps; ++i)
        arena_set_class(g->heaps[i].class_map, base, (i == owner || anywhere) ? cls : 0);
}

// Constructs slab i of region r, held by the caller.
static Slab* construct_slab(Region* r, unsigned i) {
    Slab* s = new (r->slab(i)) Slab();
    s->base = r->base + i * kSlabSize;
    slab_mark_held(s);
    return s;
}

// Carves the next slab of the region being carved; nullptr when it has none left.
static Slab* carve_slab(Globals* g) {
    // acquire: pairs with the release that published the region.
    Region* r = g->carving.load(std::memory_order_acquire);
    if (!r) return nullptr;
    // relaxed: the counter only hands out distinct indices; each descriptor
    // is constructed by the one thread that got its index.
    uint32_t i = r->carved.fetch_add(1, std::memory_order_relaxed);
    return i < kSlabsPerRegion ? construct_slab(r, i) : nullptr;
}

// Maps a new region and carves its first slab for the caller; the region
// becomes the one being carved.
static Slab* map_region(Globals* g) {
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
    region->carved.store(1, std::memory_order_relaxed);  // slab 0 is ours
    Slab* first = construct_slab(region, 0);
    // Publish on the region list (push-only, so plain CAS; release publishes the
    // region to the heap checker).
    Region* head = g->regions.load(std::memory_order_relaxed);
    do region->next = head;
    while (!g->regions.compare_exchange_weak(head, region, std::memory_order_release, std::memory_order_relaxed));
    // Become the region being carved. If another thread installed a fresh
    // region meanwhile, the older one's uncarved slabs would be stranded:
    // whichever region loses the exchange gives its rest to the pool.
    Region* previous = g->carving.exchange(region, std::memory_order_acq_rel);
    if (previous) {
        for (;;) {
            uint32_t i = previous->carved.fetch_add(1, std::memory_order_relaxed);
            if (i >= kSlabsPerRegion) break;
            Slab* untouched = construct_slab(previous, i);
            untouched->purged = true;  // never used: no resident page to give back
            slab_list(g->clean_pool, untouched, kWherePooled);
        }
    }
    return first;
}

uint32_t heap_take(Heap& h, unsigned cls, uint32_t want, Chain& out) {
    heap_drain_remote(h);
    uint32_t got = 0;
    while (got < want) {
        Slab* s = slab_take(h.partial[cls]);
        if (!s) s = slab_take(h.partial_swept[cls]);
        if (!s) {
            if (got) break;  // serve what we have rather than open a new slab
            Globals* g = globals();
            // Dirty slabs first (their pages are resident already), then
            // purged ones, then new memory.
            s = slab_take(g->dirty_pool);
            if (!s) s = slab_take(g->aging_pool);
#ifdef BITSLAB_SECURE
            // Free slots must read as zero (thread_cache.cpp); a used slab
            // holds its previous class's links and marks at other offsets.
            if (s && !s->purged) memset(reinterpret_cast<void*>(s->base), 0, kSlabSize);
#endif
            if (!s) s = slab_take(g->clean_pool);
            if (!s) s = carve_slab(g);
            if (!s) s = map_region(g);
            if (!s) { errno = ENOMEM; break; }
            slab_assign(s, h.index, cls);
        }
        got += slab_claim(s, want - got, out);
        slab_release_hold(s);
    }
    return got;
}

void heap_drain_remote(Heap& h) {
    lockfree::StackNode* chain = h.remote.take_all();
    if (!chain) return;
    LocalFreeBatch batch;
    // The walk is bounded even if a block was pushed twice (a cycle): every
    // block of a cycle comes round again, and the batch reports a repeat
    // within one more step (the pending word's mask, or the bitmap at the
    // next word change); the walk stops there, leaking the rest rather than
    // freeing anything twice.
    while (chain) {
        lockfree::StackNode* next = lockfree::link_next(chain);
        // Blocks on our stack belong to our slabs; a slab cannot change owner
        // while it has a pending block, so the page map entry is current.
        Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(chain)));
        if (BITSLAB_UNLIKELY(!s || s->owner.load(std::memory_order_relaxed) != h.index)) {
            report_fault(Fault::kCorruptList, chain, s ? s->slot_size : 0);
            break;
        }
        batch.add(s, chain);
        if (BITSLAB_UNLIKELY(batch.faulted())) break;
        chain = next;
    }
    batch.finish();
}

void heap_return_chain(Heap& here, lockfree::StackNode* chain) {
    // Remote blocks are grouped per owner heap, so each owner gets one push.
    constexpr unsigned kGroups = 8;
    struct Group { uint32_t owner; lockfree::StackNode* head; lockfree::StackNode* tail; uint32_t count; };
    auto push_group = [](const Group& group) {
        Heap& owner = heap_at(group.owner);
        owner.remote.push_chain(group.head, group.tail);
        owner.remote_frees.fetch_add(group.count, std::memory_order_relaxed);
    };
    Group groups[kGroups];
    unsigned used = 0;
    LocalFreeBatch batch;
    // The chains come from one thread's bins and batches (at most a few
    // thousand blocks); a longer walk means a cycle (a block freed twice past
    // the free-time checks): stop rather than loop or free it twice.
    constexpr uint32_t kMaxWalk = 1u << 16;
    uint32_t walked = 0;
    while (chain) {
        lockfree::StackNode* next = lockfree::link_next(chain);
        Slab* s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(chain)));
        if (BITSLAB_UNLIKELY(!s || ++walked > kMaxWalk)) {
            report_fault(Fault::kCorruptList, chain, s ? s->slot_size : 0);
            break;
        }
        uint32_t owner = s->owner.load(std::memory_order_relaxed);
        if (owner == here.index) {
            batch.add(s, chain);
            if (BITSLAB_UNLIKELY(batch.faulted())) break;
        } else {
            unsigned i = 0;
            while (i < used && groups[i].owner != owner) ++i;
            if (i == used) {
                if (used == kGroups) {  // rare: many owners in one flush; send the oldest group now
                    push_group(groups[0]);
                    for (unsigned j = 1; j < used; ++j) groups[j - 1] = groups[j];
                    i = --used;
                }
                groups[i] = {owner, nullptr, chain, 0};
                ++used;
            }
            lockfree::link_set(chain, groups[i].head);
            groups[i].head = chain;
            ++groups[i].count;
        }
        chain = next;
    }
    batch.finish();
    for (unsigned i = 0; i < used; ++i) push_group(groups[i]);
    // An idle owner never drains its stack: the purger does (purge.h).
    if (used) purge_note_work();
}


// Sends the empty slabs of (heap, cls)'s partial lists beyond `keep` to the
// global pool and relists the others. It walks both lists whole, holding one
// slab at a time (and the empty ones it keeps, at most kEmptySlabsKept): from
// the swept list to the partial list, then from the partial list to the
// swept one, so every slab is seen although the lists are stacks. A sweeper
// that is stopped keeps at most two slabs from the other threads.
static void sweep_empty_slabs(Heap& h, unsigned cls, uint32_t keep = kEmptySlabsKept) {
    Globals* g = globals();
    // New relists keep arriving on the lists: stop after as many slabs as exist.
    size_t limit = slab_table_slabs() + 64;
    if (keep > kEmptySlabsKept) keep = kEmptySlabsKept;
    bool pooled_any = false;
    // A slab that empties while the sweep runs may be behind it: its freer's
    // count (below) then asks for another round. Bounded: each round pools
    // what it finds.
    for (unsigned round = 0; round < 4; ++round) {
        // relaxed: a trigger count; the lists' own atomics order the slabs.
        h.empty_slabs[cls].store(0, std::memory_order_relaxed);
        Slab* kept[kEmptySlabsKept];
        uint32_t kept_count = 0;
        auto sift = [&](SlabList& from, SlabList& to) {
            for (size_t n = 0; n < limit; ++n) {
                Slab* s = slab_take(from);
                if (!s) return;
                hold_point(kHoldSweep);
                if (s->free_count() != s->capacity) {
                    slab_list(to, s, kWhereListed);
                } else if (kept_count < keep) {
                    kept[kept_count++] = s;  // held until the end, so it is not counted twice
                } else {
                    // Every slot is free and we hold the slab: no block of it is
                    // live or pending anywhere, so it can change hands.
                    page_map_set(s->base, 0);
                    heap_map_slab(s->base, h.index, 0);
                    s->owner.store(kNoOwner, std::memory_order_relaxed);
                    s->pooled_at_ms = now_ms();
                    s->purged = false;
                    slab_list(g->dirty_pool, s, kWherePooled);  // release inside: publishes the reset above
                    pooled_any = true;
                }
            }
        };
        sift(h.partial_swept[cls], h.partial[cls]);
        sift(h.partial[cls], h.partial_swept[cls]);
        for (uint32_t i = 0; i < kept_count; ++i) slab_list(h.partial[cls], kept[i], kWhereListed);
        // The kept ones count again; anything beyond them emptied meanwhile.
        uint32_t pending = h.empty_slabs[cls].fetch_add(kept_count, std::memory_order_relaxed) + kept_count;
        if (pending <= kEmptySlabsKept || keep == 0) break;
    }
    if (pooled_any) purge_note_work();
}

void heap_trim_all() {
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (!g) return;
    for (uint32_t i = 0; i < g->num_heaps; ++i) {
        Heap& h = g->heaps[i];
        heap_drain_remote(h);
        for (unsigned cls = 1; cls <= kNumClasses; ++cls) sweep_empty_slabs(h, cls, 0);
    }
}

void heap_note_empty_slab(uint32_t heap, unsigned cls) {
    Heap& h = heap_at(heap);
    // relaxed: only a trigger; racing updates at worst sweep once more or later.
    if (h.empty_slabs[cls].fetch_add(1, std::memory_order_relaxed) + 1 > kEmptySlabsKept)
        sweep_empty_slabs(h, cls);
}

}  // namespace bitslab
