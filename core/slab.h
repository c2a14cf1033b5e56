// Slab: 64 KiB of equal-size slots, described out of line by a Slab descriptor.
//
// Which slots are free lives in an atomic bitmap (bit set = free). A slab is,
// at any moment, in exactly one of these places (the "where" invariant):
//   POOLED   in the global pool of empty slabs; owner == kNoOwner; page map entry 0.
//   LISTED   on its owner heap's partial list for its class; free_count > 0.
//   HELD     taken off a list by one thread (the holder), which alone may clear bits.
//   DETACHED not on any list, no holder; it was found with free_count == 0.
//
// anchor = (free_count << 1) | DETACHED. free_count counts set bits: a freer
// sets its bit first and then adds to free_count, the holder takes bits first
// and then subtracts, never more than it read, so free_count <= set bits and
// at rest free_count == popcount(bitmap). Because DETACHED and free_count share
// one word, exactly one freer sees DETACHED go away and relists the slab.
//
// Capacity equation for a slab of an owner heap H (at rest):
//   free_count + pending in H's remote-free stack + live (incl. thread caches) == capacity.
#pragma once
#include <atomic>
#include <cstdint>

#include "core/config.h"
#include "core/page_map.h"
#include "core/size_class.h"
#include "lockfree/atomic_bitmap.h"
#include "lockfree/node_pool.h"
#include "lockfree/remote_free_stack.h"

namespace bitslab {

inline constexpr uint32_t kNoOwner = ~uint32_t{0};
inline constexpr uint64_t kDetached = 1;

// Where a slab is (the states above), recorded for the heap checker only:
// the allocator's decisions never read it.
enum SlabWhere : uint8_t { kWhereNew = 0, kWherePooled, kWhereListed, kWhereHeld, kWhereDetached };

// 256-aligned: a page map entry packs the class into the descriptor address's low byte.
struct alignas(256) Slab : lockfree::PoolNode {
    // Fixed for the slab's life.
    uintptr_t base = 0;      // the slab memory, kSlabSize aligned

    // Set when the slab leaves the pool; stable while any of its blocks is live.
    uint32_t cls = 0;
    uint32_t slot_size = 0;
    uint32_t capacity = 0;
    uint32_t bitmap_words = 0;
    uint32_t index_multiplier = 0;  // ceil(2^32 / slot_size): slot = offset * m >> 32
    // Heap index. relaxed everywhere: written by the holder before the slab
    // is published (page map entry, list push: release), and read by whoever
    // holds a live block of it, which cannot change owner meanwhile.
    std::atomic<uint32_t> owner{kNoOwner};

    // For the checker: set before a slab is put on a list (so the taker's own
    // store comes after it), relaxed because the list operations order them.
    std::atomic<uint8_t> where{kWhereNew};
    void mark(SlabWhere w) { where.store(w, std::memory_order_relaxed); }

    // For the checker: the fork generation (g_forks) when the slab was last
    // taken. A slab still held from an earlier generation was held by a
    // thread that does not exist in this forked child: lost at the fork.
    std::atomic<uint32_t> held_in_fork{0};  // relaxed: for the checker (see slab_mark_held)

    // Holder-only state.
    Slab* holder_next = nullptr;  // links slabs a holder has in hand (sweeps)
    uint64_t pooled_at_ms = 0;    // when it last entered the pool of dirty slabs (pool.h, purge.h)
    bool purged = false;          // its pages were given back since it was last used

    // acq_rel CASes and read-modify-writes, acquire loads: each comment at
    // the operation says what it orders (the bits against the count).
    alignas(64) std::atomic<uint64_t> anchor{0};
    alignas(64) lockfree::AtomicBitmap<kMaxSlotsPerSlab / 64> free_slots;

    // acquire: the bits counted were set before (the freers' release).
    uint32_t free_count() const { return static_cast<uint32_t>(anchor.load(std::memory_order_acquire) >> 1); }
    uint32_t slot_of(uintptr_t p) const {
        return static_cast<uint32_t>((static_cast<uint64_t>(p - base) * index_multiplier) >> 32);
    }
    uintptr_t slot_address(uint32_t slot) const { return base + static_cast<uintptr_t>(slot) * slot_size; }
};

// Every descriptor lives in the slab table (core/slab_table.h) at its slab
// index, and the pools name slabs by that index. Index 0 is never a slab.
// The table's start | log2 of its size in regions (the start is page aligned,
// so one word, published by one CAS, says both); 0 until reserved.
extern std::atomic<uintptr_t> g_slab_table BITSLAB_INTERNAL;
inline constexpr uintptr_t kSlabTableSizeBits = 0xfff;
struct SlabIndex {
    // relaxed: the word is published once, before any slab index is handed
    // out; whoever holds an index got it after (through a pool's acquire or
    // the region list's), so it reads the word.
    static uintptr_t start() { return g_slab_table.load(std::memory_order_relaxed) & ~kSlabTableSizeBits; }
    static Slab* node(uint32_t index) { return reinterpret_cast<Slab*>(start() + size_t{index} * sizeof(Slab)); }
    static uint32_t index(const Slab* s) {
        return static_cast<uint32_t>((reinterpret_cast<uintptr_t>(s) - start()) / sizeof(Slab));
    }
};
// A list of slabs: a heap's partial list of a class, or a global pool.
using SlabList = lockfree::NodePool<Slab, SlabIndex>;

// Free blocks claimed from slabs: a chain linked through their first word,
// or, when `array` is set, an array the claimer fills (a refill of a CPU's
// stack, which copies pointers: linking the blocks only to read the links
// back costs a store and a load per block).
struct Chain {
    lockfree::StackNode* head = nullptr;
    lockfree::StackNode* tail = nullptr;
    uint32_t count = 0;
    void** array = nullptr;  // if set: blocks go to array[count..), and head and tail stay null
};

// Moving slabs on and off lists, keeping `where` true.
inline void slab_list(SlabList& list, Slab* s, SlabWhere w) {
    s->mark(w);
    list.put(s);
}
// Forks this process's line has made (bumped in each child): see
// Slab::held_in_fork. relaxed: bumped only while one thread runs (the fork
// child's handler); read by every slab take (slab_mark_held) and the
// checker, which need only the value of the current process, which no
// thread of it can see change.
extern std::atomic<uint32_t> g_forks;
// A slab comes into one thread's hand (taken off a list, or carved).
inline void slab_mark_held(Slab* s) {
    s->mark(kWhereHeld);
    // relaxed: for the checker, which runs with no other thread active.
    s->held_in_fork.store(g_forks.load(std::memory_order_relaxed), std::memory_order_relaxed);
}
inline Slab* slab_take(SlabList& list) {
    Slab* s = list.get();
    if (s) slab_mark_held(s);
    return s;
}

// Holder: gives the slab class `cls` and owner `heap`, all slots free.
void slab_assign(Slab* s, uint32_t heap, unsigned cls);
// Holder: claims up to `want` free slots, appending them to `out` in address
// order (out.array, if set, has room for them). Returns how many it claimed.
uint32_t slab_claim(Slab* s, uint32_t want, Chain& out);
#ifdef BITSLAB_SECURE
uint64_t secure_random();  // per-thread pseudo-random numbers seeded from the free mark
#endif
// Holder: gives up the hold; the slab goes back on `partial` (its owner's
// partial list of its class), or becomes DETACHED if it has no free slot.
void slab_release_hold(Slab* s, SlabList& partial);

// What counting freed slots in one slab asks of the heap above (which the
// slab layer does not call): relist the slab on its owner's partial list
// (this freer alone saw DETACHED go away), and note that it became empty.
// Owner and class are read before the count: once the slab is empty it may
// be pooled and reassigned at any moment.
struct SlabFreed {
    Slab* relist = nullptr;
    uint32_t owner = 0;
    unsigned cls = 0;
    bool emptied = false;
};

// Frees blocks into slab bitmaps, batching one atomic per bitmap word and one
// per slab. Any thread may use it. It detects double and invalid frees that
// got past the free-time checks (a race, or a free mark overwritten after a
// free): each is reported and skipped, and faulted() tells the caller that
// the chain it walks may be corrupt (a block freed twice onto a list makes a
// cycle: the walk must stop). add and finish return what the count of the
// slab they completed asks of the heap (heap.cpp settles it at once).
class LocalFreeBatch {
public:
    // Inline for the common case, a slot of the slab and bitmap word of the
    // block before (a flush or a drain frees runs of neighbours): the checks
    // (a slot, not free already: in the batch's mask or in the bitmap word,
    // read again each time), then a bit in the word's mask. Anything else,
    // a report included, goes to add_slow.
    BITSLAB_HOT SlabFreed add(Slab* s, void* block) {
        auto p = reinterpret_cast<uintptr_t>(block);
        uint32_t slot = s->slot_of(p);
        uint64_t bit = uint64_t{1} << (slot % 64);
        // acquire (atomic_bitmap.h): as in add_slow.
        if (BITSLAB_LIKELY(s == slab_ && slot / 64 == word_ && slot < s->capacity && s->slot_address(slot) == p &&
                           ((mask_ | s->free_slots.load(word_)) & bit) == 0)) {
            mask_ |= bit;
            ++added_;
            return {};
        }
        return add_slow(s, block);
    }
    SlabFreed finish();  // must be called before the batch goes out of scope
    bool faulted() const { return faulted_; }
private:
    SlabFreed add_slow(Slab* s, void* block);
    void commit_word();
    SlabFreed commit_slab();
    Slab* slab_ = nullptr;
    unsigned word_ = 0;
    uint64_t mask_ = 0;
    uint32_t added_ = 0;  // slots newly freed in slab_ not yet counted in its anchor
    bool faulted_ = false;
};

// The slab named by a page map entry if it is a small slab's, else null.
inline Slab* slab_of(uintptr_t page_map_entry) {
    if ((page_map_entry & kEntryClassMask) == 0) return nullptr;
    return reinterpret_cast<Slab*>(page_map_entry & ~kEntryClassMask);
}

}  // namespace bitslab
