// Memory back to the OS.
//
// Empty slabs wait in the global pools of dirty slabs and freed large
// mappings in the large cache, for reuse. Once one has waited the purge delay
// (BITSLAB_PURGE_DELAY_MS, default 1000), a purge pass gives its pages back:
// a slab is purged with madvise(MADV_DONTNEED) and moves to the pool of clean
// slabs (its address range and descriptor stay; reusing it faults in zero
// pages), a large mapping is unmapped. A pass also drains every heap's
// remote-free stack, so blocks freed on another CPU reach their slabs even
// when the program has gone idle.
//
// The background purger makes the passes, so memory goes back even when the
// program makes no allocator call. It is a raw thread (core/raw_thread.h),
// started by whichever malloc or free first leaves work for it, and it ends
// as soon as no work is left: an idle program has no purger thread. Starting
// it takes no lock and calls no libc, so it is safe inside any free, even one
// glibc makes while holding its own locks. BITSLAB_BACKGROUND_PURGE=0 turns
// it off (then only malloc_trim purges); sanitizer builds have none.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/config.h"

namespace bitslab {

uint64_t purge_delay_ms();

// Work for the purger was just published (a slab pooled dirty, a large
// mapping cached, blocks pushed on a remote-free stack): makes sure a purger
// will see it, starting one if none runs. Raw system calls only.
void purge_note_work();

// The heap checker and statistics read the heap while no thread changes it;
// the purger is a thread too. pause waits until no background pass of this
// process is running and keeps new ones from starting until resume. Pauses
// nest (a count).
void purge_pause();
void purge_resume();

// One pass: drains every remote-free stack, then purges the pooled slabs and
// cached large mappings that have waited the delay (all of them if
// `everything`). A pass holds one slab at a time. Returns the bytes released.
size_t purge_pass(bool everything);
// Bytes given back to the OS by purge passes so far (statistics).
size_t purged_bytes();
// Whether a background purger thread is running now (tests, statistics).
bool purger_running();

}  // namespace bitslab
