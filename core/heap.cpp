#include "core/heap.h"

#include <errno.h>
#include <string.h>

#include <new>

#include "core/arena.h"
#include "core/cpu_slots.h"
#include "core/fault.h"
#include "core/os.h"
#include "core/page_map.h"
#include "core/poison.h"
#include "core/pool.h"
#include "core/process_id.h"
#include "core/region.h"
#include "core/slab_table.h"
#include "core/test_hooks.h"

namespace bitslab {

// Published once by the CAS in globals_slow (acq_rel) and read with acquire,
// so a reader sees the constructed heaps.
std::atomic<Globals*> g_globals{nullptr};
static __thread int t_fake_cpu __attribute__((tls_model("initial-exec"))) = -1;

void set_fake_cpu(int cpu) {
    t_fake_cpu = cpu;
    // The per-CPU front end's fast paths use the real CPU's stacks: off them
    // (and onto the slow paths, which honour the injected CPU) until the
    // next refresh.
    lockfree::t_region = lockfree::kNeverRegion;
}
int fake_cpu() { return t_fake_cpu; }

Globals* globals_slow() {
    // acquire: pairs with the CAS below that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (g) return g;
    unsigned n = os::possible_cpus();
    if (n > kMaxHeaps) n = kMaxHeaps;
    size_t heaps_offset = (sizeof(Globals) + alignof(Heap) - 1) & ~(alignof(Heap) - 1);
    size_t bytes = heaps_offset + sizeof(Heap) * n;
    void* mem = os::map_metadata(bytes);
    if (!mem) { errno = ENOMEM; return nullptr; }
    free_mark_init();  // before any block exists
    os::process_id();  // maps its page now, off the free path (core/process_id.h)
    os::clock_init();  // the vDSO's clock, for a malloc before the constructors (core/os.h)
    cpu_slots_init(n);  // the front end, also before any block exists (cpu_slots.h)
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

uint32_t heap_count() {
    // acquire: pairs with the release that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    return g ? g->num_heaps : 0;
}

Heap& heap_at(uint32_t index) {
    // acquire: pairs with the CAS that published the globals.
    return g_globals.load(std::memory_order_acquire)->heaps[index];
}

Heap& current_heap(Globals* g) {
    int cpu = t_fake_cpu >= 0 ? t_fake_cpu : os::current_cpu();
    // Ids can exceed the possible count (containers, odd numbering): fold them.
    return g->heaps[static_cast<unsigned>(cpu) % g->num_heaps];
}

static_assert(kNumClasses < kForeignEntry, "a foreign entry is not a class");

// relaxed: a flag for the heap checker, never cleared.
static std::atomic<bool> g_mapped_without_front{false};

bool heap_maps_may_lack_foreign_entries() { return g_mapped_without_front.load(std::memory_order_relaxed); }

// The entry of heap `heap`'s map for a slab of heap `owner` and class cls.
static uint8_t map_entry(uint32_t owner, uint32_t heap, unsigned cls, bool cpu_front) {
    if (cls == 0) return 0;
    if (heap == owner || class_cacheable_anywhere(cls)) return static_cast<uint8_t>(cls);
    // Only with the per-CPU front end: a thread sees a foreign entry only if
    // the front end was on when the slab was mapped, and then (the slab was
    // mapped before its blocks were handed out) it is on for the free too;
    // the per-thread bins never meet one.
    if (cpu_front && kClassSize[cls] <= kForeignMaxSize) return static_cast<uint8_t>(kForeignEntry | cls);
    return 0;
}

void heap_map_slab(uintptr_t base, uint32_t owner, unsigned cls) {
    // acquire: pairs with the CAS that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    bool cpu_front = cpu_front_on();  // read once: every map of the slab agrees
    if (!cpu_front && cls != 0) g_mapped_without_front.store(true, std::memory_order_relaxed);
    for (uint32_t i = 0; i < g->num_heaps; ++i) arena_set_class(g->heaps[i].class_map, base, map_entry(owner, i, cls, cpu_front));
}

// A batch's count asked the heap to relist a slab and/or note that it became
// empty (slab.h: SlabFreed); true if that left the purger work.
static bool heap_note_empty_slab(uint32_t heap, unsigned cls);
static bool settle(const SlabFreed& freed) {
    if (freed.relist) slab_list(heap_at(freed.owner).partial[freed.cls], freed.relist, kWhereListed);
    return freed.emptied && heap_note_empty_slab(freed.owner, freed.cls);
}

// Blocks of this heap's slabs on their way back to their bitmaps. In the
// order they come (a remote-free stack, a flush) blocks of different slabs
// alternate, and one batch would then pay a fetch_or on a bitmap word and a
// CAS on a slab's count for each block. So each slab goes to one of a few
// batches, chosen by its address: the blocks of a slab meet in its batch, and
// share the fetch_or of their word and the CAS of their slab (issue 15:
// xmalloc, whose frees are all remote and of mixed sizes). A block given
// twice is found at its second add, in its batch's mask or already in the
// bitmap (LocalFreeBatch::add), whichever batch holds it.
class GroupedFrees {
public:
    explicit GroupedFrees(bool& left_work) : left_work_(left_work) {}
    // Frees one block of slab s (this heap's); false once a batch has found
    // a fault (the caller stops: what follows is not to be trusted).
    bool add(Slab* s, lockfree::StackNode* block) {
        unsigned i = (s->base / kSlabSize) % kBatches;
        used_ |= 1u << i;
        SlabFreed done = batches_[i].add(s, block);
        // Most adds complete no slab: nothing to settle.
        if (BITSLAB_UNLIKELY(done.relist || done.emptied) && settle(done)) left_work_ = true;
        return !batches_[i].faulted();
    }
    // Commits every batch used; must be called before it goes out of scope.
    void finish() {
        for (; used_; used_ &= used_ - 1)
            if (settle(batches_[__builtin_ctz(used_)].finish())) left_work_ = true;
    }

private:
    static constexpr unsigned kBatches = 16;  // 16 x 32 B on the stack
    LocalFreeBatch batches_[kBatches];
    uint32_t used_ = 0;  // bit i: batches_[i] has had a block
    bool& left_work_;
};

uint32_t heap_take(Heap& h, unsigned cls, uint32_t want, Chain& out, bool& left_work, bool may_open) {
    if (heap_drain_remote(h)) left_work = true;
    return heap_claim(h, cls, want, out, may_open);
}

uint32_t heap_claim(Heap& h, unsigned cls, uint32_t want, Chain& out, bool may_open) {
    uint32_t got = 0;
    while (got < want) {
        Slab* s = slab_take(h.partial[cls]);
        if (!s) s = slab_take(h.partial_swept[cls]);
        if (!s) {
            if (got || !may_open) break;  // serve what we have rather than open a new slab
            // Pooled slabs first (dirty, aging, clean: pool.h), then new memory.
            s = pool_take_for_reuse();
            if (!s) s = region_carve_slab();
            if (!s) { errno = ENOMEM; break; }
            slab_assign(s, h.index, cls);
            heap_map_slab(s->base, h.index, cls);
        }
        got += slab_claim(s, want - got, out);
        slab_release_hold(s, h.partial[cls]);  // held from our own lists or assigned to h: h owns it
    }
    return got;
}

bool heap_drain_remote(Heap& h, const DrainSink* sink) {
    RemoteLanes::Walk walk(h.remote);
    if (!walk.took_any()) return false;
    bool left_work = false;
    GroupedFrees frees(left_work);
    // The walk is bounded even if a block was pushed twice (a cycle in its
    // lane): every block of a cycle comes round again, and by then it no
    // longer holds the remote mark (its first visit put the free mark back,
    // and a thread that claimed it since wrote the free mark or handed it
    // out, as a block the sink kept holds the free mark and one popped
    // since none); the walk stops there, leaking the rest rather than
    // freeing anything twice. The bitmap's own check (LocalFreeBatch::add) is
    // not enough alone: the walk's other lanes can commit the block's word
    // before its repeat, and a claim in between clears its bit again.
    Slab* s = nullptr;  // the slab of the block before, checked as ours
    while (lockfree::StackNode* block = walk.next()) {
        // Blocks on our stack belong to our slabs; a slab cannot change owner
        // while it has a pending block, so the page map entry is current
        // (and the relaxed owner read below: take_all's acquire ordered it).
        // A block of the slab before needs no page map lookup (one slab per
        // chunk); its owner is read again, in case an undetected double free
        // let the slab empty and change hands during the walk.
        if (!s || reinterpret_cast<uintptr_t>(block) - s->base >= kSlabSize)
            s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(block)));
        if (BITSLAB_UNLIKELY(!s || s->owner.load(std::memory_order_relaxed) != h.index)) {
            report_fault(Fault::kCorruptList, block, s ? s->slot_size : 0);
            break;
        }
        if (BITSLAB_UNLIKELY(mark_get(block) != remote_mark())) {
            report_fault(Fault::kDoubleFree, block, s->slot_size);
            break;
        }
        if (sink) {
            // A slot of s that its bitmap does not hold free (the checks add
            // makes; a block that fails them goes to add, which reports it)
            // may go to the sink as it is: still handed out from the
            // bitmap's view, with no bitmap or count to change. The free
            // mark first: the sink's stack may hand it out at once.
            auto p = reinterpret_cast<uintptr_t>(block);
            uint32_t slot = s->slot_of(p);
            // acquire (atomic_bitmap.h), as add's read.
            if (slot < s->capacity && s->slot_address(slot) == p &&
                (s->free_slots.load(slot / 64) & (uint64_t{1} << (slot % 64))) == 0) {
                mark_set(block, g_free_mark);
                if (sink->keep(block, s->cls, sink->arg)) {
                    hold_point(kHoldDrain, block);
                    continue;
                }
            }
        }
        if (BITSLAB_UNLIKELY(!frees.add(s, block))) break;
        // After add checked that it is a slot, before its word is committed.
        // (A walk that stops on a fault may commit one block still holding
        // the remote mark: marked_free counts it as free, a claim rewrites it.)
        mark_set(block, g_free_mark);
        hold_point(kHoldDrain, block);
    }
    frees.finish();
    return left_work;
}

bool heap_drain_all() {
    // acquire: pairs with the release that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    bool left_work = false;
    for (uint32_t i = 0; g && i < g->num_heaps; ++i)
        if (heap_drain_remote(g->heaps[i])) left_work = true;
    return left_work;
}

bool heap_remote_pending() {
    // acquire: as in heap_drain_all.
    Globals* g = g_globals.load(std::memory_order_acquire);
    for (uint32_t i = 0; g && i < g->num_heaps; ++i)
        if (!g->heaps[i].remote.empty()) return true;
    return false;
}

bool heap_return_chain(Heap& here, lockfree::StackNode* chain) {
    // Remote blocks are grouped per owner heap, so each owner gets one push per lane.
    // Within a group, each block joins the chain of its lane. Four groups
    // (of 72 B) keep the frame as it was with eight single chains: the
    // refill's path through here is the allocator's deepest (cpu_cache.cpp).
    constexpr unsigned kGroups = 4;
    struct Group {
        uint32_t owner;
        uint32_t count;
        lockfree::StackNode* head[kRemoteLanes];
        lockfree::StackNode* tail[kRemoteLanes];
    };
    auto push_group = [](const Group& group) {
        Heap& owner = heap_at(group.owner);
        for (unsigned lane = 0; lane < kRemoteLanes; ++lane)
            if (group.head[lane]) owner.remote.push_chain(lane, group.head[lane], group.tail[lane]);
        owner.remote_frees.fetch_add(group.count, std::memory_order_relaxed);  // relaxed: a statistic
    };
    Group groups[kGroups];
    unsigned used = 0;
    bool left_work = false;
    GroupedFrees frees(left_work);
    // The chains come from one thread's bins and batches (at most about
    // 12,400 blocks: a reclaim sends all of a thread's bins and its batch at
    // once, within its 1 MiB budget); a longer walk means a cycle (a block
    // freed twice past the free-time checks): stop rather than loop or free
    // it twice.
    constexpr uint32_t kMaxWalk = 1u << 16;
    uint32_t walked = 0;
    Slab* s = nullptr;  // the slab of the block before: a block of the same slab needs no page map lookup
    while (chain) {
        lockfree::StackNode* next = lockfree::link_next(chain);
        if (!s || reinterpret_cast<uintptr_t>(chain) - s->base >= kSlabSize) {
            s = slab_of(page_map_get(reinterpret_cast<uintptr_t>(chain)));
            if (BITSLAB_UNLIKELY(!s)) {
                report_fault(Fault::kCorruptList, chain, 0);
                break;
            }
        }
        // relaxed: the block is live (we are freeing it), so its slab cannot
        // change owner; we got the block after its slab was assigned. Read
        // for every block all the same (as the drain does): if a double free
        // that got past the checks let the slab empty and change hands
        // during the walk, the blocks after go to its new owner's stack,
        // whose drain reports them, not into a bitmap that is no longer ours.
        uint32_t owner = s->owner.load(std::memory_order_relaxed);
        if (BITSLAB_UNLIKELY(++walked > kMaxWalk)) {
            report_fault(Fault::kCorruptList, chain, s->slot_size);
            break;
        }
        if (owner == here.index) {
            if (BITSLAB_UNLIKELY(!frees.add(s, chain))) break;
        } else {
            unsigned i = 0;
            while (i < used && groups[i].owner != owner) ++i;
            if (i == used) {
                if (used == kGroups) {  // rare: many owners in one flush; send the oldest group now
                    push_group(groups[0]);
                    for (unsigned j = 1; j < used; ++j) groups[j - 1] = groups[j];
                    i = --used;
                }
                groups[i] = Group{owner, 0, {}, {}};
                ++used;
            }
            Group& group = groups[i];
            mark_set(chain, remote_mark());  // what the owner's drain looks for (fault.h)
            unsigned lane = RemoteLanes::lane_of(chain);
            if (!group.head[lane]) group.tail[lane] = chain;
            lockfree::link_set(chain, group.head[lane]);
            group.head[lane] = chain;
            ++group.count;
        }
        chain = next;
    }
    frees.finish();
    for (unsigned i = 0; i < used; ++i) push_group(groups[i]);
    // An idle owner never drains its stack: the purger does (purge.h).
    return left_work || used != 0;
}


// Sends the empty slabs of (heap, cls)'s partial lists beyond `keep` to the
// global pool and relists the others. It walks both lists whole, holding one
// slab at a time (and the empty ones it keeps, at most kEmptySlabsKept): from
// the swept list to the partial list, then from the partial list to the
// swept one, so every slab is seen although the lists are stacks. A sweeper
// that is stopped keeps at most two slabs from the other threads.
static bool sweep_empty_slabs(Heap& h, unsigned cls, uint32_t keep = kEmptySlabsKept) {
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
                    s->owner.store(kNoOwner, std::memory_order_relaxed);  // relaxed: published by the pool's release
                    s->pooled_at_ms = os::now_ms();
                    s->purged = false;
                    pool_put(kPoolDirty, s);  // release inside: publishes the reset above
                    pooled_any = true;
                }
            }
        };
        sift(h.partial_swept[cls], h.partial[cls]);
        sift(h.partial[cls], h.partial_swept[cls]);
        for (uint32_t i = 0; i < kept_count; ++i) slab_list(h.partial[cls], kept[i], kWhereListed);
        // The kept ones count again; anything beyond them emptied meanwhile.
        // relaxed: a trigger count, as above.
        uint32_t pending = h.empty_slabs[cls].fetch_add(kept_count, std::memory_order_relaxed) + kept_count;
        if (pending <= kEmptySlabsKept || keep == 0) break;
    }
    return pooled_any;
}

bool heap_trim_all() {
    // acquire: pairs with the release that published the globals.
    Globals* g = g_globals.load(std::memory_order_acquire);
    if (!g) return false;
    bool left_work = false;
    for (uint32_t i = 0; i < g->num_heaps; ++i) {
        Heap& h = g->heaps[i];
        if (heap_drain_remote(h)) left_work = true;
        for (unsigned cls = 1; cls <= kNumClasses; ++cls)
            if (sweep_empty_slabs(h, cls, 0)) left_work = true;
    }
    return left_work;
}

// Called when a free made a slab of (heap, cls) entirely free.
static bool heap_note_empty_slab(uint32_t heap, unsigned cls) {
    Heap& h = heap_at(heap);
    // relaxed: only a trigger; racing updates at worst sweep once more or later.
    if (h.empty_slabs[cls].fetch_add(1, std::memory_order_relaxed) + 1 > kEmptySlabsKept)
        return sweep_empty_slabs(h, cls);
    return false;
}

}  // namespace bitslab
