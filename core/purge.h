// Memory back to the OS.
//
// Empty slabs wait in the global pool and freed large mappings in the large
// cache, for reuse. Once one has waited the purge delay (BITSLAB_PURGE_DELAY_MS,
// default 1000), a purge pass gives its pages back: a slab is purged with
// madvise(MADV_DONTNEED) and moves to the pool of clean slabs (its address
// range and descriptor stay; reusing it faults in zero pages), a large mapping
// is unmapped. A background thread makes the passes, so memory goes back even
// when the program makes no allocator call; it is started the first time
// there is something to purge, from a point where the allocator may be
// re-entered (pthread_create allocates), sleeps on a futex while there is
// nothing to purge, and is restarted lazily in a child after fork.
// BITSLAB_BACKGROUND_PURGE=0 turns it off (then only malloc_trim purges).
// malloc_trim(0) purges everything at once.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/config.h"

namespace bitslab {

// Milliseconds of a monotonic clock (vDSO: no system call).
uint64_t now_ms();
uint64_t purge_delay_ms();

// An empty slab or a large mapping was cached: there is something to purge;
// one was taken back for reuse: there is one less.
void purge_note_cached();
void purge_note_reused();

// Starts the background purger if it is wanted and not running. Call only
// where a re-entrant malloc is safe (the top of a slow path).
extern std::atomic<bool> g_purger_wanted BITSLAB_INTERNAL;
void purge_start();
BITSLAB_HOT void purge_maybe_start() {
    // relaxed: a hint; purge_start decides with a CAS.
    if (BITSLAB_UNLIKELY(g_purger_wanted.load(std::memory_order_relaxed))) purge_start();
}

// The heap checker reads the heap while no thread uses it; the purger is a
// thread too. pause waits until no background pass is running and keeps new
// ones from starting until resume.
void purge_pause();
void purge_resume();

// One pass: purges the pooled slabs and cached large mappings that have
// waited the delay (all of them if `everything`). Returns the bytes released.
size_t purge_pass(bool everything);
// Bytes given back to the OS by purge passes so far (statistics).
size_t purged_bytes();

}  // namespace bitslab
