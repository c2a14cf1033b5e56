// The malloc API's logic, inline, shared by the prefixed API (bitslab_*) and
// the override (malloc, free, operator new, ...): the path of malloc(n) here
// and in alloc.cpp, that of free(p) in free.h and free.cpp.
//
// The path of malloc(n), in order:
//  1. malloc_fast (below, inlined into malloc): the class of n from a table
//     (n up to 1 KiB; a larger n goes to malloc_medium, which takes a small
//     one's class from a second table and goes on the same way), then a pop
//     of the current CPU's stack of that class (per-CPU front end: a
//     restartable sequence, cpu_slots.h) or of the thread's bin (per-thread
//     front end, thread_cache.h). No atomic.
//  2. malloc_slow (alloc.cpp): a large n goes to large_alloc (large.cpp); a
//     small one to malloc_small_cpu, which points the thread at its CPU's
//     stacks, puts the blocks other CPUs freed back to that CPU's heap on
//     them (cpu_cache_take_remote), and else refills the stack from that
//     heap (cpu_cache.cpp), or
//     to malloc_small_slow, which initializes the thread, grows the bin
//     within the thread's budget (thread_cache.cpp) and refills it from the
//     heap of the CPU the thread runs on (adopting that heap).
//  3. heap_take (heap.cpp): drains the heap's remote-free stack, then claims
//     slots of a partial slab of the class; failing that, of a pooled slab
//     (pool.h) or a newly carved one (region.h), given the class
//     (slab_assign). slab_claim (slab.cpp) takes the bits; slab_release_hold
//     puts the slab back on its heap's list.
// What the heap or large layers leave the purger to do, malloc_slow tells it
// (purge_note_work).
#pragma once
#include <cstddef>

#include "core/config.h"
#include "core/cpu_slots.h"
#include "core/free.h"
#include "core/thread_cache.h"

namespace bitslab {

// Not inlined (alloc.cpp): the per-thread fast path then tail-calls it and
// needs no stack frame.
__attribute__((noinline)) void* malloc_slow(size_t size);

// A block just taken from a bin had lost its free mark: freed memory was
// written (its second word). (A signal handler's malloc cannot have taken
// it: a call nested in the thread's own leaves the bins alone, bins_enter.)
// Drops (leaks) the bin, reports the block and, if the report returns,
// allocates on the slow path.
BITSLAB_COLD void* malloc_unmarked(lockfree::StackNode* block, unsigned cls, size_t size);

// Pops bin cls's head `block`; false if it lacks the free mark (then see
// malloc_unmarked), checked before the head moves: a block that lost its mark
// has a link that may be anything (the program's data), which must not
// become the head.
BITSLAB_HOT bool pop_marked(lockfree::StackNode* block, uintptr_t cls) {
    uint64_t mark = g_free_mark;
#ifdef BITSLAB_SECURE
    // The block's bytes first (a write to it, the mark's word included, is
    // reported as such; the report restores the mark), then the mark, then
    // its link.
    secure_check_reuse(block, cls);
    if (BITSLAB_UNLIKELY(mark_get(block) != mark)) return false;
    t_cache.heads[cls] = secure_checked_next(block, cls);
#else
    if (kFastPathChecks && BITSLAB_UNLIKELY(mark_get(block) != mark)) return false;
    t_cache.heads[cls] = lockfree::link_next(block);
#endif
    ++t_cache.rooms[cls];
    hand_out(block, cls);
    return true;
}

// A block just popped from a CPU's stack had lost its free mark: freed
// memory was written (a signal handler cannot interleave with the pop).
// Reports it; if the report returns, leaves the block out (leaked) and
// allocates on the slow path.
BITSLAB_COLD void* malloc_unmarked_cpu(void* block, unsigned cls, size_t size);

// Step 1 with the per-CPU front end: a pop of the current CPU's stack of
// the class (a restartable sequence: no atomic, and a signal handler's
// malloc or free cannot interleave with it), and the block's free mark
// checked as a bin's is.
BITSLAB_HOT void* malloc_from_cpu(size_t size, uintptr_t cls) {
    void* p;
    if (BITSLAB_LIKELY(g_cpu_slots.try_pop(cls, p))) {
#ifdef BITSLAB_SECURE
        secure_check_reuse(p, cls);
#endif
        if (kFastPathChecks && BITSLAB_UNLIKELY(mark_get(p) != g_free_mark))
            return malloc_unmarked_cpu(p, static_cast<unsigned>(cls), size);
        hand_out(p, cls);
        return p;
    }
    return malloc_slow(size);
}

// Step 1 with the per-thread front end (alloc.cpp; not inlined, so the
// per-CPU path keeps its registers): a pop of the thread's bin, inside the
// bracket that lets the purger take an idle thread's bins (thread_bins.h).
void* malloc_from_bins(size_t size, uintptr_t cls);

// Step 1 once the class is known: the pop of the front end in use.
BITSLAB_HOT void* malloc_of_class(size_t size, uintptr_t cls) {
    if (BITSLAB_LIKELY(cpu_front_on())) return malloc_from_cpu(size, cls);
    return malloc_from_bins(size, cls);
}

// Step 1 for a size above kClassTableMax (alloc.cpp, not inlined): a small
// one's class from the second table (medium_size_class), then the same pops;
// a large one goes on to malloc_slow.
__attribute__((noinline)) void* malloc_medium(size_t size);

// Step 1: the fast path, inlined into malloc.
BITSLAB_HOT void* malloc_fast(size_t size) {
    if (BITSLAB_LIKELY(size <= kClassTableMax)) {
        return malloc_of_class(size, kClassOfSize[size]);
    }
    return malloc_medium(size);
}


BITSLAB_HOT void* api_malloc(size_t size) { return malloc_fast(size); }
BITSLAB_HOT void api_free(void* p) { free_fast(p); }
// C23 free_sized / free_aligned_sized: the size must be the one asked for
// (realloc's slack allowed); C++ sized and aligned delete: exactly the size of
// the new. A mismatch is a fault (fault.h).
BITSLAB_HOT void api_free_sized(void* p, size_t size) { free_sized_fast(p, size, true); }
BITSLAB_HOT void api_free_aligned_sized(void* p, size_t align, size_t size) { free_aligned_sized_fast(p, align, size, true); }
BITSLAB_HOT void api_delete_sized(void* p, size_t size) { free_sized_fast(p, size, false); }
BITSLAB_HOT void api_delete_aligned(void* p, size_t align) { free_aligned_fast(p, align); }
BITSLAB_HOT void api_delete_aligned_sized(void* p, size_t size, size_t align) {
    free_aligned_sized_fast(p, align, size, false);
}

void* api_calloc(size_t count, size_t size);
void* api_realloc(void* p, size_t size);
void* api_reallocarray(void* p, size_t count, size_t size);
// Power-of-two `align` (callers validate); nullptr + ENOMEM on failure.
void* api_aligned(size_t align, size_t size);
int api_posix_memalign(void** out, size_t align, size_t size);
void* api_aligned_alloc(size_t align, size_t size);
void* api_memalign(size_t align, size_t size);
void* api_valloc(size_t size);
void* api_pvalloc(size_t size);
size_t api_usable_size(const void* p);
size_t api_trim();
// bitslab_thread_flush: the calling thread's bins and every CPU's stacks.
void api_thread_flush();
// Whether the front end is per CPU (after making the globals if none exist).
int api_test_per_cpu();

}  // namespace bitslab
