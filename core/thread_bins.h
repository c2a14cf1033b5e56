// The per-thread front end's state: a thread's bins and foreign batch
// (ThreadCache, in thread-local storage), and the bracket every operation on
// them stands in, which lets the purger take back the bins of an idle thread
// (thread_reclaim.h) without an atomic instruction on the fast path.
//
// The bracket. An operation on the bins (a malloc's pop, a free's push, any
// slow path that changes them) raises `busy` first and lowers it last, and
// before it changes anything it compares the process-wide reclaim epoch with
// the one the thread last settled in. A reclaimer marks the threads it wants,
// bumps the epoch, and then makes every running thread execute a full memory
// barrier (membarrier). After that, a thread either showed busy != 0 (an
// operation was under way: it is left alone) or will see the new epoch at
// its next operation and settle first (thread_reclaim.h), before it touches
// a bin. This is Dekker's handshake with the owner's fence made by the
// kernel, so the owner pays plain instructions on its own counter (a load, a
// store and a test going in, a decrement going out) and a load and a compare
// of the epoch: no fence, no lock prefix.
#pragma once
#include <cstddef>
#include <cstdint>

#include <atomic>

#include "core/arena.h"
#include "core/config.h"
#include "core/size_class.h"
#include "lockfree/remote_free_stack.h"
#include "lockfree/sanitizer.h"

#if defined(LOCKFREE_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace bitslab {

enum ThreadState : uint32_t { kThreadNew = 0, kThreadActive = 1, kThreadTornDown = 2 };

struct ReclaimSlot;

// A bin is heads[c], rooms[c], limits[c]. They are parallel arrays rather than
// an array of structs so the fast paths index them with the class directly
// (scaled addressing, no multiply).
struct ThreadCache {
    lockfree::StackNode* heads[kNumClasses + 1];  // LIFO of free blocks
    uint32_t rooms[kNumClasses + 1];   // blocks the bin may still take (limit - cached)
    uint32_t limits[kNumClasses + 1];  // blocks the bin may hold; grows with use, within the budget
    // Operations on the bins under way on this thread (a signal handler's
    // malloc nests in one, and sees it: bins_enter); the reclaimer reads it
    // through the kernel.
    uint32_t busy;
    // The reclaim epoch the thread last settled in: 64 bits, so it never
    // comes round again while a thread sleeps on stale bins.
    uint64_t epoch;
    size_t budget_left;  // bytes of budget not spent on bins' limits or the foreign batch
    size_t budget_granted;  // bytes of the budget that came from the shared pool
    uint32_t state;
    uint32_t pressure;   // times a bin wanted to grow beyond the budget
    // The heap this thread allocates from, and that heap's class map; the
    // fast path reads the map only below map_chunks (0 until a heap is adopted).
    uint32_t heap;
    const ClassMap* class_map;
    uintptr_t map_chunks;
    // Freed blocks of other heaps, waiting to be sent back as one batch. Kept
    // per class so the batch reaches the owner grouped by slab, where the
    // owner frees a run of one slab's blocks with one atomic update.
    lockfree::StackNode* foreign_heads[kNumClasses + 1];
    lockfree::StackNode* foreign_tails[kNumClasses + 1];
    uint64_t foreign_classes;  // bit (c - 1) set: class c's list is not empty
    uint32_t foreign_count;
    uint32_t foreign_bytes;  // paid from the budget, like the bins' limits
    // The thread's entry in the reclaim registry (null: none, so nothing of
    // it is ever reclaimed), the key it registered with (a reclaimer checks
    // that the memory it read is still this thread's), and the count of its
    // slow paths (published in the slot: an idle thread's count stands still).
    ReclaimSlot* slot;
    uint64_t key;
    uint64_t slow_ops;
};

// __thread (not thread_local): a POD with no dynamic initializer, so other
// files reach it without a TLS wrapper call. initial-exec: one %fs-relative
// access, no __tls_get_addr, no allocation.
extern __thread ThreadCache t_cache __attribute__((tls_model("initial-exec")));

// Bumped (seq_cst) by a reclaimer after it marked the threads it wants.
extern std::atomic<uint64_t> g_reclaim_epoch BITSLAB_INTERNAL;

// Opens an operation on the bins: busy goes up before the epoch is read.
// Returns whether the operation is the thread's only one. It is not when it
// nests in another: a signal handler's malloc or free that interrupted one of
// the thread's own anywhere (a load of a bin's head, a refill, a flush), or a
// fault hook's. A nested operation must not read or change the bins or the
// foreign batch (the interrupted one holds them half-changed): the caller
// goes around them (BinsOp::nested), so a handler's call never interleaves
// with the thread's own on the bins.
BITSLAB_HOT bool bins_enter() {
    // A plain load and store of the thread's own counter: a signal handler
    // that runs between the two restores it before it returns, and its whole
    // operation ends before this one touches a bin. The compiler keeps the
    // store before the epoch load and the bins' loads (seq_cst signal fence:
    // no instruction); the hardware may not, which the reclaimer's
    // membarrier makes up for (see the top).
    uint32_t outer = t_cache.busy;
    t_cache.busy = outer + 1;
    std::atomic_signal_fence(std::memory_order_seq_cst);
    return outer == 0;
}

// Whether the bins may be changed as they are: no reclaim since the thread
// last settled. relaxed: only the comparison matters here; settling reads the
// epoch again with acquire.
BITSLAB_HOT bool bins_current() { return g_reclaim_epoch.load(std::memory_order_relaxed) == t_cache.epoch; }

// Closes an operation: every change to the bins is visible before busy
// drops (release; a plain store on x86-64).
BITSLAB_HOT void bins_leave() {
#if defined(LOCKFREE_TSAN)
    // ThreadSanitizer cannot see the reclaimer's read of busy (the kernel
    // makes it): this is the release it pairs with (thread_reclaim.cpp).
    __tsan_release(&t_cache);
#endif
#if defined(__x86_64__) && defined(__GNUC__)
    // One instruction, `subl $1, busy`: a store on x86-64 is a release, and
    // the "memory" clobber keeps every access to the bins before it.
    asm volatile("subl $1, %0" : "+m"(t_cache.busy) : : "cc", "memory");
#else
    __atomic_store_n(&t_cache.busy, t_cache.busy - 1, __ATOMIC_RELEASE);
#endif
}

}  // namespace bitslab
