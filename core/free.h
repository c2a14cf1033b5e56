// The path of free(p), in order, and the files it goes through.
//
//  1. free_fast (below, inlined into free): p's chunk in the calling thread's
//     class map gives its class if p is a small block of the thread's own heap
//     in the arena; the misuse checks (slot start, no free mark) pass: p gets
//     the free mark and is pushed on the current CPU's stack of its class
//     (per-CPU front end, a restartable sequence) or on the thread's bin if
//     it has room (per-thread front end, inside the bracket that lets the
//     purger take an idle thread's bins: thread_bins.h). With the per-CPU
//     front end, a small block of another heap has a foreign entry there
//     (arena.h) and, after the same checks, goes on the CPU's foreign stack
//     (free_foreign_or_slow, free.cpp). No atomic.
//  2. free_slow (free.cpp): returns on NULL, and classifies p by the page
//     map (page_map.h, classify): a small block goes to step 3, a large block
//     to large_free
//     (large.cpp: the page map entry is cleared and the mapping cached or
//     unmapped; a cached one is work for the purger, purge.h), anything else
//     is reported (fault.h) as an invalid or double free.
//  3. free_small_slow (free.cpp): repeats the misuse checks, initializes the
//     thread; a block of another heap joins the foreign batch (cache_foreign,
//     thread_cache.cpp); else it goes in its bin, which grows within the
//     thread's budget or has its older half flushed first (flush_bin).
//  4. Blocks going home (a flushed bin, a full foreign batch, a thread's
//     exit, a block the cache cannot take): return_blocks (thread_cache.cpp)
//     hands the chain to heap_return_chain (heap.cpp), which sorts it by the
//     owner of each block's slab and says whether that left the purger work;
//     return_blocks then tells the purger (purge_note_work).
//  5. A block of the current CPU's heap goes into its slab's bitmap through a
//     LocalFreeBatch (slab.cpp): one fetch_or per bitmap word, one anchor CAS
//     per slab. The heap settles what the count asks (heap.cpp, settle): a
//     slab this freer found DETACHED goes back on its owner's partial list,
//     and a slab that became empty may start a sweep of its class, which
//     pools empty slabs beyond the one kept (pool.h).
//  6. A block of another heap is pushed, with the others of its owner, as one
//     chain onto the owner's remote-free stack (one CAS). The owner's threads
//     (heap_take), or the purger's pass, drain it later through step 5; a
//     per-CPU malloc of the owner's CPU puts it on that CPU's stack instead
//     (cpu_cache_take_remote).
//
// The sized and aligned frees (free_sized, free_aligned_sized, sized and
// aligned delete) check the size or alignment first (free_checked_slow) and
// then take the same path.
#pragma once
#include <cstddef>
#include <cstdint>

#include <atomic>

#include "core/config.h"
#include "core/cpu_slots.h"
#include "core/fault.h"
#include "core/size_class.h"
#include "core/thread_cache.h"
#include "lockfree/remote_free_stack.h"

namespace bitslab {

// Step 2 (free.cpp).
void free_slow(void* p);
// Misuse checks on every free, before the block is touched: p must be the
// start of a slot (is_slot_start; no offset is one for entry 0 or a foreign
// entry, another heap's block, which so leaves this path too) and must not
// carry the free mark or the remote mark (a block freed twice: marked_free,
// fault.h). Either failure goes to the slow path, which checks again and
// reports.
//
// p is the start of a slot of class cls that is not marked free (free's
// checks, without a report; realloc and malloc_usable_size ask it too).
BITSLAB_HOT bool small_block_is_live(const void* p, uintptr_t cls) {
    return is_slot_start(reinterpret_cast<uintptr_t>(p), cls) && !marked_free(mark_get(p));
}
// The checks above, on p with entry cls of the thread's class map. In the
// unchecked measurement build (config.h) only what routes the block: cls
// names a class (not entry 0, not a foreign entry), as the slot test's
// tables also say for those entries.
BITSLAB_HOT bool free_checks_pass(const void* p, uintptr_t cls) {
    if constexpr (!kFastPathChecks) return cls - 1 < kNumClasses;
    return small_block_is_live(p, cls);
}

// Caches p (of class cls in this thread's map) in its bin; false, touching
// nothing, if a check fails or the bin is full (then free_slow takes over).
// The push stands in the bracket (thread_bins.h) and changes the bin only if
// it is the thread's only operation on the bins (not a signal handler's
// nested in one) and no reclaim came since the thread settled.
BITSLAB_HOT bool free_to_bin(void* p, uintptr_t cls) {
    uint64_t mark = g_free_mark;
    bool alone = bins_enter();
    if (BITSLAB_LIKELY(alone && bins_current() && free_checks_pass(p, cls) && take_room(t_cache.rooms[cls]))) {
        auto* block = static_cast<lockfree::StackNode*>(p);
        take_back(block, cls, mark);
        lockfree::link_set(block, t_cache.heads[cls]);
        t_cache.heads[cls] = block;
        bins_leave();
        return true;
    }
    // A take_room that found no room left the counter wrapped: undo it here,
    // inside the bracket (only take_room, after bins_current, wraps it; a
    // nested call never reaches it, and the counter is the interrupted
    // operation's). A foreign entry (never met here: heap_map_slab) failed
    // the slot check and indexes no bin.
    if (alone && cls <= kNumClasses && t_cache.rooms[cls] == UINT32_MAX) t_cache.rooms[cls] = 0;
    bins_leave();
    return false;
}

// Step 1 with the per-CPU front end: the same misuse checks, then p gets the
// free mark and is pushed on the current CPU's stack of its class (a
// restartable sequence). The mark goes on before the push: once pushed, a
// thread of this CPU may pop and hand out p at once. If the push fails (the
// stack is full, or the thread's region is stale), the mark comes off again
// and the slow path takes p as it came. The class map is that of the heap
// of the CPU the thread's region is for (set together by the slow path), so
// only blocks of that heap (or of a class cacheable anywhere) enter it.
// `stack` is the CPU stack p goes on: its class's, or the foreign stack
// (free_foreign_or_slow).
BITSLAB_HOT bool free_to_cpu_stack(void* p, uintptr_t cls, unsigned stack) {
    uint64_t mark = g_free_mark;
    if (BITSLAB_LIKELY(free_checks_pass(p, cls))) {
        take_back(p, cls, mark);
        if (BITSLAB_LIKELY(g_cpu_slots.push(stack, p))) return true;
        hand_out(p, cls);  // live again, as the caller gave it
    }
    return false;
}
// The usual case: a block of the region's heap goes on the stack of its class.
BITSLAB_HOT bool free_to_cpu(void* p, uintptr_t cls) { return free_to_cpu_stack(p, cls, static_cast<unsigned>(cls)); }

// Step 1 with the per-thread front end (free.cpp; not inlined, so the
// per-CPU path keeps its registers): free_to_bin, else step 2.
void free_to_bin_or_slow(void* p, uintptr_t cls);

// Step 1's other half with the per-CPU front end (free.cpp; not inlined, and
// a tail call: free_to_cpu's failures jump here with the entry in hand). A
// foreign entry (kForeignEntry | class: a block of another heap, arena.h)
// fails free_to_cpu's slot check by construction (size_class.h); such a
// block gets the same checks and the free mark and goes on the current CPU's
// foreign stack (a restartable sequence), which sends it home with the
// others when it is full. Anything else, or a full foreign stack, goes to
// step 2.
void free_foreign_or_slow(void* p, uintptr_t entry);

// Caches p (class-map entry `cls` in this thread's map) in the front end, or
// else hands it, as it was, to the slow path.
BITSLAB_HOT void free_to_front_or_slow(void* p, uintptr_t cls) {
    if (BITSLAB_LIKELY(cpu_front_on())) {
        if (BITSLAB_LIKELY(free_to_cpu(p, cls))) return;
        free_foreign_or_slow(p, cls);
        return;
    }
    free_to_bin_or_slow(p, cls);
}

// Step 1: the fast path, inlined into free.
BITSLAB_HOT void free_fast(void* p) {
    uintptr_t chunk = arena_chunk_of(reinterpret_cast<uintptr_t>(p));
    if (BITSLAB_LIKELY(chunk < t_cache.map_chunks)) {
        // relaxed: see thread_class_of.
        free_to_front_or_slow(p, t_cache.class_map[chunk].load(std::memory_order_relaxed));
        return;
    }
    free_slow(p);
}

// free_sized, free_aligned_sized and sized/aligned delete: the size and
// alignment must describe the block. The common case (the size's class is the
// block's class in this thread's map) costs two loads and a compare more.
inline constexpr size_t kNoSize = SIZE_MAX;  // free_checked_slow: no size to check
void free_checked_slow(void* p, size_t size, size_t align, bool from_c);
BITSLAB_HOT void free_sized_fast(void* p, size_t size, bool from_c) {
    uintptr_t cls = thread_class_of(reinterpret_cast<uintptr_t>(p));
    if (BITSLAB_LIKELY(cls != 0 && size_is_of_class(size, cls))) {
        free_to_front_or_slow(p, cls);  // the size was right; a slow path does the rest
        return;
    }
    free_checked_slow(p, size, 0, from_c);
}

BITSLAB_HOT void free_aligned_fast(void* p, size_t align) {
    if (BITSLAB_LIKELY((reinterpret_cast<uintptr_t>(p) & (align - 1)) == 0)) free_fast(p);
    else free_checked_slow(p, kNoSize, align, false);
}

BITSLAB_HOT void free_aligned_sized_fast(void* p, size_t align, size_t size, bool from_c) {
    if (align <= kMinAlign) free_sized_fast(p, size, from_c);
    else free_checked_slow(p, size, align, from_c);
}

}  // namespace bitslab
