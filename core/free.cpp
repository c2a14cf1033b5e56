// The path of free(p): see free.h for the steps in order. This file holds
// steps 2 and 3 and the checked frees; steps 4 to 6 are in thread_cache.cpp
// (return_blocks), heap.cpp (heap_return_chain, settle) and slab.cpp
// (LocalFreeBatch).
#include "core/free.h"

#include <errno.h>

#include "core/cpu_cache.h"
#include "core/fault.h"
#include "core/heap.h"
#include "core/large.h"
#include "core/page_map.h"
#include "core/purge.h"
#include "core/size_class.h"
#include "core/slab.h"
#include "core/thread_cache.h"

namespace bitslab {

// The checks of free_fast, made for every small block that reaches the slow
// path; false (after reporting) if p must be left alone.
static bool small_free_ok(void* p, unsigned cls) {
    auto a = reinterpret_cast<uintptr_t>(p);
    if (BITSLAB_UNLIKELY(!is_slot_start(a, cls))) {
        report_fault((a & (kMinAlign - 1)) ? Fault::kMisalignedFree : Fault::kInteriorFree, p, kClassSize[cls]);
        return false;
    }
    if (BITSLAB_UNLIKELY(marked_free(mark_get(p)))) {
        report_fault(Fault::kDoubleFree, p, kClassSize[cls]);
        return false;
    }
    return true;
}

// Step 3 with the per-CPU front end: refreshes the thread's region; a block
// of that CPU's heap (or of a class cacheable anywhere) goes on its stack,
// after half the stack has gone home if it is full; a block of another heap
// goes on the CPU's foreign stack (cpu_cache.cpp). A thread without a region
// sends the block home at once.
static void free_small_cpu(void* p, uintptr_t entry, unsigned cls) {
    ThreadCache& tc = t_cache;
    if (tc.state == kThreadNew) thread_init(tc);
    int saved_errno = errno;  // the heap and the purger may make system calls
    // acquire: pairs with the release that published the globals (p exists,
    // so they do).
    Globals* g = g_globals.load(std::memory_order_acquire);
    int cpu = cpu_cache_refresh();
    Heap& here = cpu >= 0 ? g->heaps[static_cast<unsigned>(cpu) % g->num_heaps] : current_heap(g);
    if (here.index != tc.heap) adopt_heap(tc, here);  // free_fast reads this heap's class map
    auto* block = static_cast<lockfree::StackNode*>(p);
    take_back(block, cls, g_free_mark);
    bool left_work = false;
    // relaxed: p is live, so its slab cannot change owner (slab.h).
    bool own = slab_of(entry)->owner.load(std::memory_order_relaxed) == here.index || class_cacheable_anywhere(cls);
    if (cpu < 0) {
        lockfree::link_set(block, nullptr);
        left_work = heap_return_chain(here, block);
    } else if (!own) {
        left_work = cpu_cache_free_foreign(here, block, cls);
    } else if (!g_cpu_slots.push(cls, block)) {
        left_work = cpu_cache_make_room(here, cls);
        if (!g_cpu_slots.push(cls, block)) {  // moved, or the region is being drained
            lockfree::link_set(block, nullptr);
            if (heap_return_chain(here, block)) left_work = true;
        }
    }
    if (left_work) purge_note_work();
    errno = saved_errno;
}

// Step 3: a small block the fast path could not cache.
static void free_small_slow(void* p, uintptr_t entry, unsigned cls) {
    ThreadCache& tc = t_cache;
    if (!small_free_ok(p, cls)) return;
    if (cpu_front_on()) { free_small_cpu(p, entry, cls); return; }
    BinsOp op;
    if (op.nested) { return_block(p, cls); return; }  // a signal handler's: the bins are the thread's
    if (tc.state == kThreadNew) thread_init(tc);
    if (tc.state != kThreadActive) { return_block(p, cls); return; }  // torn down: cache nothing
    // relaxed: p is live, so its slab cannot change owner (slab.h); we got p
    // after its slab was assigned.
    if (slab_of(entry)->owner.load(std::memory_order_relaxed) != tc.heap && !class_cacheable_anywhere(cls)) {
        cache_foreign(tc, p, cls);  // steps 4-6 when the batch goes home
        return;
    }
    if (tc.rooms[cls] == 0 && !grow_bin(tc, cls)) {
        if (tc.limits[cls] == 0) { return_block(p, cls); return; }  // no budget at all for this bin
        flush_bin(tc, cls, tc.limits[cls] / 2);
    }
    auto* block = static_cast<lockfree::StackNode*>(p);
    take_back(block, cls, g_free_mark);
    lockfree::StackNode* below = tc.heads[cls];
    lockfree::link_set(block, below);
    tc.heads[cls] = block;
    --tc.rooms[cls];
}

void free_foreign_or_slow(void* p, uintptr_t entry) {
    if (entry & kForeignEntry) {
        uintptr_t cls = entry & ~uintptr_t{kForeignEntry};
        // free_to_cpu's checks and mark, for the block's own class, and the
        // foreign stack. The thread's map is its region's heap's (set
        // together, alloc.cpp), so the block is of another heap than that
        // region's CPU, or, were the two ever apart, heap_return_chain still
        // sends it to its owner. A failed check or push left p as it came.
        if (BITSLAB_LIKELY(free_to_cpu_stack(p, cls, kForeignSlots))) return;
    }
    free_slow(p);
}

void free_to_bin_or_slow(void* p, uintptr_t cls) {
    if (BITSLAB_LIKELY(free_to_bin(p, cls))) return;
    free_slow(p);
}

// Step 2.
void free_slow(void* p) {
    if (p == nullptr) return;  // also before any initialization
    // free never changes errno: the paths that can make a system call
    // (thread_init, return_blocks, large_free, purge_note_work) save and
    // restore it.
    BlockInfo b = classify(p);
    switch (b.kind) {
    case BlockKind::kSmall:
        free_small_slow(p, b.entry, b.cls);
        return;
    case BlockKind::kLarge: {
        int saved_errno = errno;
        if (large_free(p, b.entry)) purge_note_work();  // a cached mapping: work for the purger
        errno = saved_errno;
        return;
    }
    case BlockKind::kNone:
        // Nothing of bitslab's starts in p's chunk: a large block freed before
        // (its entry is cleared at free), or a pointer bitslab never returned.
        report_fault(large_recently_freed(p) ? Fault::kDoubleFree : Fault::kInvalidFree, p, 0);
        return;
    }
}

void free_checked_slow(void* p, size_t size, size_t align, bool from_c) {
    if (p == nullptr) return;
    auto a = reinterpret_cast<uintptr_t>(p);
    BlockInfo b = classify(p);
    unsigned cls = b.cls;
    uintptr_t entry = b.entry;
    // Not a live block at all (double or invalid free): free reports that.
    bool live = b.kind == BlockKind::kSmall ? small_block_is_live(p, cls)
                                            : (b.kind == BlockKind::kLarge && large_requested(p, entry) != SIZE_MAX);
    if (live) {
        if (align > kMinAlign && (a & (align - 1)) != 0) {
            report_fault(Fault::kAlignMismatch, p, cls ? kClassSize[cls] : 0, align);
            return;
        }
        if (size != kNoSize) {
            bool fits;
            if (cls) {
                // The class the allocation would have had. A C block may also
                // be larger: realloc keeps a block that shrinks by less than
                // half and gives a growing one headroom, so its class may be
                // up to that of twice the size.
                unsigned expected = align > kMinAlign ? size_class_for_aligned(size, align)
                                                      : (size <= kMaxSmallSize ? static_cast<unsigned>(size_class_of(size)) : 0);
                size_t twice = size > kMaxSmallSize / 2 ? kMaxSmallSize : 2 * size;
                fits = expected == cls || (from_c && align <= kMinAlign && expected != 0 && expected < cls &&
                                           cls <= size_class_of(twice));
            } else {
                fits = large_requested(p, entry) == size;
            }
            if (!fits) {
                report_fault(Fault::kSizeMismatch, p, cls ? kClassSize[cls] : 0, size);
                return;
            }
        }
    }
    free_fast(p);
}

}  // namespace bitslab
