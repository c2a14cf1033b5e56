// Taking back the bins of idle threads (per-thread front end), and the
// budget pool the bins' grants come from.
//
// Every thread with bins has a slot in a registry that is never unmapped.
// The slot's claim word (a tag and a state, changed only by CAS, the tag
// bumped each time so no CAS succeeds on a stale reading) says who has the
// bins:
//
//   free --(thread_init)--> reserved --> owned
//   owned --(reclaimer: idle since its last look, or malloc_trim)--> taking
//   taking --(owner, settling: an operation came)--> owned      (cancelled)
//   taking --(reclaimer: busy was 0 after the fence, the copy checked)--> taken
//   taken --(owner, settling: its bins start empty again)--> owned
//   any --(thread exit, after its own flush)--> free
//   owned, taking (other threads, in a child after fork) --> orphan --(a pass)--> free
//
// A reclaimer never writes the owner's memory: it reads the thread's
// ThreadCache with process_vm_readv, which fails cleanly if the thread has
// exited and its memory is gone, keeps the copy only if the claim CAS to
// `taken` succeeds (no operation of the owner came between), and sends the
// copy's blocks home. The owner, settling, sees `taken` and empties its bins
// without touching a block in them. No side waits for the other.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/thread_bins.h"

namespace bitslab {

// ---- The budget pool (config.h: kCacheGrantPoolBytes) -------------------
// Takes up to `want` bytes of budget from the pool; returns how many.
size_t budget_pool_take(size_t want);
void budget_pool_give(size_t bytes);

// ---- The owner's side ----------------------------------------------------
// Gives the calling thread a slot (its first operation on the bins, inside
// the bracket). False if no slot could be mapped: the thread must then cache
// nothing, since nothing could take its cache back.
bool reclaim_register(ThreadCache& tc);
// The epoch moved since the thread last settled (inside the bracket, before
// any change to the bins): cancels a reclaim of this thread under way, or,
// if one took the bins, makes them empty (budget back to its base). True if
// the bins were taken (the thread's bins start over: the caller tells the
// purger, which looks at owned slots).
bool reclaim_settle(ThreadCache& tc);
// Counts a slow path of the thread (a thread whose count stands still
// between two passes is idle).
BITSLAB_HOT void reclaim_note_activity(ThreadCache& tc);
// Thread exit, after the thread flushed its own bins: the slot is free.
void reclaim_unregister(ThreadCache& tc);

// ---- The reclaimer's side (the purger's pass, malloc_trim) ---------------
// Takes back the bins of every thread that has made no slow path since the
// last pass (every thread not inside an operation, if `everything`), and of
// threads a fork left behind. Raw system calls only, no thread-local state.
// Returns whether it left the purger work (blocks pushed home remotely, a
// slab pooled).
bool reclaim_idle_threads(bool everything);
// Whether some thread's bins could be reclaimed later (an owned or orphaned
// slot), so the purger should stay.
bool reclaim_pending();
// Whether reclaims can run here (membarrier's private expedited command and
// process_vm_readv work, BITSLAB_RECLAIM_IDLE is not 0); probes once. Tests.
bool reclaim_supported();
// Tests: false makes reclaim_idle_threads do nothing (default true).
void reclaim_set_enabled(bool on);
// Statistics: threads whose bins were taken back, and the blocks that came.
size_t reclaimed_threads();
size_t reclaimed_blocks();
size_t reclaimed_grant_bytes();  // grants given back to the pool by reclaims

// A thread's entry in the registry. The claim orders everything: the owner
// writes the other fields (relaxed) before its release of `owned`, and a
// reclaimer reads them (relaxed) after its acquire of the claim; activity
// and seen_activity are hints (relaxed), as is failures.
struct alignas(64) ReclaimSlot {
    std::atomic<uint64_t> claim;            // tag << 3 | state (thread_reclaim.cpp)
    std::atomic<ThreadCache*> cache;        // the owner's t_cache
    std::atomic<uint64_t> key;              // the owner's key (ThreadCache::key)
    std::atomic<uint64_t> activity;         // the owner's slow_ops, published
    std::atomic<uint64_t> seen_activity;    // activity at the last pass's look
    std::atomic<uint32_t> failures;         // passes in a row that found it inside an operation
};

BITSLAB_HOT void reclaim_note_activity(ThreadCache& tc) {
    // relaxed: a hint of idleness. A stale reading only takes the bins of a
    // busy thread early (it refills) or those of an idle one a pass late.
    if (tc.slot) tc.slot->activity.store(++tc.slow_ops, std::memory_order_relaxed);
}

}  // namespace bitslab
